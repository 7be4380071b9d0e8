"""Judge quality against a reference: agreement, trivial baselines, position and length control.

Pure functions over arrays and long tables, in the manner of judge benchmarks:

* agreement with the reference with 95% Wilson intervals (Wilson 1927), ties count half;
* trivial baselines on the same items: first shown, longer, shorter, random;
* position consistency: share of items whose verdict survives swapping the order;
* length control after AlpacaEval's length-controlled win rate (Dubois et al. 2024): a
  logistic fit of a verdict on ``tanh(dlen / sigma)`` and an intercept. The length
  coefficient says how much the verdict follows length; the length-controlled agreement is
  the fit of "agrees with the reference" on the chosen-minus-rejected length difference,
  read at ``dlen = 0`` (sigmoid of the intercept);
* RewardBench-style subsets: "chosen is longer" vs "chosen is shorter" (Lambert et al. 2024).

Verdicts are coded 0 (response 0 better), 1 (response 1 better), -1 (exact tie) and NaN
(abstained / missing: left out of n, never a vote).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from oversight.aggregate._ballots import pairwise_rows, response_support
from oversight.aggregate._stats import wilson_ci

BASELINES = ("first shown", "longer", "shorter", "random")
TIE = -1


wilson_interval = wilson_ci  # one definition, in oversight.aggregate._stats


def verdict_of(score: Any, eps: float = 1e-12) -> np.ndarray:
    """Signed preference for response 0 (> 0) -> verdict 0, < 0 -> 1, 0 -> tie, NaN -> NaN."""
    s = np.asarray(score, dtype=float)
    return np.where(np.isnan(s), np.nan, np.where(s > eps, 0.0, np.where(s < -eps, 1.0, TIE)))


def agreement(verdict: Any, reference: Any) -> dict[str, float | int]:
    """Share of items whose verdict is the reference (tie = half), with a 95% Wilson CI."""
    v = np.asarray(verdict, dtype=float)
    r = np.asarray(reference, dtype=float)
    keep = ~np.isnan(v) & ~np.isnan(r)
    v, r = v[keep], r[keep]
    hits = float(np.where(v == TIE, 0.5, (v == r).astype(float)).sum())
    n = int(len(v))
    lo, hi = wilson_interval(hits, n)
    return {"n": n, "agreement": hits / n if n else math.nan, "ci_low": lo, "ci_high": hi}


def baseline_verdicts(len0: Any, len1: Any, first_shown: Any | None = None, *,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Verdicts of the trivial judges: first shown, longer, shorter, random (seeded coin).

    `first_shown` is the response index shown first in the forward order (0 by default, as
    in runs whose items keep the data's order with the reference position randomised).
    Equal lengths are ties for the length baselines.
    """
    a = np.asarray(len0, dtype=float)
    b = np.asarray(len1, dtype=float)
    first = np.zeros(len(a)) if first_shown is None else np.asarray(first_shown, dtype=float)
    longer = verdict_of(a - b)
    rng = np.random.default_rng(seed)
    return {"first shown": first, "longer": longer, "shorter": verdict_of(b - a),
            "random": rng.integers(0, 2, len(a)).astype(float)}


