"""Bradley-Terry workloads for benchmarks/aggregation.py: ours vs choix / evalica.

Each function returns {"workload", "ours_s", "baseline_s", "check", "note"}; timings are the
best of a few repeats (one run where the baseline is slow). Data: true log-strengths
~ N(0, 1), random pairs, outcomes drawn from the BT model; fixed seeds. Run with
OPENBLAS_NUM_THREADS=1 for comparable numbers.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from oversight.aggregate import _bradley_terry as core
from oversight.aggregate._bradley_terry import bt_strengths

PRIOR = 0.1  # ours: Gamma(prior + 1, prior); choix.ilsr_pairwise: alpha = prior / n_items


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _comparisons(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    theta = rng.normal(0.0, 1.0, n)
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j += j >= i
    win = rng.random(m) < 1.0 / (1.0 + np.exp(theta[j] - theta[i]))
    return np.where(win, i, j), np.where(win, j, i)


def _kkt(n: int, winners: np.ndarray, losers: np.ndarray, est: np.ndarray, prior: float
         ) -> float:
    """Max |gradient| of the log-posterior at the estimate, put back at MAP scale."""
    theta = est - np.log(np.exp(est).mean()) if prior > 0 else est
    p_win = 1.0 / (1.0 + np.exp(theta[winners] - theta[losers]))  # P(loser would have won)
    grad = np.bincount(winners, p_win, n) - np.bincount(losers, p_win, n)
    return float(np.abs(grad + prior * (1.0 - np.exp(theta))).max())


def bt_pairwise() -> dict[str, Any]:
    """1,000 items, 10^5 comparisons, vs choix.ilsr_pairwise at the same regularisation."""
    import choix

    n, m = 1_000, 100_000
    w, lo = _comparisons(np.random.default_rng(1), n, m)
    ours_s, ours = _best(lambda: bt_strengths(n, w, lo, prior=PRIOR), 5)
    data = np.column_stack([w, lo])
    base_s, base = _best(lambda: choix.ilsr_pairwise(n, data, alpha=PRIOR / n, tol=1e-10), 2)
    diff = np.abs(ours - (base - base.mean())).max()
    return {"workload": "bt_pairwise", "ours_s": ours_s, "baseline_s": base_s,
            "check": f"max_abs_diff_vs_choix_ilsr:{diff:.2e}",
            "note": f"prior={PRIOR} == choix alpha={PRIOR / n:g}"}


def bt_large() -> dict[str, Any]:
    """10,000 items, 10^6 comparisons. choix's I-LSR builds a dense 10^4 x 10^4 chain (800 MB)
    and LU-factorises it every iteration (minutes on this machine), so it is not run."""
    n, m = 10_000, 1_000_000
    w, lo = _comparisons(np.random.default_rng(2), n, m)
    ours_s, ours = _best(lambda: bt_strengths(n, w, lo, prior=PRIOR), 3)
    return {"workload": "bt_large", "ours_s": ours_s, "baseline_s": None,
            "check": f"kkt_max_abs_grad:{_kkt(n, w, lo, ours, PRIOR):.2e}",
            "note": "choix not run: dense n x n LU per iteration exceeds 60 s"}


def bt_batched(n_prompts: int = 100_000, subset: int = 2_000) -> dict[str, Any]:
    """10^5 prompts x 4 responses x 5 critics, each critic judges all 6 pairs once.

    Baseline: choix.ilsr_pairwise looped over a random subset of prompts, time extrapolated
    linearly to all prompts; the check compares estimates on that subset.
    """
    import choix

    k, critics = 4, 5
    rng = np.random.default_rng(3)
    iu, ju = np.triu_indices(k, 1)
    theta = rng.normal(0.0, 1.0, (n_prompts, k))
    group = np.repeat(np.arange(n_prompts), critics * len(iu))
    i, j = np.tile(iu, n_prompts * critics), np.tile(ju, n_prompts * critics)
    win = rng.random(len(group)) < 1.0 / (1.0 + np.exp(theta[group, j] - theta[group, i]))
    w, lo = np.where(win, i, j), np.where(win, j, i)
    ours_s, ours = _best(lambda: core.bt_strengths_batched(group, k, w, lo, prior=PRIOR), 2)
    ours = ours.reshape(n_prompts, k)
    picked = np.sort(rng.choice(n_prompts, subset, replace=False))
    rows = np.split(np.arange(len(group)), np.cumsum(np.bincount(group))[:-1])
    datasets = [np.column_stack([w[rows[g]], lo[rows[g]]]) for g in picked]
    start = time.perf_counter()
    base = np.array([choix.ilsr_pairwise(k, d, alpha=PRIOR / k, tol=1e-10, max_iter=10_000)
                     for d in datasets])
    base_s = (time.perf_counter() - start) * n_prompts / subset
    diff = np.abs(ours[picked] - (base - base.mean(axis=1, keepdims=True))).max()
    return {"workload": "bt_batched", "ours_s": ours_s, "baseline_s": base_s,
            "check": f"max_abs_diff_vs_choix_on_{subset}_prompts_time_extrapolated_x"
                     f"{n_prompts // subset}:{diff:.2e}",
            "note": f"{len(group)} comparisons"}


def bt_global(m: int = 10_000_000, n: int = 100) -> dict[str, Any]:
    """10^7 comparisons over 100 models (Arena-style), no prior, vs evalica.bradley_terry
    (Rust solver, given the index so that it skips its own Python-level indexing)."""
    w, lo = _comparisons(np.random.default_rng(4), n, m)
    ours_s, ours = _best(lambda: bt_strengths(n, w, lo), 3)
    base_s, check = None, f"kkt_max_abs_grad:{_kkt(n, w, lo, ours, 0.0):.2e}"
    try:
        import evalica
        import pandas as pd
    except ImportError:
        return {"workload": "bt_global", "ours_s": ours_s, "baseline_s": None, "check": check,
                "note": "evalica not installed"}
    winners = [evalica.Winner.X] * m  # xs = winners, ys = losers
    index = pd.Index(range(n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base_s, res = _best(lambda: evalica.bradley_terry(w, lo, winners, index=index,
                                                          tolerance=1e-10, limit=1000), 2)
    theirs = np.log(res.scores.reindex(index).to_numpy())
    diff = np.abs(ours - (theirs - theirs.mean())).max()
    return {"workload": "bt_global", "ours_s": ours_s, "baseline_s": base_s,
            "check": f"max_abs_diff_vs_evalica:{diff:.2e}",
            "note": f"evalica iterations={res.iterations}; ours {check}"}


WORKLOADS = [bt_pairwise, bt_large, bt_batched, bt_global]

if __name__ == "__main__":
    for workload in WORKLOADS:
        r = workload()
        ratio = r["baseline_s"] / r["ours_s"] if r["baseline_s"] else None
        print(f"BENCH workload={r['workload']} ours_s={r['ours_s']:.3f} "
              f"baseline_s={r['baseline_s']} ratio={ratio} check={r['check']}  # {r['note']}")
