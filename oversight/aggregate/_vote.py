"""Majority and weighted voting, and mean probability, over critics' ballots.

A ballot is one critic's verdict on one item (unit="critic": its principles averaged with
their weights) or one (critic, principle) verdict (unit="principle"). A ballot votes for the
response with the highest support; an exact tie is reported as a tie and is not a vote; an
abstention casts no ballot at all.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from oversight.aggregate._ballots import (
    TIE_TOL,
    _memoized,
    codes_of,
    is_tie,
    item_positions,
    response_support,
    sorted_codes,
)

TIE = -1
NO_VOTES = -2


def tally(group: np.ndarray, label: np.ndarray, weight: np.ndarray, n_groups: int,
          n_classes: int) -> np.ndarray:
    """Weighted vote counts [n_groups, n_classes]; labels < 0 (ties) are not counted."""
    keep = label >= 0
    flat = group[keep] * n_classes + label[keep]
    counts = np.bincount(flat, weights=weight[keep], minlength=n_groups * n_classes)
    return counts.reshape(n_groups, n_classes)


def decide(tallies: np.ndarray, supermajority: float | None = None,
           n_ballots: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Winner per row (TIE, NO_VOTES, or class), winner's share, margin, normalised entropy.

    With `supermajority`, a winner whose share is below the threshold becomes a TIE. Rows with
    ballots that were all ties (`n_ballots` > 0, no votes) are a TIE, not NO_VOTES.
    """
    total = tallies.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    share = tallies / safe[:, None]
    order = np.sort(share, axis=1)
    top = order[:, -1]
    second = order[:, -2] if tallies.shape[1] > 1 else np.zeros(len(top))
    winner = share.argmax(axis=1)
    tied = is_tie(top, second) & (total > 0)
    winner = np.where(tied, TIE, winner)
    if supermajority is not None:
        winner = np.where((winner >= 0) & (top < supermajority - TIE_TOL), TIE, winner)
    has_ballots = total > 0 if n_ballots is None else (total > 0) | (n_ballots > 0)
    winner = np.where(total > 0, winner, np.where(has_ballots, TIE, NO_VOTES))
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(share > 0, share * np.log(share), 0.0), axis=1)
    ent = ent / np.log(max(tallies.shape[1], 2)) + 0.0  # + 0.0 turns -0.0 into 0.0
    margin = np.where(total > 0, top - second, 0.0)
    return winner, np.where(total > 0, top, 0.0), margin, ent


def ballots(judgments: pd.DataFrame, unit: str = "critic") -> pd.DataFrame:
    """One row per ballot: item_id, critic[, principle], vote, support (list), p0.

    `p0` is the ballot's P(response 0 is better) for pairwise ballots, NaN for score and
    pass/fail ballots (they vote, but their support is not that probability)."""
    if unit not in ("critic", "principle"):
        raise ValueError(f"unit={unit!r}: use 'critic' or 'principle'")
    return _memoized(("ballots", unit), judgments, lambda: _ballots(judgments, unit))


def _ballots(judgments: pd.DataFrame, unit: str) -> pd.DataFrame:
    by = ("item_id", "critic") if unit == "critic" else ("item_id", "critic", "principle")
    sup = response_support(judgments, by=by)
    if sup.empty:
        return pd.DataFrame(columns=[*by, "vote", "p0", "support"])
    # one row per ballot and one column per response anyone supported (a pivot, on codes:
    # the support table is sorted by `by`, so a ballot's rows are adjacent)
    new = np.zeros(len(sup), dtype=bool)
    new[0] = True
    for col in by:
        c = codes_of(sup[col])
        new[1:] |= c[1:] != c[:-1]
    group = np.cumsum(new) - 1
    col_of, labels = sorted_codes(sup["response"].to_numpy(dtype=np.int64))
    values = np.full((int(group[-1]) + 1, len(labels)), np.nan)
    values[group, col_of] = sup["support"].to_numpy(dtype=float)
    # as pivot_table: a ballot (or a response) without any support is left out
    rows = ~np.isnan(values).all(axis=1)
    cols = ~np.isnan(values[rows]).all(axis=0)
    values, labels = values[rows][:, cols], labels[cols]
    if not len(values):
        return pd.DataFrame(columns=[*by, "vote", "p0", "support"])
    first = np.flatnonzero(new)[rows]
    filled = np.where(np.isnan(values), -np.inf, values)
    best = filled.max(axis=1)
    n_best = is_tie(filled, best[:, None]).sum(axis=1)
    # The vote is a response index, not a column position: a response nobody supported on
    # any item has no column (found by the veto proof's property tests, tests/test_veto_proof).
    vote = np.where(n_best > 1, TIE, labels[filled.argmax(axis=1)])
    out = sup[list(by)].iloc[first].reset_index(drop=True)
    out["vote"] = vote
    # p0: response 0's share of the ballot's support on two-response items. A pairwise
    # ballot's supports already sum to 1 (P and 1 - P), so this is its P; a score ballot's
    # are expected 1-10 scores and a passfail ballot's are P(pass) per response, so without
    # the division a panel mixing modes averaged scores into a "probability" (it read ~2).
    if len(labels) and labels[0] == 0:
        two = (~np.isnan(values)).sum(axis=1) == 2
        total = np.nansum(values, axis=1)
        out["p0"] = np.where(two & (total > 0), values[:, 0] / np.where(total > 0, total, 1.0),
                             values[:, 0])
    else:
        out["p0"] = np.nan
    out["support"] = list(values)
    return out


