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

import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse import linalg as splinalg
from scipy.special import expit
from scipy.stats import norm

from oversight.aggregate._ballots import PAIRWISE_FIELDS, _check_columns
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
        move = float(np.abs(cand - theta).max(initial=0.0))
        theta, f = cand, np.where(ok, fc, f)
        if move < tol:
            return theta
    if warn:
        warnings.warn(f"strength fit stopped at max_iter={max_iter} with step {move:.3g} > "
                      f"tol={tol:g}; estimates may be inaccurate", AggregationWarning,
                      stacklevel=3)
    return theta


class _PairProblem:
    """BT log-likelihood over the edges inside components (edges between strongly connected
    components carry no information about within-component differences)."""

    def __init__(self, graph: _Graph, a: np.ndarray, b: np.ndarray | None, lay: _Layout):
        inside = lay.comp[graph.ei] == lay.comp[graph.ej]
        self.ei, self.ej, self.a = graph.ei[inside], graph.ej[inside], a[inside]
        self.b = None if b is None else b[inside]
        self.t = self.a if self.b is None else self.a + self.b
        self.eg, self.n, self.n_groups = lay.group_of[self.ei], len(lay.comp), lay.n_groups

    def loglik(self, theta: np.ndarray) -> np.ndarray:
        d = theta[self.ei] - theta[self.ej]
        ll = self.a * np.logaddexp(0.0, -d)
        if self.b is not None:
            ll += self.b * np.logaddexp(0.0, d)
        return -np.bincount(self.eg, ll, self.n_groups)

    def gradient(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """Gradient of the log-likelihood and curvature entries (a+b) p (1-p) of -loglik."""
        s = expit(theta[self.ei] - theta[self.ej])
        r = self.a - self.t * s
        c = self.t * s * (1.0 - s)
        ei, ej = self.ei, self.ej
        return (np.bincount(ei, r, self.n) - np.bincount(ej, r, self.n),
                np.concatenate([ei, ej, ei, ej]), np.concatenate([ei, ej, ej, ei]),
                np.concatenate([c, c, -c, -c]))

    def sweep(self, theta: np.ndarray, prior: float) -> np.ndarray:
        """w_i <- (sum_j c_ij w_j/(w_i+w_j) + prior) / (sum_j c_ji/(w_i+w_j) + prior)."""
        p, n = np.exp(theta), self.n
        pi, pj = p[self.ei], p[self.ej]
        ar = self.a / (pi + pj)
        num, den = np.bincount(self.ei, ar * pj, n), np.bincount(self.ej, ar, n)
        if self.b is not None:
            br = self.b / (pi + pj)
            num += np.bincount(self.ej, br * pi, n)
            den += np.bincount(self.ei, br, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.log(num + prior) - np.log(den + prior)
        return np.where(np.isfinite(new), new, 0.0)  # items alone in their component


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
    if len(np.asarray(losers)) != m or (group is not None and len(np.asarray(group)) != m):
        raise ValueError("'winners', 'losers' and 'group' must have the same length")
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
    if np.any(win == lose):
        raise ValueError(f"'winners' and 'losers' coincide in row {int(np.argmax(win == lose))}")
    wts = np.ones(m) if weights is None else np.asarray(weights, dtype=float)
    if wts.shape != (m,) or not np.all(np.isfinite(wts)) or np.any(wts < 0):
        raise ValueError("'weights' must be finite, >= 0 and one per comparison")
    graph = _build_graph(sizes, grp, win, lose, wts)
    a, b = graph.weights(wts)
    lay = _layout(graph.offset, _components(graph, a, b, prior, names, group_names))
    problem = _PairProblem(graph, a, b, lay)
    theta = _maximise(problem, lay, prior, tol, max_iter)
    return _finish(lay, theta, problem, prior, ci, level, n_boot, seed, units, m, tol, max_iter,
                   lambda counts: _PairProblem(graph, *graph.weights(wts * counts), lay))


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


def _soft_rows(judgments: pd.DataFrame, weight_by: str | None) -> pd.DataFrame:
    """OK pairwise judgments as (item_id, a, b, p, weight): a was shown first, p = P(a better)."""
    _check_columns(judgments, PAIRWISE_FIELDS)
    if weight_by is not None and weight_by not in judgments.columns:
        raise ValueError(f"weight_by={weight_by!r} is not a column of the judgments table; "
                         f"use None or one of {list(judgments.columns)}")
    ok = judgments[(judgments["status"] == "ok") & (judgments["mode"] == "pairwise")
                   & judgments["value"].notna()]
    if ok.empty:
        raise ValueError("judgments table has no usable pairwise rows (status 'ok', mode "
                         "'pairwise', value not null)")
    codes, orders = pd.factorize(ok["order"].astype(str))  # parse each distinct order once
    try:
        shown = np.array([[int(x) for x in o.split(",")] for o in orders], dtype=np.int64)
    except ValueError:
        shown = np.zeros((0, 0), dtype=np.int64)
    if shown.shape != (len(orders), 2):
        raise ValueError("field 'order' of a pairwise judgment must hold two response indices "
                         "such as '1,0'")
    a, b = shown[codes, 0], shown[codes, 1]
    p = ok["value"].astype(float).to_numpy()
    if np.any((p < 0) | (p > 1)) or np.any(a == b) or np.any(a < 0) or np.any(b < 0):
        raise ValueError("pairwise judgments need 'value' in [0, 1] and two distinct, "
                         "non-negative response indices in 'order'")
    weight = np.ones(len(ok)) if weight_by is None else ok[weight_by].astype(float).to_numpy()
    return pd.DataFrame({"item_id": ok["item_id"].to_numpy(), "a": a, "b": b, "p": p,
                         "weight": weight})


def _entity_table(rows: pd.DataFrame, entity_of: Any) -> pd.DataFrame:
    """(item_id, response) -> entity from a DataFrame, a mapping or a callable."""
    keys = pd.DataFrame({"item_id": np.concatenate([rows["item_id"], rows["item_id"]]),
                         "response": np.concatenate([rows["a"], rows["b"]])}).drop_duplicates()
    if isinstance(entity_of, pd.DataFrame):
        _check_columns(entity_of, ("item_id", "response", "entity"))
        table = keys.merge(entity_of[["item_id", "response", "entity"]], how="left")
    elif isinstance(entity_of, Mapping) or callable(entity_of):
        get = entity_of.get if isinstance(entity_of, Mapping) else entity_of
        pairs = zip(keys["item_id"], keys["response"].tolist())
        table = keys.assign(entity=[get((i, r)) if isinstance(entity_of, Mapping) else get(i, r)
                                    for i, r in pairs])
    else:
        raise ValueError("scope='global' needs entity_of: a DataFrame (item_id, response, "
                         "entity), a mapping {(item_id, response): entity} or a callable "
                         "(item_id, response) -> entity; or pass a comparisons table with "
                         "columns 'left', 'right', 'value'")
    missing = table[table["entity"].isna()]
    if len(missing):
        first = missing.iloc[0]
        raise ValueError(f"entity_of has no entity for {len(missing)} (item_id, response) "
                         f"pair(s), e.g. ({first['item_id']!r}, {first['response']})")
    return table


def entity_strengths(fit: StrengthFit, entities: Any, codes: np.ndarray,
                     count_name: str) -> pd.DataFrame:
    """A global fit as a table indexed by entity, ranked within each component."""
    out = pd.DataFrame({"log_strength": fit.log_strength, "se": fit.se,
                        "ci_low": fit.ci_low, "ci_high": fit.ci_high,
                        "component": fit.component,
                        count_name: np.bincount(codes, minlength=len(entities))},
                       index=pd.Index(entities, name="entity"))
    out["rank"] = out["log_strength"].rank(method="min", ascending=False).astype(int)
    return out.sort_values(["component", "rank"], kind="stable")


class StrengthModel:
    """Options shared by BradleyTerry and PlackettLuce (validated once, here)."""

    def __init__(self, scope: str = "item", prior: float = 0.1, ci: str | None = "hessian",
                 n_boot: int = 200, seed: int = 0, weight_by: str | None = "principle_weight",
                 level: float = 0.95, tol: float = 1e-10, max_iter: int = 10_000) -> None:
        if scope not in ("item", "global"):
            raise ValueError(f"'scope' must be 'item' or 'global', got {scope!r}")
        _check_options(prior, ci, level)
        self.scope, self.prior, self.ci, self.n_boot, self.seed = scope, prior, ci, n_boot, seed
        self.weight_by, self.level, self.tol, self.max_iter = weight_by, level, tol, max_iter


class BradleyTerry(StrengthModel):
    """Bradley-Terry strengths from the long judgments table (module doc for the model).

    scope="item": one small graph per item_id over its responses, all fitted at once;
    `strengths_` (item_id, response, log_strength, se, ci_low, ci_high, component, rank,
    n_comparisons) and `preferences_`, one row per item: best, runner_up, worst, the
    log-strength margin best - runner_up with its standard error, P(best beats runner-up),
    P(best beats worst), `confident` (margin's CI excludes 0) and `connected`.
    scope="global": one graph over entities (e.g. the models behind responses). `fit` takes the
    judgments plus `entity_of` (DataFrame item_id/response/entity, mapping or callable), or a
    comparisons table with columns left, right, value = P(left wins) [, weight].
    `strengths_` is indexed by entity, strongest first. Self-comparisons are dropped.
    Each soft judgment counts as one comparison; `weight_by` scales it (None: weight 1).
    """

    def _fit(self, n_items: Any, a: np.ndarray, b: np.ndarray, p: np.ndarray, w: np.ndarray,
             **kw: Any) -> StrengthFit:
        group = kw.pop("group", None)
        return bt_fit(n_items, np.concatenate([a, b]), np.concatenate([b, a]),
                      np.concatenate([w * p, w * (1 - p)]),
                      group=None if group is None else np.concatenate([group, group]),
                      units=np.tile(np.arange(len(a)), 2), prior=self.prior, ci=self.ci,
                      level=self.level, n_boot=self.n_boot, seed=self.seed, tol=self.tol,
                      max_iter=self.max_iter, **kw)

    def fit(self, judgments: pd.DataFrame, entity_of: Any = None) -> BradleyTerry:
        if self.scope == "global":
            return self._fit_global(judgments, entity_of)
        rows = _soft_rows(judgments, self.weight_by)
        codes, items = pd.factorize(rows["item_id"], sort=True)
        a, b = rows["a"].to_numpy(), rows["b"].to_numpy()
        sizes = np.zeros(len(items), dtype=np.int64)
        np.maximum.at(sizes, codes, np.maximum(a, b) + 1)
        fit = self._fit(sizes, a, b, rows["p"].to_numpy(), rows["weight"].to_numpy(),
                        group=codes, group_names=list(items))
        lay = _layout(np.concatenate([[0], np.cumsum(sizes)]), fit.component)
        offset = np.concatenate([[0], np.cumsum(sizes)])
        touched = np.bincount(np.concatenate([offset[codes] + a, offset[codes] + b]),
                              minlength=len(fit.component))
        out = pd.DataFrame({"item_id": items[lay.group_of], "response": lay.local,
                            "log_strength": fit.log_strength, "se": fit.se,
                            "ci_low": fit.ci_low, "ci_high": fit.ci_high,
                            "component": fit.component - fit.component[offset[lay.group_of]],
                            "n_comparisons": touched})
        out["rank"] = out.groupby("item_id")["log_strength"].rank(method="min",
                                                                  ascending=False).astype(int)
        self.strengths_ = out
        self.preferences_ = self._preferences(fit, lay, items, np.bincount(codes, None,
                                                                           len(items)))
        self.n_comparisons_ = len(rows)
        return self

    def _preferences(self, fit: StrengthFit, lay: _Layout, items: pd.Index,
                     n_rows: np.ndarray) -> pd.DataFrame:
        g = np.arange(lay.n_groups)
        theta = np.full((lay.n_groups, lay.k), -np.inf)
        theta[lay.group_of, lay.local] = fit.log_strength
        comp = np.full((lay.n_groups, lay.k), -1)
        comp[lay.group_of, lay.local] = fit.component
        order = np.argsort(-theta, axis=1, kind="stable")
        best, runner = order[:, 0], order[:, 1]
        worst = np.argmin(np.where(np.isfinite(theta), theta, np.inf), axis=1)
        margin = theta[g, best] - theta[g, runner]
        var = np.full(lay.n_groups, np.nan)
        if fit.cov is not None:
            c = fit.cov
            var = c[g, best, best] + c[g, runner, runner] - 2 * c[g, best, runner]
        se = np.sqrt(np.clip(var, 0, None))
        z = norm.ppf(0.5 + self.level / 2)
        connected = comp.max(axis=1) == comp[:, 0]
        return pd.DataFrame({
            "item_id": items, "best": best, "runner_up": runner, "worst": worst,
            "margin": margin, "margin_se": se,
            "p_best_beats_runner_up": np.where(connected, expit(margin), np.nan),
            "p_best_beats_worst": np.where(connected, expit(theta[g, best] - theta[g, worst]),
                                           np.nan),
            "confident": connected & (margin - z * se > 0),
            "connected": connected, "n_comparisons": n_rows})

    def _fit_global(self, data: pd.DataFrame, entity_of: Any) -> BradleyTerry:
        if entity_of is None and {"left", "right", "value"} <= set(data.columns):
            left, right = data["left"].to_numpy(), data["right"].to_numpy()
            p = data["value"].astype(float).to_numpy()
            w = data["weight"].astype(float).to_numpy() if "weight" in data else np.ones(len(p))
            if np.any(~np.isfinite(p) | (p < 0) | (p > 1)):
                raise ValueError("comparisons table: field 'value' must be P(left wins) in [0, 1]")
        else:
            rows = _soft_rows(data, self.weight_by)
            table = _entity_table(rows, entity_of).set_index(["item_id", "response"])["entity"]
            left = table.reindex(pd.MultiIndex.from_arrays([rows["item_id"], rows["a"]])).to_numpy()
            right = table.reindex(pd.MultiIndex.from_arrays([rows["item_id"], rows["b"]])
                                  ).to_numpy()
            p, w = rows["p"].to_numpy(), rows["weight"].to_numpy()
        keep = left != right
        codes, entities = pd.factorize(np.concatenate([left[keep], right[keep]]), sort=True)
        m = int(keep.sum())
        a, b = codes[:m], codes[m:]
        fit = self._fit(len(entities), a, b, p[keep], w[keep], names=list(entities))
        self.strengths_ = entity_strengths(fit, entities, codes, "n_comparisons")
        self.preferences_ = None
        self.n_comparisons_ = m
        return self

    def p_win(self, left: Hashable, right: Hashable) -> float:
        """P(left beats right) under the fitted global model (same component only)."""
        s = self.strengths_
        if self.scope != "global" or left not in s.index or right not in s.index:
            raise ValueError("p_win needs scope='global' and two fitted entities")
        if s.at[left, "component"] != s.at[right, "component"]:
            raise ValueError(f"{left!r} and {right!r} are in different components: no comparison "
                             "connects them, so their strengths are not comparable")
        return float(expit(s.at[left, "log_strength"] - s.at[right, "log_strength"]))
