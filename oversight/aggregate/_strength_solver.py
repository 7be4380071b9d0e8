"""The strength solver Bradley-Terry and Plackett-Luce share: comparison graphs, connected
components, the per-group layout, the MAP maximiser (Newman's fixed point, then damped Newton
with a per-group line search and a scale-aware stop), covariances and bootstrap intervals.

A "problem" (`_PairProblem` in `_bradley_terry.py`, `_RankProblem` in `_plackett_luce.py`)
supplies `loglik`, `gradient` and `sweep`; everything here is model-agnostic. See
`_bradley_terry.py` for the maths and the references.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse import linalg as splinalg
from scipy.stats import norm

from oversight.errors import AggregationWarning

MAX_DENSE = 1 << 22  # stacked K x K blocks up to this many entries; beyond: CG and 1/H_ii


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


def _nx_components(n: int, src: np.ndarray, dst: np.ndarray, *, directed: bool) -> np.ndarray:
    """Connected (or strongly connected) component label per node, via networkx."""
    edges = np.unique(np.stack([src, dst], axis=1), axis=0) if len(src) else np.zeros((0, 2))
    g: nx.Graph = nx.DiGraph() if directed else nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges.tolist())
    parts = nx.strongly_connected_components(g) if directed else nx.connected_components(g)
    labels = np.empty(n, dtype=np.int64)
    for c, nodes in enumerate(parts):
        labels[np.fromiter(nodes, dtype=np.int64)] = c
    return _canonical(labels)


def _components(graph: _Graph, a: np.ndarray, b: np.ndarray | None, prior: float,
                names: Sequence[Any] | None, group_names: Sequence[Any] | None) -> np.ndarray:
    """Component per item (canonical labels); warns on disconnection and divergent items.

    With prior > 0 components are the connected components. With prior == 0 they are the
    strongly connected components of the "beats" digraph, where the MLE is finite.
    """
    n, n_groups = graph.n, len(graph.offset) - 1
    b = np.zeros_like(a) if b is None else b
    if n_groups == 1:
        # One graph (global or single item): networkx on the distinct edges, which also
        # names the components in the warning below.
        comp = _nx_components(n, graph.ei, graph.ej, directed=False)
    else:
        # Many small graphs: one vectorised pass; a networkx loop over 10^5 prompts is not.
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
    if n_groups == 1:
        strong = _nx_components(n, beats.row, beats.col, directed=True)
    else:
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
    """Fix each component's free shift: mean log-strength 0 (MLE) or mean strength 1 (MAP).

    With prior > 0, shifting a component by c changes only the prior term, which is maximised
    at mean_c(w) = 1; so this projection is an exact ascent step and keeps the fixed point.
    """
    if prior == 0:
        return _center(theta, comp, counts)
    if len(counts) == 1:
        return theta - np.log(np.exp(theta).mean())
    return theta - np.log(np.bincount(comp, np.exp(theta), len(counts)) / counts)[comp]


class _Layout(NamedTuple):
    """Items in groups of at most k, padded into (n_groups, k) blocks; comp = components."""

    group_of: np.ndarray
    local: np.ndarray
    n_groups: int
    k: int
    comp: np.ndarray
    counts: np.ndarray
    proj: np.ndarray | None  # (n_groups, k, k) averaging projector per component, if dense

    @property
    def dense(self) -> bool:
        return self.proj is not None

    def blocks(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, diag: np.ndarray,
               prior: float) -> np.ndarray:
        """Stacked K x K blocks of H + diag (+ M when prior = 0); padding slots get 1."""
        g, k, loc = self.group_of, self.k, self.local
        assert self.proj is not None, "blocks need a dense layout"
        hess: np.ndarray = np.bincount((g[rows] * k + loc[rows]) * k + loc[cols], vals,
                                       self.n_groups * k * k).astype(float)
        hess = hess.reshape(self.n_groups, k, k)
        full = np.ones((self.n_groups, k))
        full[g, loc] = diag
        hess[:, np.arange(k), np.arange(k)] += full
        return hess + self.proj if prior == 0 else hess


def _layout(offset: np.ndarray, comp: np.ndarray) -> _Layout:
    sizes = np.diff(offset)
    n_groups, k = len(sizes), int(sizes.max(initial=1))
    group_of = np.repeat(np.arange(n_groups), sizes)
    local = np.arange(int(offset[-1])) - offset[group_of]
    proj = None
    if n_groups * k * k <= MAX_DENSE:
        pad = np.full((n_groups, k), -1, dtype=np.int64)
        pad[group_of, local] = comp
        pad = np.where(pad < 0, -1 - np.arange(k)[None, :], pad)  # padding: own component
        same = pad[:, :, None] == pad[:, None, :]
        proj = same / same.sum(axis=2, keepdims=True)
    return _Layout(group_of, local, n_groups, k, comp, np.bincount(comp), proj)


def _newton_direction(lay: _Layout, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray,
                      diag: np.ndarray, grad: np.ndarray, prior: float) -> np.ndarray:
    """Solve (H + M) delta = grad: batched dense K x K solves, or CG on one big sparse graph."""
    if lay.dense:
        hess = lay.blocks(rows, cols, vals, diag, prior)
        rhs = np.zeros((lay.n_groups, lay.k))
        rhs[lay.group_of, lay.local] = grad
        return np.linalg.solve(hess, rhs[..., None])[..., 0][lay.group_of, lay.local]
    n = len(grad)
    hess = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n)) + sparse.diags(diag)
    comp, counts = lay.comp, lay.counts

    def matvec(v: np.ndarray) -> np.ndarray:
        out = hess @ v
        return out + (np.bincount(comp, v, len(counts)) / counts)[comp] if prior == 0 else out

    jacobi = 1.0 / (hess.diagonal() + (1.0 / counts[comp] if prior == 0 else 0.0))
    op = splinalg.LinearOperator((n, n), matvec=matvec, dtype=float)
    pre = splinalg.LinearOperator((n, n), matvec=lambda v: jacobi * v, dtype=float)
    return splinalg.cg(op, grad, rtol=1e-12, atol=0.0, maxiter=10 * n, M=pre)[0]


def _maximise(problem: Any, lay: _Layout, prior: float, tol: float, max_iter: int,
              theta0: np.ndarray | None = None, warn: bool = True) -> np.ndarray:
    """MAP log-strengths (at MAP scale) of a concave problem with a per-group line search.

    One graph: the problem's fixed-point sweep (Newman 2023) while it contracts, then Newton.
    Many groups: damped Newton with stacked K x K blocks; each group backtracks on its own
    log-posterior (Armijo), so near-separable groups cannot stall or oscillate.
    """
    comp, counts, gof = lay.comp, lay.counts, lay.group_of
    theta = _rescale(np.zeros(len(comp)) if theta0 is None else theta0, comp, counts, prior)
    if lay.n_groups == 1:
        steps: list[float] = []
        for _ in range(max_iter):
            new = _rescale(problem.sweep(theta, prior), comp, counts, prior)
            steps.append(float(np.abs(new - theta).max(initial=0.0)))
            theta = new
            if steps[-1] < tol:
                return theta
            if len(steps) > 10 and steps[-1] >= 0.95 * steps[-3]:
                break  # not contracting (oscillation or stalling): hand over to Newton
        theta = _rescale(np.zeros(len(comp)), comp, counts, prior)

    def posterior(t: np.ndarray) -> np.ndarray:
        return problem.loglik(t) + prior * np.bincount(gof, t - np.exp(t), lay.n_groups)

    f = posterior(theta)
    move = np.inf
    stalled = 0
    for _ in range(max_iter):
        grad, rows, cols, vals = problem.gradient(theta)
        w = np.exp(theta)
        grad = grad + prior * (1.0 - w)
        delta = _newton_direction(lay, rows, cols, vals, prior * w, grad, prior)
        slope = np.bincount(gof, grad * delta, lay.n_groups)
        scale = np.ones(lay.n_groups)
        for _ in range(60):
            with np.errstate(over="ignore", invalid="ignore"):  # overshooting steps are rejected
                cand = _rescale(theta + scale[gof] * delta, comp, counts, prior)
                fc = posterior(cand)
                ok = fc >= f + 1e-4 * scale * slope - 1e-12 * (1.0 + np.abs(f))
            if ok.all():
                break
            scale = np.where(ok, scale, 0.5 * scale)
        cand = np.where(ok[gof], cand, theta)
        last = move
        move = float(np.abs(cand - theta).max(initial=0.0))
        new_f = np.where(ok, fc, f)
        gain = float(np.max(new_f - f, initial=0.0))
        theta, f = cand, new_f
        if move < tol:
            return theta
        # Scale-aware stop: with extreme counts (1e9 wins to 1) the gradient's rounding error
        # (about eps times the weight an item carries) sets a floor on the step that no `tol`
        # can beat. Newton converges quadratically, so a step that stops shrinking while the
        # log-posterior no longer rises beyond rounding is that floor: the fit has converged.
        floor = 1e-12 * (1.0 + float(np.max(np.abs(f), initial=0.0)))
        stalled = stalled + 1 if (move > 0.5 * last and gain <= floor) else 0
        if stalled >= 3:
            return theta
    if warn:
        warnings.warn(f"strength fit stopped at max_iter={max_iter} with step {move:.3g} > "
                      f"tol={tol:g}; estimates may be inaccurate", AggregationWarning,
                      stacklevel=3)
    return theta


def _covariance(lay: _Layout, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray,
                theta: np.ndarray, prior: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Standard errors of centred log-strengths from the observed information.

    H = -(Hessian of the log-posterior) = likelihood curvature entries + diag(prior * w), w at
    MAP scale (the Gamma prior's curvature). The reported estimate is C theta, C = I - M with M
    averaging within components, so cov = C H^+ C, computed as C (H + M)^{-1} C (equal, as M
    spans H's null space when prior = 0 and C M = 0). Blocks are per group, inverted batch-wise.
    Singleton components get se = nan: their centred value 0 carries no information.
    """
    counts, comp = lay.counts, lay.comp
    if not lay.dense:
        warnings.warn(f"{lay.k} items in one graph are too many for a dense covariance; standard "
                      "errors use the approximation var_i = (1 - 1/n_c) / H_ii",
                      AggregationWarning, stacklevel=3)
        diag = np.bincount(rows[rows == cols], vals[rows == cols], len(theta))
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt((1 - 1 / counts[comp]) / (diag + prior * np.exp(theta)))
        return np.where(counts[comp] > 1, se, np.nan), None
    hess = lay.blocks(rows, cols, vals, prior * np.exp(theta), prior)
    assert lay.proj is not None
    center = np.eye(lay.k)[None] - lay.proj
    cov = center @ np.linalg.inv(hess) @ center
    se = np.sqrt(np.clip(cov[lay.group_of, lay.local, lay.local], 0.0, None))
    return np.where(counts[comp] > 1, se, np.nan), cov


