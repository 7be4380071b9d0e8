"""Adapters from the Bradley-Terry and Dawid-Skene models to per-item decisions.

Each returns (fitted model, DataFrame indexed by item_id with label, p0, margin), the shape
`aggregate` combines with the panel rules and flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from oversight.aggregate._ballots import is_tie
from oversight.aggregate._bradley_terry import BradleyTerry
from oversight.aggregate._dawid_skene import DawidSkene


def _label_from(probs: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """Best response per row (or 'tie'), and its margin over the runner-up."""
    order = np.sort(probs, axis=1)
    margin = order[:, -1] - order[:, -2]
    labels = probs.argmax(axis=1).astype(object)
    labels[is_tie(margin)] = "tie"
    return list(labels), margin


def ds_decisions(judgments: pd.DataFrame, gold: Mapping[str, int] | None = None,
                 k_of: Mapping[str, int] | None = None,
                 **options: Any) -> tuple[Any, pd.DataFrame]:
    """Dawid-Skene posteriors as decisions: label = MAP response, p0 = P(response 0 best).

    The model's classes span the largest item; `k_of` (item -> number of responses) limits
    each item's posterior to the responses it has, renormalised, so a two-response item in a
    run with three-response items can never be labelled response 2."""
    model = DawidSkene(**options).fit(judgments, gold=gold)
    probs = model.probas_.to_numpy(dtype=float)
    if len(probs) == 0:
        return model, pd.DataFrame(columns=["label", "p0", "margin"])
    if k_of:
        ks = pd.Series(k_of, dtype=float).reindex(model.probas_.index) \
            .fillna(probs.shape[1]).to_numpy(dtype=np.int64)
        absent = np.arange(probs.shape[1])[None, :] >= ks[:, None]
        if absent.any():
            probs = np.where(absent, 0.0, probs)
            total = probs.sum(axis=1, keepdims=True)
            uniform = np.where(absent, 0.0, 1.0) / np.maximum(ks, 1)[:, None]
            probs = np.where(total > 0, probs / np.where(total > 0, total, 1.0), uniform)
    labels, margin = _label_from(probs)
    dec = pd.DataFrame({"label": labels, "p0": probs[:, 0], "margin": margin},
                       index=model.probas_.index)
    return model, dec


def ds_weights(judgments: pd.DataFrame, gold: Mapping[str, int] | None = None
               ) -> dict[str, float]:
    """Critic weights from Dawid-Skene reliabilities (log-odds of accuracy, floored at 0)."""
    return DawidSkene().fit(judgments, gold=gold).reliability_weights().to_dict()


def bt_decisions(judgments: pd.DataFrame, **options: Any) -> tuple[Any, pd.DataFrame]:
    """Per-item Bradley-Terry: label = strongest response, p0 = P(response 0 beats 1) for
    two-response items, margin = |2 P(best beats runner-up) - 1|. An item whose comparison
    graph is not connected is "undecided" (margin 0, p0 NaN)."""
    model = BradleyTerry(scope="item", **options).fit(judgments)
    prefs = model.preferences_.set_index("item_id")
    st = model.strengths_
    response = st["response"].to_numpy()
    p0 = pd.Series(np.nan, index=prefs.index)
    if (response == 0).any() and (response == 1).any():
        def strength(r: int) -> pd.Series:
            rows = st[response == r]
            return pd.Series(rows["log_strength"].to_numpy(), index=rows["item_id"].to_numpy())

        d = strength(0).reindex(prefs.index) - strength(1).reindex(prefs.index)
        p0 = 1.0 / (1.0 + np.exp(-d))
    p_best = prefs["p_best_beats_runner_up"].astype(float)
    margin = (2.0 * p_best - 1.0).abs()
    # A graph that is not connected (e.g. one judgment, no prior) cannot order the responses:
    # undecided, never the first index that a sort of incomparable strengths puts on top.
    connected = prefs["connected"].to_numpy(dtype=bool) & np.isfinite(p_best.to_numpy())
    labels = prefs["best"].to_numpy().astype(np.int64).astype(object)
    labels[is_tie(margin.to_numpy())] = "tie"
    labels[~connected] = "undecided"
    margin = margin.where(connected, 0.0)
    p0 = p0.where(connected, np.nan)
    dec = pd.DataFrame({"label": list(labels), "p0": p0.to_numpy(),
                        "margin": margin.to_numpy()},
                       index=prefs.index)
    return model, dec
