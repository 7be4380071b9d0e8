"""Trivial baselines for agreement with a reference: what a judge must beat to mean anything.

On two-response items with a reference label: `first shown` always picks response 0 (the one
shown first in the unswapped order), `longer` picks the longer response, `shorter` the
shorter one. Equal lengths count as a tie (half credit), never as a hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from oversight.data import Comparison

BASELINES = ("first shown", "longer", "shorter")


def baseline_agreement(items: Sequence[Comparison],
                       labels: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Per baseline: n labelled two-response items, hits (ties count half), agreement.

    `labels` maps item id -> index of the preferred response; default: each item's
    `reference`. Items without a label, or with more than two responses, are not counted.
    """
    rows = {name: [0.0, 0] for name in BASELINES}
    for it in items:
        label = labels.get(it.id) if labels is not None else it.reference
        if label is None or it.k != 2:
            continue
        la, lb = (len(r) for r in it.responses)
        picks = {"first shown": 0, "longer": None if la == lb else (0 if la > lb else 1),
                 "shorter": None if la == lb else (0 if la < lb else 1)}
        for name, pick in picks.items():
            rows[name][1] += 1
            rows[name][0] += 0.5 if pick is None else float(pick == int(label))
    return pd.DataFrame([{"baseline": name, "n": n, "hits": hits,
                          "agreement": hits / n if n else float("nan")}
                         for name, (hits, n) in rows.items()])
