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

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from oversight._deprecated import moved
from oversight.aggregate._ballots import PAIRWISE_FIELDS, _check_columns, sorted_codes
from oversight.aggregate._strength_solver import (
    StrengthFit,
    _as_index,
    _build_graph,
    _check_options,
    _components,
    _finish,
    _Graph,
    _Layout,
    _layout,
    _maximise,
)
from oversight.errors import AggregationWarning  # noqa: F401 (re-exported)


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




def bt_strengths(n_items: int, winners: Any, losers: Any, weights: Any = None, *,
                 prior: float = 0.0, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Centred BT log-strengths of one comparison graph (MAP under the Gamma prior; module doc).

    Row k: `winners[k]` beat `losers[k]` with weight `weights[k]` (soft weights allowed).
    Converged when no log-strength moves by more than `tol` in a sweep.
    """
    return bt_fit(n_items, winners, losers, weights, prior=prior, ci=None, tol=tol,
                  max_iter=max_iter).log_strength


def bt_strengths_batched(group: Any, n_per_group: int | Sequence[int] | np.ndarray,
                         winners: Any, losers: Any, weights: Any = None, *, prior: float = 0.0,
                         tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Fit many independent small graphs in one vectorised pass (e.g. one per prompt).

    `winners`/`losers` are local indices within their row's `group`; group g has
    `n_per_group[g]` items. Returns flat log-strengths, group g's items at offset[g] + local,
    centred per group (per component); for constant K use ``.reshape(-1, K)``.
    Equal to running `bt_strengths` on each group, with one global convergence test.
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
    codes, orders = pd.factorize(ok["order"])  # parse each distinct order once
    try:
        shown = np.array([[int(x) for x in str(o).split(",")] for o in orders],
                         dtype=np.int64)
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
    item = ok["item_id"]  # a categorical stays one (its codes group the items for free)
    return pd.DataFrame({"item_id": item.array if isinstance(item.dtype, pd.CategoricalDtype)
                         else item.to_numpy(), "a": a, "b": b, "p": p, "weight": weight})


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
        codes, distinct = sorted_codes(rows["item_id"])
        items = np.asarray(distinct, dtype=object)
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


# Old names, kept for one release (bt_strengths / pl_strengths is the one naming scheme).
__getattr__ = moved("oversight.aggregate._bradley_terry",
                    {"bt_mm": "oversight.aggregate._bradley_terry.bt_strengths",
                     "bt_batched": "oversight.aggregate._bradley_terry.bt_strengths_batched"})
