"""Bradley-Terry strengths from soft pairwise judgments, one graph or many small graphs at once.

Model (Bradley & Terry 1952): P(i beats j) = w_i / (w_i + w_j), w_i = exp(theta_i). A judgment
"a shown first, P(a better) = v" is a soft comparison: a beats b with weight v and b beats a
with weight 1 - v, so a tie (v = 0.5) is half a win each.

Prior (`prior` = alpha >= 0): independent Gamma(alpha + 1, rate alpha) priors on w_i (Caron &
Doucet 2012), i.e. the log-posterior adds alpha * sum_i (theta_i - exp(theta_i)). Near theta = 0
this is about alpha virtual wins and alpha virtual losses against an average item; it makes
every estimate finite. It is exactly choix's regularisation: ``choix.mm_pairwise(alpha=a)`` and
``choix.ilsr_pairwise(alpha=a / n_items)`` have the same maximiser.

Solver: the fixed-point iteration of Newman (2023, JMLR 24:1-25), which solves the same
stationarity equations as MM (Hunter 2004) and I-LSR (Maystre & Grossglauser 2015) but needs
far fewer sweeps:  w_i <- (sum_j c_ij w_j/(w_i+w_j) + alpha) / (sum_j c_ji/(w_i+w_j) + alpha),
with c_ij the weight of "i beats j". Each sweep is a few np.bincount calls over the edges;
no n x n matrix is formed. Strengths are identified only up to a shift within each connected
component, so they are reported centred (mean 0) per component.

Without a prior the maximum-likelihood estimate exists only where the "beats" digraph is
strongly connected (Ford 1957): an item that never lost or never won drifts to +-infinity. We
then warn and fit each strongly connected component on its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph
from scipy.stats import norm

from oversight.aggregate._ballots import PAIRWISE_FIELDS, _check_columns

MAX_COV_ENTRIES = 1 << 24  # dense covariance blocks beyond this fall back to 1/H_ii


class AggregationWarning(UserWarning):
    """An aggregate is less than it seems: disconnected comparisons, divergent MLE, no convergence."""


class StrengthFit(NamedTuple):
    """Per-item log-strengths with uncertainty. `cov`: per-group blocks (n_groups, K, K) or None."""

    log_strength: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    component: np.ndarray
    cov: np.ndarray | None


@dataclass(frozen=True)
class _Graph:
    """Comparisons aggregated into undirected edges (ei < ej) with a weight per direction.

    Row weights are summed into slots (`slot` per row); edge e reads "ei beats ej" from slot
    ka[e] and "ej beats ei" from slot kb[e] (kb is None when rows are used as edges directly).
    """

    offset: np.ndarray  # (n_groups + 1,) first flat item of each group
    ei: np.ndarray
    ej: np.ndarray
    slot: np.ndarray
    n_slots: int
    ka: np.ndarray
    kb: np.ndarray | None

    @property
    def n(self) -> int:
        return int(self.offset[-1])

    def weights(self, row_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        acc = np.bincount(self.slot, weights=row_weights, minlength=self.n_slots)
        return acc[self.ka], (None if self.kb is None else acc[self.kb])


def _as_index(x: Any, name: str, bound: np.ndarray | int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"'{name}' must be a 1-D integer array of item indices")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or np.any(arr >= bound)):
        raise ValueError(f"'{name}' has indices outside [0, n_items)")
    return arr


def _build_graph(sizes: np.ndarray, group: np.ndarray, win: np.ndarray, lose: np.ndarray,
                 weights: np.ndarray) -> _Graph:
    """Aggregate rows into edges: dense bincount on (group, i, j) when that key space is small."""
    offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    k, m = int(sizes.max(initial=1)), len(win)
    n_slots = len(sizes) * k * k
    if n_slots <= max(16 * m, 1 << 20):
        slot = (group * k + win) * k + lose
        acc = np.bincount(slot, weights=weights, minlength=n_slots).reshape(-1, k, k)
        iu, ju = np.triu_indices(k, 1)
        g, p = np.nonzero(acc[:, iu, ju] + acc[:, ju, iu] > 0)
        i, j = iu[p], ju[p]
        return _Graph(offset, offset[g] + i, offset[g] + j, slot, n_slots,
                      (g * k + i) * k + j, (g * k + j) * k + i)
    keep = np.flatnonzero(weights > 0)
    base = offset[group[keep]]
    return _Graph(offset, base + win[keep], base + lose[keep], np.arange(m), m, keep, None)


def _describe(idx: np.ndarray, names: Sequence[Any] | None, limit: int = 8) -> str:
    shown = [repr(names[i]) if names is not None else str(int(i)) for i in idx[:limit]]
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return "[" + ", ".join(shown) + more + "]"


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel components 0, 1, ... in order of their smallest item."""
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[labels]


