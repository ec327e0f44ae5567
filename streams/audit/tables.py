"""Which tables carry a hash chain, their id column and the columns the hash covers.

The hashed columns are exactly those the worker writes; columns added later
by other migrations are not covered (and so never cause a false alarm) until
they are listed here — which changes every row's hash, so add them with a new
chain version, never by editing these tuples in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.store.rows import DETECTION_COLUMNS

CHAIN_COLUMNS = ("chain_seq", "prev_id", "prev_hash", "row_hash")


@dataclass(frozen=True)
class ChainSpec:
    table: str
    id_column: str
    columns: tuple[str, ...]
    ts_column: str


KILLSWITCH_COLUMNS = ("command_id", "idempotency_key", "op", "scope_kind", "scope_value", "action", "throttle_rate",
                      "revoked_tools", "reason", "evidence", "issued_at", "lease_expires_at", "mode", "issuer",
                      "operators", "key_id", "signature", "payload")
OPERATOR_ACTION_COLUMNS = ("action_id", "ts", "operator", "role", "action", "target", "reason", "details")

SPECS: dict[str, ChainSpec] = {
    "detections": ChainSpec("detections", "detection_id", tuple(DETECTION_COLUMNS), "ts"),
    "killswitch_commands": ChainSpec("killswitch_commands", "command_id", KILLSWITCH_COLUMNS, "issued_at"),
    "operator_actions": ChainSpec("operator_actions", "action_id", OPERATOR_ACTION_COLUMNS, "ts"),
}
