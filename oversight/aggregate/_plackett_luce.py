"""Plackett-Luce strengths from K-way rankings, one graph or many small ones at once.

Model (Luce 1959, Plackett 1975): a ranking (i_1, ..., i_L), best first, has probability
prod_t w_{i_t} / sum_{s >= t} w_{i_s}: the best is chosen from all, the next from the rest...
With L = 2 it is Bradley-Terry. Same Gamma(prior + 1, prior) prior on w = exp(theta) as
`bt_fit`, so ``choix.mm_rankings(alpha=a)`` and ``choix.ilsr_rankings(alpha=a / n_items)``
have the same maximiser; same per-component centring, warnings and standard errors.

Solver: one graph uses the fixed point of the I-LSR balance equations (Maystre & Grossglauser
2015), evaluated in place in the manner of Newman (2023):
    w_i <- (sum_{stages t won by i} (S_t - w_i) / S_t + alpha)
           / (sum_{stages t that i lost} 1 / S_t + alpha),   S_t = sum of w left at stage t,
and falls back to damped Newton if that stops contracting; many groups use batched Newton.
Curvature of one stage with choice set R: diag(q) - q q^T with q = w_R / S (softmax).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from oversight._deprecated import moved
from oversight.aggregate._bradley_terry import StrengthModel, entity_strengths
from oversight.aggregate._strength_solver import (
    StrengthFit,
    _check_options,
    _components,
    _finish,
    _Graph,
    _Layout,
    _layout,
    _maximise,
)
from oversight.errors import AggregationWarning

Block = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # items (R, L), weight, group, id


def _blocks(items: np.ndarray, seg: np.ndarray, weight: np.ndarray, seg_group: np.ndarray
            ) -> list[Block]:
    """Rankings of equal length stacked as (R, L) arrays; `items` is sorted by segment."""
    lengths = np.bincount(seg, minlength=len(weight))
    start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = []
    for length in np.unique(lengths[lengths >= 2]):
        ids = np.flatnonzero(lengths == length)
        out.append((items[start[ids][:, None] + np.arange(length)], weight[ids],
                    seg_group[ids], ids))
    return out


class _RankProblem:
    """PL log-likelihood, gradient, curvature entries and fixed-point sweep over blocks."""

    def __init__(self, blocks: list[Block], lay: _Layout) -> None:
        self.blocks, self.n, self.n_groups = blocks, len(lay.comp), lay.n_groups

    def reweigh(self, counts: np.ndarray) -> _RankProblem:
        new = object.__new__(_RankProblem)
        new.n, new.n_groups = self.n, self.n_groups
        new.blocks = [(x, v * counts[ids], g, ids) for x, v, g, ids in self.blocks]
        return new

    def loglik(self, theta: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_groups)
        for x, v, g, _ in self.blocks:
            t = theta[x]
            log_s = np.logaddexp.accumulate(t[:, ::-1], axis=1)[:, ::-1]
            out += np.bincount(g, v * (t[:, :-1] - log_s[:, :-1]).sum(axis=1), self.n_groups)
        return out

    def gradient(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """Gradient of the log-likelihood and the curvature entries of -loglik."""
        grad = np.zeros(self.n)
        rows, cols, vals = [], [], []
        for x, v, _, _ in self.blocks:
            length = x.shape[1]
            t = theta[x]
            w = np.exp(t - t.max(axis=1, keepdims=True))  # row shift: only ratios matter
            s = np.cumsum(w[:, ::-1], axis=1)[:, ::-1][:, :-1]
            a = np.cumsum(v[:, None] / s, axis=1)
            b = np.cumsum(v[:, None] / s**2, axis=1)
            a, b = np.concatenate([a, a[:, -1:]], 1), np.concatenate([b, b[:, -1:]], 1)
            grad += np.bincount(x[:, :-1].ravel(), np.repeat(v, length - 1), self.n)
            grad -= np.bincount(x.ravel(), (w * a).ravel(), self.n)
            p, q = np.triu_indices(length, 1)
            off = -(w[:, p] * w[:, q] * b[:, p])
            rows += [x.ravel(), x[:, p].ravel(), x[:, q].ravel()]
            cols += [x.ravel(), x[:, q].ravel(), x[:, p].ravel()]
            vals += [(w * a - w**2 * b).ravel(), off.ravel(), off.ravel()]
        cat = (np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))
        return (grad, *cat) if rows else (grad, *(np.zeros(0, int),) * 2, np.zeros(0))

    def sweep(self, theta: np.ndarray, prior: float) -> np.ndarray:
        num, den = np.zeros(self.n), np.zeros(self.n)
        p = np.exp(theta)
        for x, v, _, _ in self.blocks:
            w = p[x]
            s = np.cumsum(w[:, ::-1], axis=1)[:, ::-1][:, :-1]
            num += np.bincount(x[:, :-1].ravel(), (v[:, None] * (s - w[:, :-1]) / s).ravel(),
                               self.n)
            den += np.bincount(x[:, 1:].ravel(), np.cumsum(v[:, None] / s, axis=1).ravel(),
                               self.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.log(num + prior) - np.log(den + prior)
        return np.where(np.isfinite(new), new, 0.0)


def _flatten(rankings: Any, sizes: np.ndarray, group: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Flat global item ids and ranking ids; checks ranges and repeated items."""
    arr = [np.asarray(r) for r in rankings] if not isinstance(rankings, np.ndarray) \
        else list(rankings)
    lengths = np.array([len(r) for r in arr], dtype=np.int64)
    local = np.concatenate(arr).astype(np.int64) if arr else np.zeros(0, np.int64)
    seg = np.repeat(np.arange(len(arr)), lengths)
    if local.size and not np.issubdtype(np.concatenate(arr).dtype, np.integer):
        raise ValueError("'rankings' must hold integer item indices")
    if local.size and (local.min() < 0 or np.any(local >= sizes[group[seg]])):
        raise ValueError("'rankings' has item indices outside [0, n_items)")
    offset = np.concatenate([[0], np.cumsum(sizes)])
    flat = offset[group[seg]] + local
    key = seg * int(offset[-1] + 1) + flat
    if len(np.unique(key)) != len(key):
        raise ValueError("a ranking lists the same item twice; rankings must be strict")
    return flat, seg


