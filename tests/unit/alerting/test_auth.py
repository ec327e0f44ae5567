"""Tokens are stored as hashes, roles are ordered, loopback is trusted only without a tokens file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest.mock import MagicMock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from streams.api.auth import Identity, TokenError, TokenStore, hash_token, identify


def _req(remote: str, auth: str | None = None) -> web.Request:
    headers = {"Authorization": auth} if auth else {}
    transport = MagicMock()
    transport.get_extra_info.return_value = (remote, 12345)
    return make_mocked_request("GET", "/api/v1/alerts", headers=headers, transport=transport)


def _store(tmp_path: Path, entries: dict) -> TokenStore:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": entries}))
    return TokenStore(path)


def test_bearer_tokens_map_to_identities_by_hash(tmp_path: Path) -> None:
    store = _store(tmp_path, {hash_token("s3cret"): {"name": "alice", "role": "oncall"}})
    assert identify(_req("10.0.0.5", "Bearer s3cret"), store) == Identity("alice", "oncall")
    for bad in ("Bearer nope", "Basic s3cret", "Bearer "):
        resp = identify(_req("10.0.0.5", bad), store)
        assert isinstance(resp, web.Response) and resp.status == 401
    # with tokens configured, loopback without a token is refused too
    resp = identify(_req("127.0.0.1"), store)
    assert isinstance(resp, web.Response) and resp.status == 401


def test_without_a_tokens_file_only_loopback_is_served(tmp_path: Path) -> None:
    store = TokenStore(None)
    assert identify(_req("127.0.0.1"), store) == Identity("local", "admin")
    assert identify(_req("::1"), store) == Identity("local", "admin")
    for remote in ("10.1.2.3", "192.168.0.9"):
        resp = identify(_req(remote), store)
        assert isinstance(resp, web.Response) and resp.status == 401


def test_roles_are_ordered() -> None:
    assert Identity("a", "admin").can("oncall") and Identity("a", "oncall").can("viewer")
    assert not Identity("v", "viewer").can("oncall") and not Identity("o", "oncall").can("admin")


def test_the_file_holds_hashes_never_tokens_and_is_reloaded(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="SHA-256"):
        _store(tmp_path, {"plaintext-token": {"name": "a", "role": "viewer"}})
    with pytest.raises(TokenError, match="role"):
        _store(tmp_path, {hash_token("t"): {"name": "a", "role": "root"}})
    store = _store(tmp_path, {hash_token("t"): {"name": "a", "role": "viewer"}})
    assert store.lookup("t") == Identity("a", "viewer")
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": {}}))
    os.utime(path, (1, 1))  # a different mtime: the store re-reads the file (revocation without restart)
    assert store.lookup("t") is None
