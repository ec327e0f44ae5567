"""The worker's HTTP API under ``/api/v1/`` (token auth, roles, audit) and the console's static files."""

from streams.api.auth import Identity, TokenStore, hash_token
from streams.api.install import install

__all__ = ["Identity", "TokenStore", "hash_token", "install"]
