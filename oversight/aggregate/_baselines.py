"""Trivial baselines for agreement with a reference: what a judge must beat to mean anything.

On two-response items with a reference label: `first shown` always picks response 0 (the one
shown first in the unswapped order), `longer` picks the longer response, `shorter` the
shorter one. Equal lengths count as a tie (half credit), never as a hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from oversight.aggregate._stats import agreement_with_reference
from oversight.data import Comparison

BASELINES = ("first shown", "longer", "shorter")


def baseline_agreement(items: Sequence[Comparison],
                       labels: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Per baseline: n labelled two-response items, hits (ties count half), agreement.

    `labels` maps item id -> index of the preferred response; default: each item's
    `reference`. Items without a label, or with more than two responses, are not counted.
    """
    verdicts: dict[str, dict[str, int | str]] = {name: {} for name in BASELINES}
    reference: dict[str, int] = {}
    for it in items:
        label = labels.get(it.id) if labels is not None else it.reference
        if label is None or it.k != 2:
            continue
        reference[it.id] = int(label)
        la, lb = (len(r) for r in it.responses)
        picks = {"first shown": 0, "longer": "tie" if la == lb else (0 if la > lb else 1),
                 "shorter": "tie" if la == lb else (0 if la < lb else 1)}
        for name, pick in picks.items():
            verdicts[name][it.id] = pick
    # one definition of agreement (a tie counts half): oversight.aggregate._stats
    rows = []
    for name in BASELINES:
        a = agreement_with_reference(verdicts[name], reference)
        rows.append({"baseline": name, "n": a["n"], "hits": a["hits"],
                     "agreement": a["agreement"], "ci_low": a["ci_low"],
                     "ci_high": a["ci_high"]})
    return pd.DataFrame(rows)
