"""The statistics every layer shares, defined once: ties, verdicts from support, position flips,
agreement with reference labels, Wilson and mean intervals, and calibration error.

`PanelResult`, the report, the CLI and `oversight evaluate` call these; nothing else computes
them. Inputs are plain mappings or the long judgments table, so the functions stay small:

- `verdict_of(support)`: the best-supported response, "tie" or "abstain".
- `critic_verdicts(judgments, orders)`: each critic's verdict per item.
- `position_flips(judgments)`: per (item, critic) verdicts with each order shown, and flips.
- `agreement_with_reference(verdicts, reference)`: hits, n, agreement, Wilson interval.
- `wilson_ci`, `mean_ci`, `expected_calibration_error`.

Ties: two supports are tied when they differ by at most `TIE_TOL` (absolute). A tie counts as
half agreement with a reference; an abstention, or any label that is not a response index or
"tie" (undecided, no_quorum, contested, vetoed), is left out of n.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from oversight.aggregate._ballots import (
    PAIRWISE_FIELDS,
    TIE_TOL,
    _check_columns,
    codes_of,
    columnar,
    is_tie,
    response_support,
)

Z95 = 1.959963984540054
ORDERS = ("all", "forward", "reverse")


def verdict_of(support: Iterable[float]) -> int | str:
    """Index of the best-supported response; "tie" when the best two are tied; "abstain" when
    no response has support (all NaN)."""
    vals = [(-math.inf if v is None or math.isnan(v) else float(v)) for v in support]
    if not vals or max(vals) == -math.inf:
        return "abstain"
    best = max(vals)
    winners = [i for i, v in enumerate(vals) if is_tie(v, best)]
    return winners[0] if len(winners) == 1 else "tie"


def critic_verdicts(judgments: pd.DataFrame, orders: str = "all",
                    k_of: Mapping[str, int] | None = None) -> dict[tuple[str, str], int | str]:
    """(item_id, critic) -> verdict from the critic's support (`response_support`).

    Works for pairwise, score and pass/fail critics alike. With orders "forward"/"reverse"
    only pairwise judgments count (a score or pass/fail judgment shows one response, so it has
    no order). Pairs with no support are absent (an abstention).
    """
    if orders not in ORDERS:
        raise ValueError(f"orders={orders!r}: use one of {', '.join(ORDERS)}")
    sup = response_support(judgments, orders=orders)
    item, critic, code, _ = _verdict_columns(sup)
    return dict(zip(zip(item.tolist(), critic.tolist()), _verdict_objects(code).tolist()))


_TIE, _ABSTAIN = -1, -2


def _verdict_columns(sup: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """`verdict_of` for every (item_id, critic) of a `response_support` table (sorted by
    item, critic, response), on columns: item, critic, and the verdict as a code (response
    index, -1 tie, -2 abstain), plus the number of pairs."""
    if len(sup) == 0:
        empty = np.zeros(0, dtype=object)
        return empty, empty, np.zeros(0, dtype=np.int64), 0
    item_codes, critic_codes = codes_of(sup["item_id"]), codes_of(sup["critic"])
    response = sup["response"].to_numpy(dtype=np.int64)
    vals = sup["support"].to_numpy(dtype=float)
    vals = np.where(np.isnan(vals), -np.inf, vals)
    new = np.ones(len(sup), dtype=bool)
    new[1:] = (item_codes[1:] != item_codes[:-1]) | (critic_codes[1:] != critic_codes[:-1])
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    best = np.maximum.reduceat(vals, starts)
    with np.errstate(invalid="ignore"):
        match = np.abs(vals - best[group]) <= TIE_TOL  # -inf (no support) never matches
    n_match = np.bincount(group[match], minlength=len(starts))
    first = np.minimum.reduceat(np.where(match, response, np.iinfo(np.int64).max), starts)
    code = np.where(best == -np.inf, _ABSTAIN, np.where(n_match == 1, first, _TIE))
    item = sup["item_id"].iloc[starts].to_numpy(dtype=object)
    critic = sup["critic"].iloc[starts].to_numpy(dtype=object)
    return item, critic, code, len(starts)


def _verdict_objects(code: np.ndarray) -> np.ndarray:
    """Verdict codes as `verdict_of` returns them: int response, "tie" or "abstain"."""
    out = np.empty(len(code), dtype=object)
    out[code == _TIE] = "tie"
    out[code == _ABSTAIN] = "abstain"
    pick = code >= 0
    out[pick] = code[pick].tolist()
    return out


def position_flips(judgments: pd.DataFrame) -> pd.DataFrame:
    """Per (item_id, critic) of pairwise critics judged in both orders: the verdict with the
    lower index shown first (`forward`), with it shown second (`reverse`), and `flip` (both
    are responses and they differ). Score and pass/fail critics have no shown order and never
    appear. Columns: item_id, critic, forward, reverse, flip."""
    _check_columns(judgments, PAIRWISE_FIELDS)
    judgments = columnar(judgments)  # both orders' tables then share the same codes
    fwd = response_support(judgments, orders="forward")
    rev = response_support(judgments, orders="reverse")
    fi, fc, fv, nf = _verdict_columns(fwd)
    ri, rc, rv, nr = _verdict_columns(rev)
    cols = ["item_id", "critic", "forward", "reverse", "flip"]
    if not nf or not nr:
        return pd.DataFrame([], columns=cols)
    # one key per (item, critic) from the shared category codes; both tables are sorted by it
    n_critics = len(fwd["critic"].cat.categories)
    key_f = _pair_key(fwd, n_critics)
    key_r = _pair_key(rev, n_critics)
    at_f, at_r = _matches(key_f, key_r)
    if not len(at_f):
        return pd.DataFrame([], columns=cols)
    a, b = fv[at_f], rv[at_r]
    return pd.DataFrame({"item_id": fi[at_f], "critic": fc[at_f],
                         "forward": _verdict_objects(a), "reverse": _verdict_objects(b),
                         "flip": (a >= 0) & (b >= 0) & (a != b)}, columns=cols)


def _pair_key(sup: pd.DataFrame, n_critics: int) -> np.ndarray:
    """item code * n_critics + critic code, one per (item, critic) group of a sorted
    `response_support` table (the groups `_verdict_columns` returns, in order)."""
    item, critic = codes_of(sup["item_id"]), codes_of(sup["critic"])
    key = item * n_critics + critic
    new = np.ones(len(key), dtype=bool)
    new[1:] = key[1:] != key[:-1]
    return key[new]


def _matches(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in `a` and in `b` of the keys both hold (each key at most once per array),
    in `a`'s order: by a lookup table when the key range is small, else by sorting."""
    top = int(max(a.max(), b.max())) + 1
    if top <= 4 * (len(a) + len(b)) + 64:
        where_b = np.full(top, -1, dtype=np.int64)
        where_b[b] = np.arange(len(b))
        at_b = where_b[a]
        hit = at_b >= 0
        return np.flatnonzero(hit), at_b[hit]
    _, at_a, at_b = np.intersect1d(a, b, assume_unique=True, return_indices=True)
    return at_a, at_b


