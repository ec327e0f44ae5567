"""The kill-switch enforcer for model gateways — no Faust, just aiokafka and cryptography.

Embed it (see docs/enforcer.md)::

    ring = KeyRing.load("keyring.json")
    enforcer = Enforcer("kafka:9092", ring, fail_closed_action="no_new_runs")
    await enforcer.start()
    decision = enforcer.check(deployment="dep-1", tool="bash", new_run=True)
    if not decision.allowed:
        refuse(decision.reasons)
"""

from streams.enforcer.check import Checker
from streams.enforcer.decision import Decision, FailClosedAction
from streams.enforcer.enforcer import Enforcer, EnforcerError
from streams.killswitch.signing import KeyRing

__all__ = ["Checker", "Decision", "Enforcer", "EnforcerError", "FailClosedAction", "KeyRing"]
