"""Dawid-Skene and Krippendorff's alpha against their reference implementations.

Each workload returns {"workload", "ours_s", "baseline_s", "check"}; `benchmarks/aggregation.py`
prints them. Run with OPENBLAS_NUM_THREADS=1 for stable numbers. The references (crowd-kit,
krippendorff) are dev extras: pip install 'oversight[dev]'.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def _best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _reference(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as err:
        raise ImportError(f"this benchmark compares against '{module}', which is not installed; "
                          "run: pip install 'oversight[dev]'") from err


def planted_binary_labels(n_items: int = 50_000, n_critics: int = 10, missing: float = 0.1,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(truth [n_items], labels [n_items, n_critics] with -1 = missing), skills in [0.55, 0.9]."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    skill = rng.uniform(0.55, 0.9, n_critics)
    correct = rng.random((n_items, n_critics)) < skill
    labels = np.where(correct, truth[:, None], 1 - truth[:, None])
    labels[rng.random(labels.shape) < missing] = -1
    return truth, labels


def dawid_skene(n_items: int = 50_000, n_critics: int = 10, n_iter: int = 10) -> dict[str, Any]:
    """Seconds per EM iteration (setup included, amortised), ours vs crowd-kit, equal iterations.

    Both start from majority-vote shares and run exactly `n_iter` E+M steps (no early stop,
    no smoothing), so their labels should coincide; the check is the share that do.
    """
    from oversight.aggregate._dawid_skene import dawid_skene_em

    crowdkit = _reference("crowdkit.aggregation")
    _, labels = planted_binary_labels(n_items, n_critics)
    task, worker = np.nonzero(labels >= 0)
    table = pd.DataFrame({"task": task, "worker": worker, "label": labels[task, worker]})

    ours_s, ours = _best_of(lambda: dawid_skene_em(labels, 2, max_iter=n_iter, tol=None,
                                                   smoothing=0.0), repeat=3)
    ref_model = crowdkit.aggregation.DawidSkene(n_iter=n_iter, tol=-np.inf)
    base_s, ref = _best_of(lambda: ref_model.fit(table), repeat=1)
    ref_labels = ref.labels_.reindex(range(n_items)).to_numpy()
    agree = float((ours.posteriors.argmax(axis=1) == ref_labels).mean())
    return {"workload": "dawid_skene", "ours_s": ours_s / n_iter, "baseline_s": base_s / n_iter,
            "check": f"label_agreement:{agree:.6f}"}


def krippendorff_alpha(n_raters: int = 10, n_units: int = 50_000, n_values: int = 3,
                       missing: float = 0.1) -> dict[str, Any]:
    """Seconds per call, nominal alpha with missing data, ours vs the krippendorff package."""
    from oversight.aggregate._agreement import krippendorff_alpha as ours_alpha

    kripp = _reference("krippendorff")
    rng = np.random.default_rng(0)
    truth = rng.integers(0, n_values, n_units)
    noise = rng.integers(0, n_values, (n_raters, n_units))
    data = np.where(rng.random((n_raters, n_units)) < 0.7, truth, noise).astype(float)
    data[rng.random(data.shape) < missing] = np.nan

    ours_s, ours = _best_of(lambda: ours_alpha(data, "nominal"), repeat=5)
    base_s, ref = _best_of(lambda: kripp.alpha(data, level_of_measurement="nominal"), repeat=3)
    return {"workload": "krippendorff_alpha", "ours_s": ours_s, "baseline_s": base_s,
            "check": f"abs_diff:{abs(ours - ref):.3e}"}


WORKLOADS = [dawid_skene, krippendorff_alpha]


if __name__ == "__main__":
    for workload in WORKLOADS:
        r = workload()
        print(f"BENCH workload={r['workload']} ours_s={r['ours_s']:.5f} "
              f"baseline_s={r['baseline_s']:.5f} ratio={r['baseline_s'] / r['ours_s']:.1f} "
              f"check={r['check']}")