class Vote:
    """Majority (`weighted=False`) or weighted voting with critic and principle weights.

    Fitted: `results_` (per item: tallies, label, share, margin, entropy, mean P(response 0)),
    `labels_` (item_id -> winning response index, "tie" or "abstain"), `ballots_`.
    """

    def __init__(self, *, weighted: bool = True, unit: str = "critic",
                 critic_weights: Mapping[str, float] | None = None,
                 supermajority: float | None = None) -> None:
        if supermajority is not None and not 0.5 <= supermajority <= 1.0:
            raise ValueError(f"supermajority={supermajority} must be in [0.5, 1]")
        self.weighted = weighted
        self.unit = unit
        self.critic_weights = dict(critic_weights or {})
        self.supermajority = supermajority

    def fit(self, judgments: pd.DataFrame) -> Vote:
        b = ballots(judgments, self.unit)
        items = pd.Index(np.asarray(pd.unique(judgments["item_id"]), dtype=object),
                         dtype=object, name="item_id")
        self.ballots_ = b
        if self.weighted:
            w = b["critic"].map(lambda c: float(self.critic_weights.get(c, 1.0))).to_numpy()
            if self.unit == "principle":
                pw = (judgments.drop_duplicates(["critic", "principle"])
                      .set_index(["critic", "principle"])["principle_weight"])
                w = w * pw.reindex(pd.MultiIndex.from_frame(b[["critic", "principle"]])
                                   ).to_numpy(dtype=float)
        else:
            w = np.ones(len(b))
        group = item_positions(b["item_id"], items) if len(b) else np.zeros(0, dtype=int)
        n_classes = max(2, int(b["vote"].max()) + 1 if len(b) else 2)
        t = tally(group, b["vote"].to_numpy(dtype=int), w, len(items), n_classes)
        n_ballots = np.bincount(group, minlength=len(items)) if len(b) else np.zeros(len(items))
        winner, share, margin, ent = decide(t, self.supermajority, n_ballots)
        # Mean probability for response 0 over ballots (weighted), for two-response items.
        p0 = np.full(len(items), np.nan)
        if len(b):
            ok = ~np.isnan(b["p0"].to_numpy(dtype=float))
            num = np.bincount(group[ok], weights=(w * b["p0"].to_numpy(dtype=float))[ok],
                              minlength=len(items))
            den = np.bincount(group[ok], weights=w[ok], minlength=len(items))
            p0 = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        ties = np.bincount(group[b["vote"].to_numpy() == TIE], minlength=len(items)) \
            if len(b) else np.zeros(len(items))
        res = pd.DataFrame({"item_id": items, "n_ballots": n_ballots.astype(int),
                            "ties": ties.astype(int)})
        for k in range(n_classes):
            res[f"votes_{k}"] = t[:, k]
        label = winner.astype(object)
        label[winner == TIE] = "tie"
        label[winner == NO_VOTES] = "abstain"
        res["label"] = label
        res["share"] = share
        res["margin"] = margin
        res["entropy"] = ent
        res["p0"] = p0
        self.results_ = res
        self.labels_ = res.set_index("item_id")["label"]
        return self

