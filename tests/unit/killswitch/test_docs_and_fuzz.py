"""The docstring examples run, and hostile input never crashes verification or compilation."""

from __future__ import annotations

import doctest
import json
import importlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.items import Location, RawItem
from rules.policy import compile_items
from streams.killswitch.signing import KeyRing

MODULES = ["schemas.killswitch", "rules.policy", "streams.killswitch.signing", "streams.killswitch.state",
           "streams.enforcer.check"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


RING = KeyRing({"k": Ed25519PrivateKey.generate().public_key()})
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_verify_never_raises_on_garbage(data: bytes) -> None:
    assert RING.verify(data).reason in ("malformed", "unknown_key", "bad_signature")


class Collect:
    def __init__(self) -> None:
        self.codes: list[str] = []

    def compile_condition(self, source: str, location: Location) -> None:
        return None

    def error(self, location: Location, code: str, message: str, hint: str = "") -> None:
        self.codes.append(code)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["match", "scope", "threshold", "ladder", "cooldown", "lease", "mode",
                                       "blast_radius", "throttle_rate", "revoke_tools", "version"]),
                       json_values, max_size=6))
def test_compile_reports_instead_of_raising(body: dict[str, Any]) -> None:
    ctx = Collect()
    engine = compile_items([RawItem("policy", "fuzz", body, Location("f.yaml", 1, 1))], ctx)
    assert bool(ctx.codes) != bool(engine.policies)  # either it compiled, or it said why
