"""How surprising ``k`` successes in ``n`` trials are at rate ``p``, as a signed z-score.

The normal approximation fails exactly where rate detectors live: 0 refusals
out of 100 at a 15 % baseline is a one-in-ten-million event, not "4 sigma".
The exact binomial tail (mid-p) is computed by summing the pmf outward from
``k`` (terms shrink geometrically in the tail) and mapped to the standard
normal quantile, so the result reads like a z-score.

>>> round(binomial_z(0, 100, 0.15), 2)     # a collapse: far rarer than -4 sigma
-5.35
>>> round(binomial_z(15, 100, 0.15), 2), round(binomial_z(25, 100, 0.15), 2)
(0.0, 2.8)
"""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()
_CENTRE = 3.0  # within this many standard deviations of the mean, the normal approximation is used
_TINY = 1e-300


def _pmf(k: int, n: int, p: float) -> float:
    log = (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
           + k * math.log(p) + (n - k) * math.log1p(-p))
    return math.exp(log)


def _tail(k: int, n: int, p: float, upward: bool) -> float:
    """P(X >= k) if upward else P(X <= k), for k in that tail."""
    term = total = _pmf(k, n, p)
    j = k
    while (j < n) if upward else (j > 0):
        if upward:
            term *= (n - j) * p / ((j + 1) * (1.0 - p))
            j += 1
        else:
            term *= j * (1.0 - p) / ((n - j + 1) * p)
            j -= 1
        total += term
        if term <= total * 1e-16:
            break
    return total


def binomial_z(k: int, n: int, p: float) -> float:
    """Signed z of observing ``k`` of ``n`` at rate ``p`` (mid-p exact tail away from the centre)."""
    p = min(max(p, 0.5 / n), 1.0 - 0.5 / n)
    mean, sd = n * p, math.sqrt(n * p * (1.0 - p))
    if abs(k - mean) < _CENTRE * sd:
        return (k - mean) / sd
    upward = k > mean
    tail = _tail(k, n, p, upward) - 0.5 * _pmf(k, n, p)
    z = -_NORMAL.inv_cdf(min(max(tail, _TINY), 0.5))
    return z if upward else -z