def position_flip_rates(judgments: pd.DataFrame, critics: Iterable[str] | None = None
                        ) -> pd.DataFrame:
    """Per critic: n_pairs (items with a response verdict in both orders), flips, flip_rate,
    mean_p_first (mean P(first shown is better), 0.5 for an order-blind judge) and `left_out`
    (why a critic has no rate, e.g. "score mode: no shown order")."""
    flips = position_flips(judgments)
    both = flips[flips["forward"].map(lambda v: isinstance(v, int))
                 & flips["reverse"].map(lambda v: isinstance(v, int))]
    ok = judgments[(judgments["status"] == "ok") & judgments["value"].notna()]
    pw = ok[ok["mode"] == "pairwise"]
    names = list(critics) if critics is not None else list(pd.unique(judgments["critic"]))
    mode_of = ok.drop_duplicates("critic").set_index("critic")["mode"].to_dict()
    rows = []
    for name in names:
        sub = both[both["critic"] == name]
        n = len(sub)
        vals = pw.loc[pw["critic"] == name, "value"].to_numpy(dtype=float)
        mode = mode_of.get(name)
        why = "" if mode in (None, "pairwise") else f"{mode} mode: no shown order"
        rows.append({"critic": name, "n_pairs": n, "flips": int(sub["flip"].sum()),
                     "flip_rate": float(sub["flip"].mean()) if n else math.nan,
                     "mean_p_first": float(vals.mean()) if len(vals) else math.nan,
                     "left_out": why})
    return pd.DataFrame(rows, columns=["critic", "n_pairs", "flips", "flip_rate",
                                       "mean_p_first", "left_out"])