def _components(graph: _Graph, a: np.ndarray, b: np.ndarray | None, prior: float,
                names: Sequence[Any] | None, group_names: Sequence[Any] | None) -> np.ndarray:
    """Component per item (canonical labels); warns on disconnection and divergent items.

    With prior > 0 components are the connected components. With prior == 0 they are the
    strongly connected components of the "beats" digraph, where the MLE is finite.
    """
    n, n_groups = graph.n, len(graph.offset) - 1
    b = np.zeros_like(a) if b is None else b
    adj = sparse.coo_matrix((np.ones(len(a)), (graph.ei, graph.ej)), shape=(n, n))
    comp = _canonical(csgraph.connected_components(adj, directed=False)[1])
    n_comp = int(comp.max(initial=-1)) + 1
    group_of = np.repeat(np.arange(n_groups), np.diff(graph.offset))
    if n_groups == 1 and n_comp > 1:
        sizes = np.bincount(comp)
        members = [_describe(np.flatnonzero(comp == c), names, 4) for c in range(min(n_comp, 4))]
        warnings.warn(
            f"comparison graph is disconnected: {n_comp} components of sizes "
            f"{sizes[:8].tolist()}{'...' if n_comp > 8 else ''}, e.g. {', '.join(members)}; "
            "log-strengths are centred within each component and are not comparable across "
            "components (see `component`)", AggregationWarning, stacklevel=4)
    elif n_groups > 1 and n:
        bad = np.flatnonzero(comp[graph.offset[1:] - 1] != comp[graph.offset[:-1]])
        if len(bad):
            warnings.warn(
                f"{len(bad)} of {n_groups} group(s) {_describe(bad, group_names)} have responses "
                "that no comparison connects; their log-strengths are centred within each "
                "connected component (see `component`)", AggregationWarning, stacklevel=4)
    if prior > 0:
        return comp
    fwd, back = a > 0, b > 0
    beats = sparse.coo_matrix(
        (np.ones(fwd.sum() + back.sum()),
         (np.concatenate([graph.ei[fwd], graph.ej[back]]),
          np.concatenate([graph.ej[fwd], graph.ei[back]]))), shape=(n, n))
    strong = _canonical(csgraph.connected_components(beats, directed=True,
                                                     connection="strong")[1])
    if strong.max(initial=0) == comp.max(initial=0):
        return comp
    won = np.bincount(graph.ei, a, n) + np.bincount(graph.ej, b, n)
    lost = np.bincount(graph.ei, b, n) + np.bincount(graph.ej, a, n)
    seen = (won + lost) > 0
    undefeated = np.flatnonzero(seen & (lost == 0))
    winless = np.flatnonzero(seen & (won == 0))
    where = ""
    if n_groups > 1:
        split = np.flatnonzero(np.bincount(group_of[np.unique(strong, return_index=True)[1]],
                                           minlength=n_groups)
                               > np.bincount(group_of[np.unique(comp, return_index=True)[1]],
                                             minlength=n_groups))
        where = f" in {len(split)} group(s) {_describe(split, group_names)}"
    warnings.warn(
        f"without a prior the Bradley-Terry MLE diverges{where}: item(s) "
        f"{_describe(undefeated, names)} never lost and {_describe(winless, names)} never won "
        "(or wins flow only one way between some subsets); fitting each of the "
        f"{strong.max() + 1} strongly connected components separately, centred within each "
        "(see `component`). Pass prior > 0 (e.g. 0.1) for finite joint estimates.",
        AggregationWarning, stacklevel=4)
    return strong


