"""Best-of-n under a proxy, scored by a gold judge: the unbiased estimator and its intervals.

Given N samples per prompt with proxy rewards r_1..r_N and gold rewards g_1..g_N, best-of-n
draws n of the N without replacement, keeps the one with the highest proxy reward (ties broken
uniformly at random) and reports its gold reward. Averaging over all C(N, n) subsets, as in
Nakano et al. (2021, WebGPT, appendix) and Gao et al. (2022), is unbiased and uses every
sample, unlike one random draw:

    sort by proxy; a tie group holding sorted ranks a..b (1-based) is the subset maximum with
    probability  w = [C(b, n) - C(a - 1, n)] / C(N, n),
    and then, by exchangeability within the group, the chosen sample's expected gold is the
    group's mean gold.

E[gold of best-of-n] = sum over groups w * mean_gold(group); likewise for the proxy.
Best-of-n's KL from the sampling policy is log n - (n - 1) / n (Stiennon et al. 2020).
Intervals: percentile bootstrap over prompts. Pure numpy; no model I/O.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
from scipy.special import gammaln


def bon_kl(n: int | np.ndarray) -> np.ndarray:
    """KL(best-of-n || policy) = log n - (n - 1) / n, in nats."""
    n = np.asarray(n, dtype=float)
    if np.any(n < 1):
        raise ValueError(f"n must be >= 1, got {n}")
    return np.log(n) - (n - 1.0) / n


def _log_comb(a: np.ndarray, n: int) -> np.ndarray:
    """log C(a, n), -inf where a < n."""
    a = np.asarray(a, dtype=float)
    out = np.full(a.shape, -np.inf)
    ok = a >= n
    out[ok] = gammaln(a[ok] + 1) - gammaln(n + 1) - gammaln(a[ok] - n + 1)
    return out


def max_weights(proxy: np.ndarray, n: int) -> np.ndarray:
    """Per sample: the probability that best-of-n (n of these N, ties at random) picks it.

    `proxy` is one prompt's N proxy rewards; NaN (abstained) ranks below every number, and
    NaNs tie with each other. The weights sum to 1.
    """
    r = np.asarray(proxy, dtype=float)
    big_n = len(r)
    if not 1 <= n <= big_n:
        raise ValueError(f"n={n} must be between 1 and the number of samples ({big_n})")
    key = np.where(np.isnan(r), -np.inf, r)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    # tie groups in sorted order: [start, end) indices
    bounds = np.flatnonzero(np.diff(sorted_key) != 0) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [big_n]])
    log_total = _log_comb(np.array([big_n]), n)[0]
    group_w = np.exp(_log_comb(ends, n) - log_total) - np.exp(_log_comb(starts, n) - log_total)
    w = np.empty(big_n)
    for s, e, gw in zip(starts, ends, group_w):
        w[order[s:e]] = max(gw, 0.0) / (e - s)
    return w


def best_of_n(proxy: np.ndarray, gold: np.ndarray, ns: list[int] | np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Expected (gold, proxy) of the best-of-n choice, per prompt and n.

    proxy, gold: [P, N] arrays (prompts x samples). Returns two [P, len(ns)] arrays. A NaN
    proxy is never preferred over a scored sample; a NaN gold raises, naming prompt and sample.
    """
    proxy = np.asarray(proxy, dtype=float)
    gold = np.asarray(gold, dtype=float)
    if proxy.shape != gold.shape or proxy.ndim != 2:
        raise ValueError(f"proxy {proxy.shape} and gold {gold.shape} must be the same [P, N]")
    bad = np.argwhere(np.isnan(gold))
    if len(bad):
        p, s = bad[0]
        raise ValueError(f"gold reward is missing (NaN) for prompt {p}, sample {s} "
                         f"({len(bad)} in all): the gold judge must score every sample")
    out_g = np.empty((proxy.shape[0], len(ns)))
    out_p = np.empty_like(out_g)
    for i in range(proxy.shape[0]):
        for j, n in enumerate(ns):
            w = max_weights(proxy[i], int(n))
            out_g[i, j] = float(w @ gold[i])
            out_p[i, j] = _scored_mean(w, proxy[i])
    return out_g, out_p


def _scored_mean(w: np.ndarray, proxy: np.ndarray) -> float:
    """The chosen sample's expected proxy reward, given that it has one (NaN if none has)."""
    ok = ~np.isnan(proxy)
    mass = float(w[ok].sum())
    return float(w[ok] @ proxy[ok]) / mass if mass > 0 else math.nan


def best_of_n_brute_force(proxy: np.ndarray, gold: np.ndarray, n: int) -> float:
    """The same expectation by enumerating every n-subset (for tests; exponential)."""
    proxy = np.asarray(proxy, dtype=float)
    key = np.where(np.isnan(proxy), -np.inf, proxy)
    total, count = 0.0, 0
    for subset in combinations(range(len(proxy)), n):
        best = max(key[list(subset)])
        tied = [i for i in subset if key[i] == best]
        total += float(np.mean([gold[i] for i in tied]))
        count += 1
    return total / count


def bootstrap_means(per_prompt: np.ndarray, n_boot: int = 1000, seed: int = 0,
                    level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over prompts (axis 0) with a percentile bootstrap interval over prompts."""
    x = np.asarray(per_prompt, dtype=float)
    mean = np.nanmean(x, axis=0)
    if x.shape[0] < 2 or n_boot < 1:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    idx = np.random.default_rng(seed).integers(0, x.shape[0], size=(n_boot, x.shape[0]))
    reps = np.nanmean(x[idx], axis=1)  # [B, ...]
    a = (1 - level) / 2
    return mean, np.nanquantile(reps, a, axis=0), np.nanquantile(reps, 1 - a, axis=0)


def hacking_gap(per_prompt_gold: np.ndarray, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> dict[str, float]:
    """Gold at its peak (over the optimisation axis) minus gold at the largest optimisation.

    per_prompt_gold: [P, T] (prompts x increasing n or steps). Returns the gap, its bootstrap
    interval over prompts, the peak's index and the gold at the peak and at the end. The gap is
    >= 0; 0 means gold never fell below its last value.
    """
    x = np.asarray(per_prompt_gold, dtype=float)
    curve = np.nanmean(x, axis=0)
    peak = int(np.nanargmax(curve))
    out = {"gap": float(curve[peak] - curve[-1]), "peak_index": peak,
           "gold_peak": float(curve[peak]), "gold_last": float(curve[-1]),
           "gap_lo": math.nan, "gap_hi": math.nan}
    if x.shape[0] >= 2 and n_boot >= 1:
        idx = np.random.default_rng(seed).integers(0, x.shape[0], size=(n_boot, x.shape[0]))
        reps = np.nanmean(x[idx], axis=1)
        gaps = np.nanmax(reps, axis=1) - reps[:, -1]
        a = (1 - level) / 2
        out["gap_lo"], out["gap_hi"] = (float(np.quantile(gaps, a)),
                                        float(np.quantile(gaps, 1 - a)))
    return out
