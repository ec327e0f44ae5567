"""Fixtures for the kill-switch unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.killswitch.signing import Signer, load_or_create_signing_key


@pytest.fixture()
def signer(tmp_path: Path) -> Signer:
    return load_or_create_signing_key(tmp_path / "keys" / "ks.pem", "key-1")
