"""Search ranges and how a refine round narrows them (docs/RECIPE.md, stage 4).

Each range is narrowed to the span of the top trials (the best trial so far always among them),
widened by ``margin`` on each side, and clipped to the previous range. So every round's ranges lie
inside the previous ones and contain the best trial so far.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from hpsearch.spec import SearchRange


def narrow(
    points: Sequence[Mapping[str, float]], previous: Mapping[str, SearchRange], margin: float
) -> dict[str, SearchRange]:
    """The ranges spanned by ``points``, widened by ``margin`` and clipped to ``previous``."""
    narrowed = {}
    for name, prev in previous.items():
        values = [float(p[name]) for p in points if name in p]
        if not values:
            narrowed[name] = prev
            continue
        lo, hi = min(values), max(values)
        if prev.log:
            lo, hi = lo / margin, hi * margin
        else:
            width = (hi - lo) or 0.05 * (prev.high - prev.low)
            lo, hi = lo - (margin - 1) * width, hi + (margin - 1) * width
        lo, hi = max(lo, prev.low), min(hi, prev.high)
        if not lo < hi:  # every point on the previous range's edge: keep a sliver inside it
            lo, hi = prev.low, prev.high
        narrowed[name] = prev.model_copy(update={"low": float(lo), "high": float(hi)})
    return narrowed


def top_count(n: int, fraction: float, minimum: int) -> int:
    """How many of ``n`` trials count as "top": ``fraction`` of them, at least ``minimum``."""
    return min(n, max(minimum, math.ceil(fraction * n)))
