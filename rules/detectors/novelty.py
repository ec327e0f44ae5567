"""Novelty: a value never seen before for this key (first-seen tool, host...)."""

from __future__ import annotations

from typing import Any

from rules.detectors.base import Detector


class Novelty(Detector):
    """Scores 1.0 for a value outside the set of known values, 0.0 otherwise.

    Observations are hashable values (strings, numbers), not magnitudes. The
    first ``warmup`` observations only learn, so a brand-new deployment does not
    page for every tool it uses on day one. The set of known values is bounded
    by ``max_values``: when full, the least recently seen value is forgotten
    (and ``evicted`` counts it). The signed deviation is 1 for a new value and
    0 for a known one; with ``threshold`` 1 a new value scores 0.5, which is
    ``fire_at``. Values are stored as strings (``str(x)``) so state is JSON.

    Parameters: ``warmup`` (10), ``max_values`` (1000), ``threshold`` (1.0),
    ``fire_at`` (0.5).

    >>> d = Novelty(warmup=3)
    >>> [d.update(v) for v in ("bash", "python", "bash")]
    [None, None, None]
    >>> d.update("python"), d.update("curl"), d.update("curl")
    (0.0, 0.5, 0.0)
    """

    name = "novelty"
    observation = "hashable"

    def __init__(self, *, warmup: int = 10, max_values: int = 1000, threshold: float = 1.0,
                 fire_at: float = 0.5) -> None:
        super().__init__(warmup=warmup, max_values=max_values, threshold=threshold, fire_at=fire_at,
                         direction="up")
        del self._params["direction"]  # not a parameter of novelty; kept internal
        self.warmup = int(warmup)
        self.max_values = int(max_values)
        self._known: dict[str, None] = {}  # insertion-ordered: least recently seen first
        self._seen = 0
        self.evicted = 0

    @property
    def warmed_up(self) -> bool:
        return self._seen >= self.warmup

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up:
            return None
        return 0.0 if str(x) in self._known else 1.0

    def _learn(self, x: Any, ts: float | None) -> None:
        value = str(x)
        self._seen += 1
        self._known.pop(value, None)
        self._known[value] = None
        if len(self._known) > self.max_values:
            del self._known[next(iter(self._known))]
            self.evicted += 1

    def _baseline(self) -> dict[str, Any]:
        return {"baseline": len(self._known), "spread": None, "known_values": len(self._known),
                "n": self._seen, "evicted": self.evicted}

    def _state(self) -> dict[str, Any]:
        return {"k": list(self._known), "n": self._seen, "e": self.evicted}

    def _load(self, state: dict[str, Any]) -> None:
        self._known = dict.fromkeys(state["k"])
        self._seen, self.evicted = int(state["n"]), int(state["e"])