def pl_fit(n_items: int | Sequence[int] | np.ndarray, rankings: Any, weights: Any = None, *,
           group: Any = None, prior: float = 0.0, ci: str | None = "hessian",
           level: float = 0.95, n_boot: int = 200, seed: int = 0,
           names: Sequence[Any] | None = None, group_names: Sequence[Any] | None = None,
           tol: float = 1e-10, max_iter: int = 10_000) -> StrengthFit:
    """Plackett-Luce log-strengths with uncertainty; the counterpart of `bt_fit`.

    `rankings`: sequence of rankings (item indices, best first; lengths may vary) or an
    (R, L) integer array; `weights` one per ranking. With `group` (one per ranking), `n_items`
    is the number of items per group and indices are local. ci: "hessian", "bootstrap"
    (Poisson over rankings) or None.
    """
    _check_options(prior, ci, level)
    m = len(rankings)
    if group is None:
        sizes, grp = np.array([np.asarray(n_items).item()]), np.zeros(m, dtype=np.int64)
    else:
        grp = np.asarray(group, dtype=np.int64)
        n_groups = int(grp.max(initial=-1)) + 1
        sizes = np.full(n_groups, np.asarray(n_items).item()) if np.ndim(n_items) == 0 \
            else np.asarray(n_items, dtype=np.int64)
        if len(grp) != m or (m and (grp.min() < 0 or grp.max() >= len(sizes))):
            raise ValueError("'group' needs one index in [0, n_groups) per ranking")
    wts = np.ones(m) if weights is None else np.asarray(weights, dtype=float)
    if wts.shape != (m,) or not np.all(np.isfinite(wts)) or np.any(wts < 0):
        raise ValueError("'weights' must be finite, >= 0 and one per ranking")
    flat, seg = _flatten(rankings, sizes, grp)
    offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    # a ranking says each item beat the next one: a chain of edges carries its connectivity
    chain = np.flatnonzero((seg[1:] == seg[:-1]) & (wts[seg[1:]] > 0)) if len(seg) else seg
    graph = _Graph(offset, flat[chain], flat[chain + 1], chain, len(seg), chain, None)
    comp = _components(graph, wts[seg[chain]], None, prior, names, group_names)
    lay = _layout(offset, comp)
    # without a prior, a ranking is split into its sub-rankings within strongly connected
    # components (the limit of the likelihood when components drift infinitely apart)
    sub = np.unique(seg * (int(comp.max(initial=0)) + 1) + comp[flat], return_inverse=True)[1]
    order = np.argsort(sub, kind="stable")
    first = np.unique(sub, return_index=True)[1]
    parent = seg[first]
    blocks = [(x, v, g, parent[ids]) for x, v, g, ids in
              _blocks(flat[order], sub[order], wts[parent], grp[parent])]
    problem = _RankProblem(blocks, lay)
    theta = _maximise(problem, lay, prior, tol, max_iter)
    return _finish(lay, theta, problem, prior, ci, level, n_boot, seed, None, m, tol, max_iter,
                   problem.reweigh)