def logistic_fit(y: Any, x: Any, l2: float = 1e-3, iters: int = 50) -> tuple[float, float]:
    """(intercept, coefficient) of P(y = 1) = sigmoid(b0 + b1 x) by Newton's method.

    `y` may be soft (in [0, 1]). A tiny ridge on b1 keeps separable data finite.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if len(y) == 0:
        return (math.nan, math.nan)
    X = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    ridge = np.diag([1e-6, l2]) * len(y)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -30, 30)))
        grad = X.T @ (y - p) - ridge @ beta
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def length_sigma(len0: Any, len1: Any) -> float:
    """The scale of tanh(dlen / sigma): the standard deviation of dlen (AlpacaEval's choice)."""
    d = np.asarray(len0, dtype=float) - np.asarray(len1, dtype=float)
    s = float(np.std(d)) if len(d) > 1 else 0.0
    return s if s > 0 else 1.0


def length_control(verdict: Any, reference: Any, len0: Any, len1: Any,
                   sigma: float | None = None) -> dict[str, float]:
    """AlpacaEval-style length control of one judge's verdicts.

    * ``length_coef``: b1 of P(verdict = response 0) = sigmoid(b0 + b1 tanh((len0 - len1) /
      sigma)); > 0 means the judge follows the longer response.
    * ``length_share``: share of decided verdicts that the length term alone predicts (the
      longer response if b1 > 0, else the shorter; equal lengths excluded).
    * ``lc_agreement``: with reference labels, P(agree with the reference) fitted as
      sigmoid(c0 + c1 tanh((len_chosen - len_rejected) / sigma)) and read at dlen = 0, i.e.
      sigmoid(c0): the agreement expected if chosen and rejected had equal length.
    """
    v = np.asarray(verdict, dtype=float)
    a = np.asarray(len0, dtype=float)
    b = np.asarray(len1, dtype=float)
    sig = sigma if sigma else length_sigma(a, b)
    dec = ~np.isnan(v) & (v != TIE)
    x = np.tanh((a - b) / sig)
    out = {"length_coef": math.nan, "length_share": math.nan, "lc_agreement": math.nan,
           "sigma": sig}
    if dec.sum() >= 2:
        y = (v[dec] == 0).astype(float)
        _, b1 = logistic_fit(y, x[dec])
        out["length_coef"] = b1
        d = (a - b)[dec]
        has = d != 0
        if has.any():
            follows_longer = (d[has] > 0) == (y[has] == 1)
            out["length_share"] = float(np.mean(follows_longer if b1 >= 0 else ~follows_longer))
    if reference is not None:
        r = np.asarray(reference, dtype=float)
        keep = ~np.isnan(v) & ~np.isnan(r)
        if keep.sum() >= 2:
            hit = np.where(v[keep] == TIE, 0.5, (v[keep] == r[keep]).astype(float))
            d_chosen = np.where(r[keep] == 0, a[keep] - b[keep], b[keep] - a[keep])
            c0, _ = logistic_fit(hit, np.tanh(d_chosen / sig))
            out["lc_agreement"] = float(1.0 / (1.0 + math.exp(-c0)))
    return out


def judge_scores(judgments: pd.DataFrame) -> pd.DataFrame:
    """Per (item, critic) on two-response items: preference for response 0 overall and in
    each order, and the mean P(first shown).

    Columns: item_id, critic, score (support(0) - support(1), both orders), score_fwd and
    score_rev (only the forward / reverse order; NaN for pointwise critics), p_first (mean
    P(first shown is better) over the critic's pairwise judgments; NaN for pointwise).
    """
    sup = response_support(judgments)
    wide = sup.pivot_table(index=["item_id", "critic"], columns="response", values="support")
    cols = ["item_id", "critic", "score", "score_fwd", "score_rev", "p_first"]
    if 0 not in wide.columns or 1 not in wide.columns:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame({"score": wide[0] - wide[1]})
    pw = pairwise_rows(judgments)
    pw = pw[(pw["a"] <= 1) & (pw["b"] <= 1)]
    if not pw.empty:
        pw = pw.assign(s0=np.where(pw["a"] == 0, pw["p_ab"], 1 - pw["p_ab"]) - 0.5,
                       wt=pw["weight"])
        pw["ws0"] = pw["s0"] * pw["wt"]
        g = pw.groupby(["item_id", "critic", "forward"])[["ws0", "wt"]].sum()
        by_order = (g["ws0"] / g["wt"]).unstack("forward")
        out["score_fwd"] = by_order.get(True, pd.Series(dtype=float)).reindex(out.index)
        out["score_rev"] = by_order.get(False, pd.Series(dtype=float)).reindex(out.index)
        out["p_first"] = pw.groupby(["item_id", "critic"])["p_ab"].mean().reindex(out.index)
    else:
        out["score_fwd"] = out["score_rev"] = out["p_first"] = np.nan
    return out.reset_index()[cols]


def quality_rows(name: str, kind: str, verdict: np.ndarray, reference: np.ndarray,
                 len0: np.ndarray, len1: np.ndarray, *, verdict_fwd: np.ndarray | None = None,
                 verdict_rev: np.ndarray | None = None, p_first: np.ndarray | None = None,
                 sigma: float | None = None) -> dict[str, Any]:
    """One table row: agreement + CI, position consistency, mean P(first shown), length."""
    row: dict[str, Any] = {"name": name, "kind": kind, **agreement(verdict, reference)}
    cons = math.nan
    if verdict_fwd is not None and verdict_rev is not None:
        both = ~np.isnan(verdict_fwd) & ~np.isnan(verdict_rev)
        if both.any():
            cons = float(np.mean(verdict_fwd[both] == verdict_rev[both]))
    row["position_consistency"] = cons
    pf = p_first[~np.isnan(p_first)] if p_first is not None else np.zeros(0)
    row["mean_p_first"] = float(pf.mean()) if len(pf) else math.nan
    row.update(length_control(verdict, reference, len0, len1, sigma))
    return row


def mark_baselines(table: pd.DataFrame) -> pd.DataFrame:
    """Add `best_baseline` (per subset) and `clears_baseline`: the judge's 95% interval lies
    wholly above the best trivial baseline's agreement on the same items."""
    out = table.copy()
    out["best_baseline"] = math.nan
    out["clears_baseline"] = pd.array([pd.NA] * len(out), dtype="boolean")
    for _, part in out.groupby("subset", sort=False):
        base = part[part["kind"] == "baseline"]
        if base.empty or base["agreement"].isna().all():
            continue
        best = float(base["agreement"].max())
        idx = part.index
        out.loc[idx, "best_baseline"] = best
        judges = part[part["kind"].isin(["critic", "panel"])].index
        out.loc[judges, "clears_baseline"] = (out.loc[judges, "ci_low"] > best).to_numpy()
    return out


def quality_table(items: pd.DataFrame, verdicts: pd.DataFrame, *,
                  subsets: Sequence[str] = (), seed: int = 0) -> pd.DataFrame:
    """Every judge-quality figure per judge and subset, with the baselines on the same items.

    `items`: one row per two-response item with columns item_id, reference (0/1), len0,
    len1, and any subset columns named in `subsets`. `verdicts`: long (item_id, name, kind,
    verdict, verdict_fwd, verdict_rev, p_first) with kind "critic" or "panel". Subsets:
    "all", each value of each subset column ("topic=cooking"), and RewardBench's "chosen
    longer" / "chosen shorter". The length scale sigma is fixed on all items.
    """
    items = items[items["reference"].notna()].reset_index(drop=True)
    sigma = length_sigma(items["len0"], items["len1"])
    ref = items["reference"].to_numpy(dtype=float)
    dlen_chosen = np.where(ref == 0, items["len0"] - items["len1"],
                           items["len1"] - items["len0"])
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(len(items), dtype=bool))]
    for col in subsets:
        for value in sorted(pd.unique(items[col].astype(str))):
            groups.append((f"{col}={value}", (items[col].astype(str) == value).to_numpy()))
    groups += [("chosen longer", dlen_chosen > 0), ("chosen shorter", dlen_chosen < 0)]
    base = baseline_verdicts(items["len0"], items["len1"], seed=seed)
    names = list(dict.fromkeys(verdicts["name"]))
    kinds = dict(zip(verdicts["name"], verdicts["kind"], strict=False))
    aligned: dict[str, pd.DataFrame] = {
        n: verdicts[verdicts["name"] == n].drop_duplicates("item_id").set_index("item_id")
        .reindex(items["item_id"]) for n in names}
    rows = []
    for subset, mask in groups:
        if not mask.any():
            continue
        a, b, r = (items["len0"].to_numpy(float)[mask], items["len1"].to_numpy(float)[mask],
                   ref[mask])
        for n in names:
            v = aligned[n]
            cols = {c: v[c].to_numpy(dtype=float)[mask] if c in v else None
                    for c in ("verdict_fwd", "verdict_rev", "p_first")}
            rows.append({"subset": subset, **quality_rows(
                n, kinds[n], v["verdict"].to_numpy(dtype=float)[mask], r, a, b,
                verdict_fwd=cols["verdict_fwd"], verdict_rev=cols["verdict_rev"],
                p_first=cols["p_first"], sigma=sigma)})
        rows.append({"subset": subset, **quality_rows("reference", "reference", r, r, a, b,
                                                      sigma=sigma)})
        for bname in BASELINES:
            rows.append({"subset": subset, **quality_rows(bname, "baseline", base[bname][mask],
                                                          r, a, b, sigma=sigma)})
    return mark_baselines(pd.DataFrame(rows))
