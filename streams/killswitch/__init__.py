"""Kill-switch issuing: Ed25519 signing, command building, the active set, heartbeats.

Nothing here imports Faust, so the gateway enforcer (`streams.enforcer`) can
reuse it.
"""

from streams.killswitch.signing import KeyRing, Signer, VerifyResult, load_or_create_signing_key
from streams.killswitch.state import ActiveSet, Effect

__all__ = ["ActiveSet", "Effect", "KeyRing", "Signer", "VerifyResult", "load_or_create_signing_key"]
