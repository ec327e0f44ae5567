"""Bearer tokens, roles, and the middleware that enforces them.

Tokens are configured in a YAML or JSON file (``OVERSEER_API_TOKENS_FILE``)
that holds only SHA-256 hashes of the tokens::

    tokens:
      "9f86d081884c7d65...": {name: alice, role: oncall}
      "60303ae22b998861...": {name: grafana, role: viewer}

``overseer alerts hash-token`` prints the hash of a token. Roles are ordered
``viewer < oncall < admin``. Without a tokens file the worker serves only
loopback clients, as the local identity ``local`` with role ``admin`` — the
single-user development default that keeps ``overseer demo`` and local tools
working; anything else gets 401. The file is re-read when it changes, so a
token is revoked without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

ROLES = ("viewer", "oncall", "admin")
LOCAL = "local"
PUBLIC_PREFIXES = ("/console", "/healthz", "/readyz")
PUBLIC_PATHS = ("/api/v1/openapi.json", "/")
PROTECTED_PREFIXES = ("/api/", "/overseer/")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class TokenError(ValueError):
    """The tokens file is malformed."""


def parse_tokens(doc: Any, where: str) -> dict[str, Identity]:
    entries = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise TokenError(f"{where}: expected a mapping 'tokens: {{<sha256 hex>: {{name, role}}}}'")
    out: dict[str, Identity] = {}
    for digest, spec in entries.items():
        digest = str(digest).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise TokenError(f"{where}: {digest[:12]}…: keys are SHA-256 hex digests of tokens, never tokens")
        if not isinstance(spec, dict) or not spec.get("name") or spec.get("role") not in ROLES:
            raise TokenError(f"{where}: {digest[:12]}…: needs a name and a role in {', '.join(ROLES)}")
        out[digest] = Identity(str(spec["name"]), str(spec["role"]))
    return out


class TokenStore:
    """Token hashes -> identities, re-read from the file when its mtime changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._by_hash: dict[str, Identity] = {}
        if path is not None:
            self._reload()

    @property
    def configured(self) -> bool:
        return self.path is not None

    def _reload(self) -> None:
        assert self.path is not None
        mtime = self.path.stat().st_mtime
        if mtime == self._mtime:
            return
        text = self.path.read_text()
        doc = json.loads(text) if self.path.suffix == ".json" else yaml.safe_load(text)
        self._by_hash = parse_tokens(doc, str(self.path))
        self._mtime = mtime

    def lookup(self, token: str) -> Identity | None:
        if self.path is not None:
            self._reload()
        digest = hash_token(token)
        for known, identity in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return identity
        return None


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="overseer"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


def identify(request: web.Request, tokens: TokenStore) -> Identity | web.Response:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "use 'Authorization: Bearer <token>'")
        if not tokens.configured:
            return _error(401, "this worker has no tokens configured (OVERSEER_API_TOKENS_FILE); "
                               "only unauthenticated loopback clients are served")
        identity = tokens.lookup(token.strip())
        return identity if identity is not None else _error(401, "unknown or revoked token")
    if not tokens.configured and _loopback(request.remote):
        return Identity(LOCAL, "admin")
    return _error(401, "authentication required: 'Authorization: Bearer <token>'")


def middleware(tokens: TokenStore) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Authenticate every ``/api/`` and ``/overseer/`` request; the identity lands in ``request['identity']``.

    Reading needs ``viewer``; each mutating route checks its own role with `require`.
    """

    @web.middleware
    async def authenticate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
        path = request.path
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or not path.startswith(PROTECTED_PREFIXES):
            return await handler(request)
        found = identify(request, tokens)
        if isinstance(found, web.Response):
            return found
        request["identity"] = found
        return await handler(request)

    return authenticate


def require(request: web.Request, role: str) -> Identity:
    """The caller's identity, or raise 403 when its role is below ``role``."""
    identity: Identity = request["identity"]
    if not identity.can(role):
        raise web.HTTPForbidden(text=json.dumps({"error": f"{identity.name} has role {identity.role}; "
                                                          f"this needs {role} or above"}),
                                content_type="application/json")
    return identity
