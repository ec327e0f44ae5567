"""Faust's per-app directories live under the worker's home, not wherever the worker was started."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.app import create_app
from streams.settings import Settings


def test_the_app_directories_go_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", home=tmp_path / "home", app_id="datadir-probe")
    app = create_app(settings, "127.0.0.1:1", lambda app, **tables: None)
    app._create_directories()  # what Faust does when the worker starts
    assert (tmp_path / "home" / "faust" / "datadir-probe" / "v1" / "tables").is_dir()
    assert list(cwd.iterdir()) == []
