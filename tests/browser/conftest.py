"""Headless Chromium (Debian's package, driven by Playwright's driver) for the console tests.

``scripts/ensure-chromium.sh`` installs the browser when it is missing, so
``make test`` works on a fresh machine; Playwright's own browser download is
never used. Screenshots go to ``test-artifacts/`` (git-ignored). The browser
is module-scoped: Playwright's sync API keeps an event loop running in the
main thread while it is open, and later tests may call ``asyncio.run``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    done = subprocess.run([str(REPO / "scripts" / "ensure-chromium.sh")], capture_output=True, text=True,
                          timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/ensure-chromium.sh failed:\n{done.stderr[-4000:]}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def browser(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(profile), executable_path=chromium_path,
                                                        args=CHROMIUM_ARGS, headless=True,
                                                        viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture()
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