def _check_options(prior: float, ci: str | None, level: float) -> None:
    if not (np.isfinite(prior) and prior >= 0):
        raise ValueError(f"'prior' must be a finite number >= 0, got {prior!r}")
    if ci not in ("hessian", "bootstrap", None):
        raise ValueError(f"'ci' must be one of 'hessian', 'bootstrap' or None, got {ci!r}")
    if not 0 < level < 1:
        raise ValueError(f"'level' must be in (0, 1), got {level!r}")


def _finish(lay: _Layout, theta: np.ndarray, problem: Any, prior: float, ci: str | None,
            level: float, n_boot: int, seed: int, units: Any, m: int, tol: float,
            max_iter: int, reweigh: Callable[[np.ndarray], Any]) -> StrengthFit:
    """Centre per component and attach Hessian or Poisson-bootstrap uncertainty."""
    comp, counts = lay.comp, lay.counts
    est = _center(theta, comp, counts)
    nan = np.full(len(est), np.nan)
    if ci is None:
        return StrengthFit(est, nan, nan, nan, comp, None)
    single = counts[comp] == 1
    if ci == "hessian":
        _, rows, cols, vals = problem.gradient(theta)
        se, cov = _covariance(lay, rows, cols, vals, theta, prior)
        z = norm.ppf(0.5 + level / 2)
        return StrengthFit(est, se, est - z * se, est + z * se, comp, cov)
    # Poisson bootstrap (each unit's weight ~ Poisson(1)): vectorises across groups and is
    # equivalent to resampling within every group at once. Warm-started from the estimate.
    unit = np.arange(m) if units is None else np.unique(np.asarray(units), return_inverse=True)[1]
    n_units = int(unit.max(initial=-1)) + 1
    rng = np.random.default_rng(seed)
    reps = np.empty((n_boot, len(est)))
    for r in range(n_boot):
        boot = reweigh(rng.poisson(1.0, n_units)[unit].astype(float))
        reps[r] = _center(_maximise(boot, lay, prior, max(tol, 1e-9), min(max_iter, 500), theta,
                                    warn=False), comp, counts)
    low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=0)
    se = np.where(single, np.nan, reps.std(axis=0, ddof=1))
    cov = None
    if lay.dense:
        pad = np.zeros((n_boot, lay.n_groups, lay.k))
        pad[:, lay.group_of, lay.local] = reps - reps.mean(axis=0)
        cov = np.einsum("rgi,rgj->gij", pad, pad) / max(n_boot - 1, 1)
    return StrengthFit(est, se, np.where(single, np.nan, low), np.where(single, np.nan, high),
                       comp, cov)