def _center(theta: np.ndarray, comp: np.ndarray, counts: np.ndarray) -> np.ndarray:
    if len(counts) == 1:
        return theta - theta.mean()
    return theta - (np.bincount(comp, theta, len(counts)) / counts)[comp]


def _rescale(theta: np.ndarray, comp: np.ndarray, counts: np.ndarray, prior: float) -> np.ndarray:
    """Fix each component's free scale: mean log-strength 0 (MLE) or mean strength 1 (MAP).

    With prior > 0 the MAP satisfies mean_c(w) = 1 in each component (the gradients of the
    likelihood sum to zero there), so projecting onto it keeps the fixed point and speeds up
    convergence of the otherwise slow scale mode.
    """
    if prior == 0:
        return _center(theta, comp, counts)
    if len(counts) == 1:
        return theta - np.log(np.exp(theta).mean())
    return theta - np.log(np.bincount(comp, np.exp(theta), len(counts)) / counts)[comp]


def _newman(graph: _Graph, a: np.ndarray, b: np.ndarray | None, comp: np.ndarray, prior: float,
            tol: float, max_iter: int, theta0: np.ndarray | None = None,
            warn: bool = True) -> np.ndarray:
    """Newman's iteration on the edges within components; returns log-strengths at MAP scale."""
    n, counts = graph.n, np.bincount(comp)
    ei, ej = graph.ei, graph.ej
    inside = comp[ei] == comp[ej]
    if not inside.all():  # edges between strongly connected components carry no information
        ei, ej, a = ei[inside], ej[inside], a[inside]
        b = None if b is None else b[inside]
    theta = np.zeros(n) if theta0 is None else theta0.copy()
    delta = np.inf
    for _ in range(max_iter):
        p = np.exp(theta)
        pi, pj = p[ei], p[ej]
        r = 1.0 / (pi + pj)
        ar = a * r
        num = np.bincount(ei, ar * pj, n)
        den = np.bincount(ej, ar, n)
        if b is not None:
            br = b * r
            num += np.bincount(ej, br * pi, n)
            den += np.bincount(ei, br, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.log(num + prior) - np.log(den + prior)
        new = _rescale(np.where(np.isfinite(new), new, 0.0), comp, counts, prior)
        delta = np.abs(new - theta).max(initial=0.0)
        theta = new
        if delta < tol:
            return theta
    if warn:
        warnings.warn(f"Bradley-Terry iteration stopped at max_iter={max_iter} with step "
                      f"{delta:.3g} > tol={tol:g}; estimates may be inaccurate",
                      AggregationWarning, stacklevel=3)
    return theta


def _covariance(offset: np.ndarray, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray,
                theta: np.ndarray, comp: np.ndarray, prior: float
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Standard errors of centred log-strengths from the observed information H.

    H = sum of likelihood curvature entries (rows, cols, vals) + diag(prior * w) (the Gamma
    prior's curvature, w at MAP scale). Within a component the centred estimate is C theta with
    C = I - M, M the averaging projector, so cov = C H^+ C; we use C (H + M)^{-1} C, equal to it
    because M spans H's null space when prior = 0 and is annihilated by C. Blocks are per group
    (K x K, inverted batch-wise). Singleton components get se = nan.
    """
    n_groups, n = len(offset) - 1, int(offset[-1])
    sizes = np.diff(offset)
    k = int(sizes.max(initial=1))
    counts = np.bincount(comp)
    if n_groups * k * k > MAX_COV_ENTRIES:
        warnings.warn(f"{k} items in one graph: too many for a dense covariance; standard "
                      "errors use the diagonal approximation 1/H_ii", AggregationWarning,
                      stacklevel=3)
        diag = np.bincount(rows[rows == cols], vals[rows == cols], n) + prior * np.exp(theta)
        with np.errstate(divide="ignore"):
            se = np.sqrt(1.0 / diag * (1 - 1 / counts[comp]))
        return np.where(counts[comp] > 1, se, np.nan), None
    group_of = np.repeat(np.arange(n_groups), sizes)
    local = np.arange(n) - offset[group_of]
    g = group_of[rows]
    hess = np.bincount((g * k + local[rows]) * k + local[cols], vals,
                       n_groups * k * k).reshape(n_groups, k, k)
    pad_comp = np.full((n_groups, k), -1, dtype=np.int64)
    pad_comp[group_of, local] = comp
    pad_comp = np.where(pad_comp < 0, -1 - np.arange(k)[None, :], pad_comp)  # unique per slot
    same = pad_comp[:, :, None] == pad_comp[:, None, :]
    proj = same / same.sum(axis=2, keepdims=True)
    diag = np.ones((n_groups, k))
    diag[group_of, local] = prior * np.exp(theta)
    hess[:, np.arange(k), np.arange(k)] += diag
    if prior == 0:
        hess += proj
    center = np.eye(k)[None] - proj
    cov = center @ np.linalg.inv(hess) @ center
    var = cov[group_of, local, local]
    se = np.sqrt(np.clip(var, 0.0, None))
    return np.where(counts[comp] > 1, se, np.nan), cov


def _bt_hessian(graph: _Graph, a: np.ndarray, b: np.ndarray | None, theta: np.ndarray,
                comp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curvature entries of the BT log-likelihood: (a+b) p_ij (1-p_ij) on each edge."""
    inside = comp[graph.ei] == comp[graph.ej]
    ei, ej = graph.ei[inside], graph.ej[inside]
    t = a[inside] + (0.0 if b is None else b[inside])
    d = theta[ei] - theta[ej]
    c = t * np.exp(-np.abs(d)) / (1.0 + np.exp(-np.abs(d))) ** 2
    return (np.concatenate([ei, ej, ei, ej]), np.concatenate([ei, ej, ej, ei]),
            np.concatenate([c, c, -c, -c]))


def _check_options(prior: float, ci: str | None, level: float) -> None:
    if not (np.isfinite(prior) and prior >= 0):
        raise ValueError(f"'prior' must be a finite number >= 0, got {prior!r}")
    if ci not in ("hessian", "bootstrap", None):
        raise ValueError(f"'ci' must be one of 'hessian', 'bootstrap' or None, got {ci!r}")
    if not 0 < level < 1:
        raise ValueError(f"'level' must be in (0, 1), got {level!r}")


def bt_fit(n_items: int | Sequence[int] | np.ndarray, winners: Any, losers: Any,
           weights: Any = None, *, group: Any = None, prior: float = 0.0,
           ci: str | None = "hessian", level: float = 0.95, n_boot: int = 200, seed: int = 0,
           units: Any = None, names: Sequence[Any] | None = None,
           group_names: Sequence[Any] | None = None, tol: float = 1e-10,
           max_iter: int = 10_000) -> StrengthFit:
    """Bradley-Terry log-strengths with standard errors and confidence intervals.

    Row k says `winners[k]` beat `losers[k]` with weight `weights[k]` (default 1); a soft
    judgment is two rows. With `group`, many independent graphs are fitted at once: `n_items`
    is then the number of items per group (int or one per group), winners/losers are local
    indices, and results are flat (group g's items at offset[g] + local).
    ci: "hessian" (observed information, see `_covariance`), "bootstrap" (Poisson bootstrap
    over `units`, default each row; percentile intervals, `n_boot` replicates) or None.
    """
    _check_options(prior, ci, level)
    w_arr = np.asarray(winners)
    m = len(w_arr)
    if group is None:
        sizes = np.array([int(np.asarray(n_items))], dtype=np.int64)
        grp = np.zeros(m, dtype=np.int64)
    else:
        n_groups = int(np.max(group, initial=-1)) + 1
        sizes = np.broadcast_to(np.asarray(n_items, dtype=np.int64), (n_groups,)).copy() \
            if np.ndim(n_items) == 0 else np.asarray(n_items, dtype=np.int64)
        grp = _as_index(group, "group", len(sizes))
    bound = sizes[grp]
    win, lose = _as_index(w_arr, "winners", bound), _as_index(losers, "losers", bound)
    if len(lose) != m or len(grp) != m:
        raise ValueError("'winners', 'losers' and 'group' must have the same length")
    if np.any(win == lose):
        raise ValueError(f"'winners' and 'losers' coincide in row {int(np.argmax(win == lose))}")
    wts = np.ones(m) if weights is None else np.asarray(weights, dtype=float)
    if wts.shape != (m,) or not np.all(np.isfinite(wts)) or np.any(wts < 0):
        raise ValueError("'weights' must be finite, >= 0 and one per comparison")
    graph = _build_graph(sizes, grp, win, lose, wts)
    a, b = graph.weights(wts)
    comp = _components(graph, a, b, prior, names, group_names)
    counts = np.bincount(comp)
    theta = _newman(graph, a, b, comp, prior, tol, max_iter)
    est = _center(theta, comp, counts)
    nan = np.full(graph.n, np.nan)
    if ci is None:
        return StrengthFit(est, nan, nan, nan, comp, None)
    if ci == "hessian":
        se, cov = _covariance(graph.offset, *_bt_hessian(graph, a, b, theta, comp), theta, comp,
                              prior)
        z = norm.ppf(0.5 + level / 2)
        return StrengthFit(est, se, est - z * se, est + z * se, comp, cov)
    unit = np.arange(m) if units is None else np.unique(np.asarray(units), return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    reps = np.empty((n_boot, graph.n))
    for r in range(n_boot):
        ab, bb = graph.weights(wts * rng.poisson(1.0, unit.max(initial=-1) + 1)[unit])
        reps[r] = _center(_newman(graph, ab, bb, comp, prior, max(tol, 1e-9),
                                  min(max_iter, 2000), theta, warn=False), comp, counts)
    alpha = (1 - level) / 2
    low, high = np.quantile(reps, [alpha, 1 - alpha], axis=0)
    single = counts[comp] == 1
    se = np.where(single, np.nan, reps.std(axis=0, ddof=1))
    k = int(np.diff(graph.offset).max(initial=1))
    cov = None
    if len(graph.offset) - 1 > 1 or k * k <= MAX_COV_ENTRIES:
        g_of = np.repeat(np.arange(len(graph.offset) - 1), np.diff(graph.offset))
        pad = np.zeros((n_boot, len(graph.offset) - 1, k))
        pad[:, g_of, np.arange(graph.n) - graph.offset[g_of]] = reps - reps.mean(axis=0)
        cov = np.einsum("rgi,rgj->gij", pad, pad) / max(n_boot - 1, 1)
    return StrengthFit(est, se, np.where(single, np.nan, low), np.where(single, np.nan, high),
                       comp, cov)


def bt_mm(n_items: int, winners: Any, losers: Any, weights: Any = None, *, prior: float = 0.0,
          tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Centred BT log-strengths of one comparison graph (MAP under the Gamma prior; module doc).

    Row k: `winners[k]` beat `losers[k]` with weight `weights[k]` (soft weights allowed).
    Converged when no log-strength moves by more than `tol` in a sweep.
    """
    return bt_fit(n_items, winners, losers, weights, prior=prior, ci=None, tol=tol,
                  max_iter=max_iter).log_strength


def bt_batched(group: Any, n_per_group: int | Sequence[int] | np.ndarray, winners: Any,
               losers: Any, weights: Any = None, *, prior: float = 0.0, tol: float = 1e-10,
               max_iter: int = 10_000) -> np.ndarray:
    """Fit many independent small graphs in one vectorised pass (e.g. one per prompt).

    `winners`/`losers` are local indices within their row's `group`; group g has
    `n_per_group[g]` items. Returns flat log-strengths, group g's items at offset[g] + local,
    centred per group (per component); for constant K use ``.reshape(-1, K)``.
    Equal to running `bt_mm` on each group, with one global convergence test.
    """
    return bt_fit(n_per_group, winners, losers, weights, group=group, prior=prior, ci=None,
                  tol=tol, max_iter=max_iter).log_strength