def pl_strengths(n_items: int, rankings: Any, weights: Any = None, *, prior: float = 0.0,
                 tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Centred PL log-strengths of one set of rankings (best first, lengths may vary)."""
    return pl_fit(n_items, rankings, weights, prior=prior, ci=None, tol=tol,
                  max_iter=max_iter).log_strength


def pl_strengths_batched(group: Any, n_per_group: int | Sequence[int] | np.ndarray,
                         rankings: Any, weights: Any = None, *, prior: float = 0.0,
                         tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Many independent ranking sets at once; local indices, flat output as
    `bt_strengths_batched`."""
    return pl_fit(n_per_group, rankings, weights, group=group, prior=prior, ci=None, tol=tol,
                  max_iter=max_iter).log_strength


def _parse(ranking: Any) -> list[Any]:
    if isinstance(ranking, str):
        return [int(x) for x in ranking.split(",")]
    return list(ranking)


def _score_rankings(judgments: pd.DataFrame, weight_by: str | None) -> pd.DataFrame:
    """One ranking per (item_id, critic, principle) from OK score rows, by descending value."""
    needed = ("item_id", "critic", "principle", "order", "mode", "value", "status")
    missing = [c for c in needed if c not in judgments.columns]
    if missing:
        raise ValueError(f"judgments table lacks column(s) {missing}; PlackettLuce needs a "
                         "rankings table (item_id, ranking[, weight]) or score judgments")
    ok = judgments[(judgments["status"] == "ok") & (judgments["mode"] == "score")
                   & judgments["value"].notna()]
    if ok.empty:
        raise ValueError("no rankings: the table has no 'ranking' column and no OK score rows")
    ok = ok.assign(response=ok["order"].astype(int), value=ok["value"].astype(float),
                   weight=ok[weight_by].astype(float) if weight_by else 1.0)
    keys = ["item_id", "critic", "principle"]
    tied = ok.duplicated([*keys, "value"], keep=False)
    bad = ok.loc[tied, keys].drop_duplicates()
    if len(bad):
        warnings.warn(f"{len(bad)} (item_id, critic, principle) score set(s) have tied scores "
                      f"and were left out (e.g. {tuple(bad.iloc[0])}); Plackett-Luce needs strict "
                      "rankings, BradleyTerry counts ties as half a win", AggregationWarning,
                      stacklevel=3)
        ok = ok.merge(bad.assign(_bad=1), how="left", on=keys)
        ok = ok[ok["_bad"].isna()]
    ok = ok.sort_values([*keys, "value"], ascending=[True, True, True, False], kind="stable")
    grouped = ok.groupby(keys, sort=False)
    return pd.DataFrame({"item_id": grouped["item_id"].first().to_numpy(),
                         "ranking": grouped["response"].agg(list).to_numpy(),
                         "weight": grouped["weight"].first().to_numpy()})


class PlackettLuce(StrengthModel):
    """Plackett-Luce strengths from rankings, with the options and outputs of BradleyTerry.

    `fit(data)` takes either a rankings table — column `ranking` (a sequence, best first, or a
    string "2,0,1"), optional `weight`, and `item_id` for scope="item" (responses are local
    indices) — or the judgments table, where each (item_id, critic, principle) set of OK
    `score` rows becomes one ranking by descending score (sets with tied scores are left out
    with a warning) weighted by `weight_by`. scope="global" ranks entity labels given directly
    in `ranking`; `strengths_` is then indexed by entity.
    """

    def fit(self, data: pd.DataFrame) -> PlackettLuce:
        if "ranking" in data.columns:
            table = data
        elif self.scope == "item":
            table = _score_rankings(data, self.weight_by)
        else:
            raise ValueError("scope='global' needs a rankings table with a 'ranking' column")
        if self.scope == "item" and "item_id" not in table.columns:
            raise ValueError("scope='item' needs an 'item_id' column in the rankings table")
        ranks = [_parse(r) for r in table["ranking"]]
        wts = table["weight"].to_numpy(float) if "weight" in table else np.ones(len(ranks))
        lengths = np.array([len(r) for r in ranks], dtype=np.int64)
        flat = [x for r in ranks for x in r]
        opts: dict[str, Any] = dict(prior=self.prior, ci=self.ci, level=self.level,
                                    n_boot=self.n_boot, seed=self.seed, tol=self.tol,
                                    max_iter=self.max_iter)
        if self.scope == "global":
            codes, entities = pd.factorize(pd.Series(flat, dtype=object), sort=True)
            split = np.split(codes, np.cumsum(lengths)[:-1])
            fit = pl_fit(len(entities), split, wts, names=list(entities), **opts)
            self.strengths_ = entity_strengths(fit, entities, codes, "n_rankings")
        else:
            gcodes, items = pd.factorize(table["item_id"], sort=True)
            local = np.asarray(flat, dtype=np.int64)
            seg_group = np.repeat(gcodes, lengths)
            sizes = np.zeros(len(items), dtype=np.int64)
            np.maximum.at(sizes, seg_group, local + 1)
            split = np.split(local, np.cumsum(lengths)[:-1])
            fit = pl_fit(sizes, split, wts, group=gcodes, group_names=list(items), **opts)
            offset = np.concatenate([[0], np.cumsum(sizes)])
            lay = _layout(offset, fit.component)
            out = pd.DataFrame({
                "item_id": items[lay.group_of], "response": lay.local,
                "log_strength": fit.log_strength, "se": fit.se, "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "component": fit.component - fit.component[offset[lay.group_of]],
                "n_rankings": np.bincount(offset[seg_group] + local, minlength=len(lay.local))})
            out["rank"] = out.groupby("item_id")["log_strength"].rank(
                method="min", ascending=False).astype(int)
            self.strengths_ = out
        self.n_rankings_ = len(ranks)
        return self


# Old names, kept for one release (bt_strengths / pl_strengths is the one naming scheme).
__getattr__ = moved("oversight.aggregate._plackett_luce",
                    {"plackett_luce": "oversight.aggregate._plackett_luce.pl_strengths",
                     "plackett_luce_batched":
                         "oversight.aggregate._plackett_luce.pl_strengths_batched"})
