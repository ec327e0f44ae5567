"""Running mean and variance, exact at first and exponentially weighted later.

For the first ``1 / alpha`` observations the weight is ``1 / n`` (Welford's
exact running mean and population variance); after that it is ``alpha``. This
avoids the bias of a plain EWMA that starts at its first value, so a detector
leaving warm-up already has an honest spread.

>>> m = Moments(alpha=0.1)
>>> for x in (1.0, 2.0, 3.0, 4.0):
...     m.add(x)
>>> m.n, m.mean, m.var
(4, 2.5, 1.25)
"""

from __future__ import annotations

import math


class Moments:
    __slots__ = ("alpha", "mean", "n", "var")

    def __init__(self, alpha: float = 0.0) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        self.alpha = alpha  # 0 means "never forget": exact mean and variance forever
        self.n = 0
        self.mean = 0.0
        self.var = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        weight = 1.0 / self.n
        if self.alpha > weight:
            weight = self.alpha
        diff = x - self.mean
        incr = weight * diff
        self.mean += incr
        self.var = (1.0 - weight) * (self.var + diff * incr)

    @property
    def std(self) -> float:
        return math.sqrt(self.var) if self.var > 0.0 else 0.0

    def to_list(self) -> list[float]:
        return [self.n, self.mean, self.var]

    def load(self, data: list[float]) -> None:
        self.n, self.mean, self.var = int(data[0]), float(data[1]), float(data[2])