def wilson_ci(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default).

    Better than the normal approximation at small n or near 0/1 (Wilson 1927). Half-credit
    successes (ties) are allowed. n = 0 gives (nan, nan).
    """
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_ci(x: Any, z: float = Z95) -> tuple[float, float, float]:
    """(mean, low, high): normal-approximation interval of a mean, NaNs dropped; the interval
    is NaN with fewer than two values."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    half = z * float(x.std(ddof=1)) / math.sqrt(len(x)) if len(x) > 1 else math.nan
    return m, m - half, m + half


def agreement_with_reference(verdicts: Mapping[str, Any], reference: Mapping[str, int]
                             ) -> dict[str, float | int]:
    """Agreement of verdicts (item_id -> response index, "tie", or anything else = no verdict)
    with reference labels (item_id -> index of the better response).

    Only items present in both count. A response index scores 1 if it equals the reference,
    "tie" scores 0.5, and every other value (abstain, undecided, no_quorum, contested, vetoed,
    missing) is left out of n. Returns n, hits, n_ties, agreement (hits / n) and the 95% Wilson
    interval ci_low, ci_high (NaN when n = 0).
    """
    hits, n, ties = 0.0, 0, 0
    for item, ref in reference.items():
        if ref is None or (isinstance(ref, float) and math.isnan(ref)):
            continue
        v = verdicts.get(item)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            n += 1
            hits += float(int(v) == int(ref))
        elif v == "tie":
            n += 1
            ties += 1
            hits += 0.5
    lo, hi = wilson_ci(hits, n)
    return {"n": n, "hits": hits, "n_ties": ties, "agreement": hits / n if n else math.nan,
            "ci_low": lo, "ci_high": hi}


def agreement_table(verdicts_by_name: Mapping[str, Mapping[str, Any]],
                    reference: Mapping[str, int]) -> pd.DataFrame:
    """One `agreement_with_reference` row per name: critic, n, agreement, ci_low, ci_high,
    n_ties."""
    rows = []
    for name, verdicts in verdicts_by_name.items():
        a = agreement_with_reference(verdicts, reference)
        rows.append({"critic": name, "n": a["n"], "agreement": a["agreement"],
                     "ci_low": a["ci_low"], "ci_high": a["ci_high"], "n_ties": a["n_ties"]})
    return pd.DataFrame(rows, columns=["critic", "n", "agreement", "ci_low", "ci_high",
                                       "n_ties"])


def expected_calibration_error(p0: Any, reference: Any, n_bins: int = 10
                               ) -> tuple[float, pd.DataFrame]:
    """Top-label expected calibration error of P(response 0 is better) against labels.

    Each prediction's confidence is max(p, 1 - p) and it is correct when the favoured
    response is the reference (a tie, p = 0.5 within TIE_TOL, counts as half correct).
    Confidences fall in `n_bins` equal bins over [0.5, 1]; ECE = sum_b (n_b / N) |acc_b -
    conf_b| (Naeini et al. 2015; Guo et al. 2017). Returns (ece, bins: lo, hi, n, confidence,
    accuracy). Only probabilities are calibrated: a score critic's expected score is not one
    (callers leave such critics out and say so).
    """
    p = np.asarray(p0, dtype=float)
    y = np.asarray(reference, dtype=float)
    keep = ~np.isnan(p) & ~np.isnan(y)
    p, y = p[keep], y[keep]
    if np.any((p < 0) | (p > 1)) or np.any((y != 0) & (y != 1)):
        raise ValueError("expected_calibration_error: p0 must lie in [0, 1] and reference "
                         "must be 0 or 1 (the index of the better response)")
    conf = np.maximum(p, 1 - p)
    correct = np.where(is_tie(p, 0.5), 0.5, ((p > 0.5) == (y == 0)).astype(float))
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.bincount(idx, weights=conf, minlength=n_bins) / n
        a = np.bincount(idx, weights=correct, minlength=n_bins) / n
    bins = pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "n": n, "confidence": c,
                         "accuracy": a})
    if len(p) == 0:
        return math.nan, bins
    ece = float(np.nansum(n / len(p) * np.abs(a - c)))
    return ece, bins
