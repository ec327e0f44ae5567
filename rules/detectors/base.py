"""The contract every detector follows, and the score mapping they share.

A detector turns a stream of observations (one per metric bucket) into an
anomaly score in [0, 1]. Each subclass computes a *signed deviation* of the
observation from its learned baseline, in the units of its own ``threshold``
parameter (a z-score for EWMA, a cumulative sum for CUSUM, ...). The base class
maps it to a score the same way for every detector::

    score = 1 - 2 ** (-d / threshold)      d = deviation in the watched direction, >= 0

so ``d = 0`` scores 0, ``d = threshold`` scores exactly 0.5, ``2 * threshold``
scores 0.75 and the score tends to 1. A detection fires when
``score >= fire_at`` (default 0.5, i.e. "the deviation reached the threshold").
Keeping the mapping in one place is what lets policies compare scores across
detectors.

``direction`` selects which side counts: ``up`` (only increases), ``down``
(only decreases) or ``both``.

Warm-up is explicit: until a detector has seen enough observations it returns
``None`` instead of a score (the property ``warmed_up`` says which).

State is plain data: :meth:`Detector.snapshot` returns a small JSON-able dict
(no pickles) which :meth:`Detector.restore` turns back into a detector that
produces identical scores — the runtime checkpoints it in Faust tables.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any, ClassVar, Literal, Self

Direction = Literal["up", "down", "both"]
DIRECTIONS = ("up", "down", "both")
DEFAULT_FIRE_AT = 0.5


def to_score(deviation: float, threshold: float) -> float:
    """Map a non-negative deviation to [0, 1]; ``threshold`` maps to 0.5.

    >>> to_score(0.0, 4.0), to_score(4.0, 4.0), to_score(8.0, 4.0)
    (0.0, 0.5, 0.75)
    """
    if deviation <= 0.0 or math.isnan(deviation):
        return 0.0
    return 1.0 - float(2.0 ** (-deviation / threshold))


def directed(signed: float, direction: str) -> float:
    """The part of a signed deviation that counts in ``direction``.

    >>> directed(-3.0, "both"), directed(-3.0, "up"), directed(-3.0, "down")
    (3.0, 0.0, 3.0)
    """
    if direction == "up":
        return max(signed, 0.0)
    if direction == "down":
        return max(-signed, 0.0)
    return abs(signed)


class Detector(ABC):
    """Base of every detector. Subclasses implement the four ``_`` hooks.

    Constructor keyword arguments are stored as given (``params``) so that
    :meth:`clone` and :meth:`restore` rebuild an identical detector.
    """

    name: ClassVar[str]
    #: what one observation is: "float" for numeric detectors, "hashable" for novelty
    observation: ClassVar[str] = "float"

    def __init__(self, **params: Any) -> None:
        self._params = dict(params)
        self.threshold = float(params.get("threshold", 1.0))
        self.fire_at = float(params.get("fire_at", DEFAULT_FIRE_AT))
        self.direction: str = params.get("direction", "both")
        if self.threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        if not 0.0 < self.fire_at <= 1.0:
            raise ValueError(f"fire_at must be in (0, 1], got {self.fire_at}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        self._last: Any = None
        self._last_deviation: float | None = None
        self._n: int | None = None  # events behind the observation being scored (per call, not state)

    # -- hooks -----------------------------------------------------------
    @abstractmethod
    def _deviation(self, x: Any, ts: float | None) -> float | None:
        """Signed deviation of ``x`` from the current state (None while warming up)."""

    @abstractmethod
    def _learn(self, x: Any, ts: float | None) -> None:
        """Fold ``x`` into the state."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """JSON-able state (without params)."""

    @abstractmethod
    def _load(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_state`."""

    @abstractmethod
    def _baseline(self) -> dict[str, Any]:
        """What the detector currently believes is normal (baseline, spread...)."""

    @property
    @abstractmethod
    def warmed_up(self) -> bool:
        """True once the detector scores instead of returning None."""

    # -- public verbs ----------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def score(self, x: Any, ts: float | None = None, n: int | None = None) -> float | None:
        """Score ``x`` against the current state without learning it (``n``: see :meth:`update`)."""
        self._n = n
        dev = self._deviation(x, ts)
        if dev is None:
            return None
        return to_score(directed(dev, self.direction), self.threshold)

    def update(self, x: Any, ts: float | None = None, n: int | None = None) -> float | None:
        """Score ``x`` against the state *before* it, then learn it.

        ``n`` is how many events stand behind ``x`` (the denominator of a
        rate). Detectors that model sampling noise use it (``ewma_zscore``
        with ``binomial=True``); the others ignore it.
        """
        self._check(x)
        self._n = n
        dev = self._deviation(x, ts)
        self._learn(x, ts)
        self._last = x
        self._last_deviation = dev
        if dev is None:
            return None
        return to_score(directed(dev, self.direction), self.threshold)

    @property
    def last_deviation(self) -> float | None:
        """Signed deviation of the last observation passed to :meth:`update` (None in warm-up)."""
        return self._last_deviation

    def fires(self, score: float | None) -> bool:
        """The decision wrapper: a score fires when it reaches ``fire_at``."""
        return score is not None and score >= self.fire_at

    def explain(self) -> dict[str, Any]:
        """Why the last score was what it was: baseline, spread, deviation, params."""
        out: dict[str, Any] = {"detector": self.name, "warmed_up": self.warmed_up}
        out.update(self._baseline())
        out["last_observed"] = self._last
        out["deviation"] = self._last_deviation
        out["params"] = self.params
        return out

    def clone(self) -> Self:
        """A fresh detector with the same parameters and no state."""
        return type(self)(**self._params)

    def snapshot(self) -> dict[str, Any]:
        """Compact JSON-able state: ``{"d": name, "p": params, "s": state}``."""
        state = self._state()
        state["_last"] = self._last if isinstance(self._last, float | int | str | None) else repr(self._last)
        state["_dev"] = self._last_deviation
        return {"d": self.name, "p": self._params, "s": state}

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> Detector:
        """Rebuild a detector from :meth:`snapshot` (dispatches on the stored name)."""
        from rules.detectors.registry import get

        klass = get(snap["d"]) if cls is Detector else cls
        if klass.name != snap["d"]:
            raise ValueError(f"snapshot of {snap['d']!r} cannot restore a {klass.name!r}")
        det = klass(**snap["p"])
        state = dict(snap["s"])
        # restoring a detector of our own hierarchy: its privates are ours
        det._last = state.pop("_last", None)  # noqa: SLF001
        det._last_deviation = state.pop("_dev", None)  # noqa: SLF001
        det._load(state)  # noqa: SLF001
        return det

    def _check(self, x: Any) -> None:
        if self.observation == "float":
            if not isinstance(x, float | int) or isinstance(x, bool) or not math.isfinite(x):
                raise ValueError(f"{self.name} observes finite numbers, got {x!r}")
        elif not isinstance(x, Hashable):
            raise ValueError(f"{self.name} observes hashable values, got {type(x).__name__}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"
