"""Label-free removal of a critic's prior over answer positions, before voting.

A pairwise critic's P(first shown is better) mixes what it thinks of the content with a
prior over positions. Two estimators of that prior, both from the run itself:

* Batch calibration (Zhou et al. 2023, "Batch Calibration"): the prior is the mean
  choice distribution over the batch, pi = mean_i P(first shown)_i, per critic. Balanced
  data (the better response equally often first) is assumed, as in the paper.
* PriDe (Zheng et al. 2023, "Large Language Models Are Not Robust Multiple Choice
  Selectors"): on a small share of items judged in every order, the content term cancels in
  the geometric mean over orders, so per item log pi(first) ∝ mean over orders of
  log P(position first), normalised over positions; the prior is the mean over the sample.

Either way each verdict is debiased as p' ∝ p / pi, i.e. p' = p (1 - pi) / (p (1 - pi) +
(1 - p) pi) for two positions, and the removed prior is reported per critic. Pure functions
over the long judgments table; `aggregate(..., calibrate=...)` applies them before voting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CALIBRATIONS = ("batch", "pride")
_EPS = 1e-6


def debias(p_first: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """p' = p (1 - pi) / (p (1 - pi) + (1 - p) pi): divide out a prior pi on the first slot."""
    p = np.clip(np.asarray(p_first, dtype=float), _EPS, 1 - _EPS)
    pi = np.clip(np.asarray(prior, dtype=float), _EPS, 1 - _EPS)
    num = p * (1 - pi)
    return num / (num + (1 - p) * pi)


def batch_prior(p_first: np.ndarray) -> float:
    """Batch calibration's prior on the first position: the batch mean of P(first)."""
    p = np.asarray(p_first, dtype=float)
    p = p[~np.isnan(p)]
    return float(p.mean()) if len(p) else float("nan")


def pride_prior(p_fwd: np.ndarray, p_rev: np.ndarray) -> float:
    """PriDe's prior on the first position from items judged in both orders.

    Per item: log q_first = (log p_fwd + log p_rev) / 2 and log q_second = (log(1 - p_fwd) +
    log(1 - p_rev)) / 2, where p is P(first shown is better) in each order; the content
    cancels, pi_item = q_first / (q_first + q_second); the prior is the mean over items.
    """
    a = np.clip(np.asarray(p_fwd, dtype=float), _EPS, 1 - _EPS)
    b = np.clip(np.asarray(p_rev, dtype=float), _EPS, 1 - _EPS)
    keep = ~np.isnan(a) & ~np.isnan(b)
    if not keep.any():
        return float("nan")
    lf = 0.5 * (np.log(a[keep]) + np.log(b[keep]))
    ls = 0.5 * (np.log1p(-a[keep]) + np.log1p(-b[keep]))
    return float(np.mean(1.0 / (1.0 + np.exp(ls - lf))))


def _two_way(judgments: pd.DataFrame) -> pd.Series:
    """Rows that are OK pairwise judgments between exactly two shown responses."""
    if judgments.empty:
        return pd.Series(dtype=bool)
    ok = (judgments["status"] == "ok") & (judgments["mode"] == "pairwise") \
        & judgments["value"].notna()
    return ok & (judgments["order"].astype(str).str.count(",") == 1)


def position_priors(judgments: pd.DataFrame, method: str = "batch", *,
                    sample_share: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Per critic: the estimated prior on the first position (`prior`) and the items used.

    `method="pride"` uses a seeded `sample_share` of the items the critic judged in both
    orders (at least 1). Critics without pairwise judgments get no row.
    """
    if method not in CALIBRATIONS:
        raise ValueError(f"calibrate={method!r}: use one of {', '.join(CALIBRATIONS)}")
    if not 0 < sample_share <= 1:
        raise ValueError(f"sample_share={sample_share}: must be in (0, 1]")
    rows = []
    pw = judgments[_two_way(judgments)]
    for critic, part in pw.groupby("critic", sort=False):
        p = part["value"].astype(float).to_numpy()
        if method == "batch":
            rows.append({"critic": critic, "method": method, "prior": batch_prior(p),
                         "n_items": int(part["item_id"].nunique()), "n_judgments": len(part)})
            continue
        shown = part["order"].astype(str).str.split(",", expand=True).astype(int)
        fwd = (shown[0] < shown[1]).to_numpy()
        key = ["item_id", "principle"]
        f = part[fwd].groupby(key)["value"].mean()
        r = part[~fwd].groupby(key)["value"].mean()
        both = f.index.intersection(r.index)
        items = np.array(sorted(set(both.get_level_values("item_id"))))
        if len(items) == 0:
            rows.append({"critic": critic, "method": method, "prior": float("nan"),
                         "n_items": 0, "n_judgments": 0})
            continue
        rng = np.random.default_rng(seed)
        k = max(1, int(round(sample_share * len(items))))
        chosen = set(rng.choice(items, size=k, replace=False).tolist())
        sel = [i for i in both if i[0] in chosen]
        rows.append({"critic": critic, "method": method,
                     "prior": pride_prior(f.loc[sel].to_numpy(), r.loc[sel].to_numpy()),
                     "n_items": len(chosen), "n_judgments": 2 * len(sel)})
    return pd.DataFrame(rows, columns=["critic", "method", "prior", "n_items", "n_judgments"])


def calibrate_positions(judgments: pd.DataFrame, method: str = "batch", *,
                        sample_share: float = 0.1, seed: int = 0
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(judgments with debiased pairwise values, the removed priors per critic).

    Only OK two-way pairwise values change; everything else (pointwise rows, abstentions,
    K-way orders) passes through untouched. The original value is kept in `value_raw`.
    """
    priors = position_priors(judgments, method, sample_share=sample_share, seed=seed)
    out = judgments.copy()
    out["value_raw"] = out["value"]
    mask = _two_way(out).to_numpy()
    prior_of = dict(zip(priors["critic"], priors["prior"], strict=True))
    pi = out.loc[mask, "critic"].map(prior_of).astype(float).to_numpy()
    vals = out.loc[mask, "value"].astype(float).to_numpy()
    fixed = np.where(np.isnan(pi), vals, debias(vals, np.where(np.isnan(pi), 0.5, pi)))
    out["value"] = out["value"].astype(object)
    out.loc[mask, "value"] = fixed
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    return out, priors
