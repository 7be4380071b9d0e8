"""Small statistics used by the simple panel summary: Wilson intervals."""

from __future__ import annotations

import math


def wilson_ci(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default).

    Better than the normal approximation at small n or near 0/1 (Wilson 1927). Half-credit
    successes (ties) are allowed.
    """
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
