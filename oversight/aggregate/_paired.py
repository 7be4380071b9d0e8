"""Paired old-versus-new statistics: agreement credit per item, a paired bootstrap interval,
and position consistency (the trivial baselines are `baseline_agreement` in _baselines.py).

Agreement credit per item: 1 when the decision equals the reference, 0 when it names another
response, 0.5 when there is no decided winner (tie, abstain, no quorum, contested, vetoed), as
for the Wilson intervals with half-credit ties used elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from oversight.aggregate._ballots import critic_p0, vote_of


def agreement_credit(final: Mapping[str, Any], reference: Mapping[str, int],
                     items: Sequence[str]) -> np.ndarray:
    """Per item in `items`: 1 (decision == reference), 0 (another response), 0.5 (undecided)."""
    out = np.empty(len(items))
    for n, item in enumerate(items):
        d = final.get(item)
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            out[n] = 1.0 if int(d) == int(reference[item]) else 0.0
        else:
            out[n] = 0.5
    return out


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95,
                     n_boot: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """mean(a - b) over paired items with a percentile bootstrap interval (items resampled)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired arrays must be 1-D and the same length, got {a.shape} and "
                         f"{b.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    d = a - b
    if len(d) == 0:
        return (float("nan"),) * 3  # type: ignore[return-value]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    boots = d[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha])
    return float(d.mean()), float(lo), float(hi)


def position_consistency(judgments: pd.DataFrame) -> tuple[int, int]:
    """(consistent, comparable): (item, critic) verdicts that agree across the two orders,
    over those with a decided verdict in both orders (two-response pairwise items)."""
    fwd = critic_p0(judgments, orders="forward")
    rev = critic_p0(judgments, orders="reverse")
    if fwd.empty or rev.empty:
        return 0, 0
    both = fwd.merge(rev, on=["item_id", "critic"], suffixes=("_f", "_r"))
    vf, vr = vote_of(both["p0_f"]), vote_of(both["p0_r"])
    decided = (vf >= 0) & (vr >= 0)
    return int((decided & (vf == vr)).sum()), int(decided.sum())
