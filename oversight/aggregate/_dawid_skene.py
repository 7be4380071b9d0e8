"""Dawid-Skene: latent true labels and per-critic confusion matrices, fitted by EM.

Each critic w has a confusion matrix theta_w[c, k] = P(critic says k | true class is c) and the
classes have priors pi_c (Dawid & Skene, 1979, "Maximum likelihood estimation of observer
error-rates using the EM algorithm", JRSS C 28(1):20-28). Labels are assumed independent
given the true class. EM alternates

    E-step:  log q_t(c) = log pi_c + sum_{w labelled t} log theta_w[c, y_tw]  (then normalise)
    M-step:  theta_w[c, k] ∝ s + sum_{t: y_tw = k} q_t(c),   pi_c ∝ s + sum_t q_t(c)

with a pseudo-count s (`smoothing`, a symmetric Dirichlet(1 + s) prior, so the M-step is a MAP
step). Both steps are two sparse products with the fixed (task x (critic, label)) incidence
matrix, so an iteration costs O(#labels) and has no Python loop over tasks or critics.

The critic-level label of an item is `critic_labels`: the response a critic prefers after
averaging its ok judgments (abstentions, errors and exact ties are missing, never a vote).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from oversight._deprecated import no_other_kwargs, renamed_kwarg
from oversight.aggregate._ballots import PAIRWISE_FIELDS, _check_columns
from oversight.aggregate._vote import TIE, ballots

_FLOOR = 1e-10  # confusion cells and priors are floored here before logs (as crowd-kit does)
LABEL_MODES = ("pairwise", "score", "passfail", "all")
GOLD_STRATEGIES = ("clamp", "gold_only")


# --------------------------------------------------------------------------- labels


def critic_labels(judgments: pd.DataFrame, mode: str = "all") -> pd.DataFrame:
    """Each critic's verdict per item: columns item_id, critic, label, p.

    A critic's support for each response is the (principle-weighted) mean over its ok
    judgments of the chosen `mode` ("all": every critic, whatever its mode), pairwise rows
    taken in canonical orientation (order "a,b" with value v says P(a beats b) = v). `label`
    is the index of the best-supported response;
    `p` is the support of response 0 (for two-response pairwise items: the critic's
    P(response 0 is better)). Exact ties (e.g. p = 0.5) are dropped, like abstentions and
    errors: a tie is missing data for Dawid-Skene and agreement statistics, not a category.
    Rows are sorted by (item_id, critic), so downstream results do not depend on row order.
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"mode={mode!r}: use one of {', '.join(LABEL_MODES)}")
    _check_columns(judgments, PAIRWISE_FIELDS)
    b = ballots(judgments if mode == "all" else judgments[judgments["mode"] == mode],
                unit="critic")
    cols = ["item_id", "critic", "label", "p"]
    if b.empty:
        return pd.DataFrame({"item_id": pd.Series(dtype=object),
                             "critic": pd.Series(dtype=object),
                             "label": pd.Series(dtype=int), "p": pd.Series(dtype=float)})
    b = b[b["vote"] != TIE]
    out = pd.DataFrame({"item_id": b["item_id"].to_numpy(), "critic": b["critic"].to_numpy(),
                        "label": b["vote"].to_numpy(dtype=int),
                        "p": b["p0"].to_numpy(dtype=float)})
    return out[cols]  # ballots come sorted by (item_id, critic)


# --------------------------------------------------------------------------- numeric core


class DawidSkeneResult(NamedTuple):
    """What `dawid_skene_em` returns; unpacks as (posteriors, confusions, priors, ll)."""

    posteriors: np.ndarray  # [n_tasks, n_classes], rows sum to 1
    confusions: np.ndarray  # [n_workers, n_classes (true), n_classes (observed)], rows sum to 1
    priors: np.ndarray  # [n_classes]
    log_likelihood: list[float]  # one per E-step: log P(labels[, gold]) at that step's params


def _known_array(known: Any, n_tasks: int, n_classes: int) -> np.ndarray:
    out = np.full(n_tasks, -1, dtype=np.int64)
    if known is None:
        return out
    if isinstance(known, Mapping):
        idx = np.fromiter((int(k) for k in known), dtype=np.int64, count=len(known))
        val = np.fromiter((int(v) for v in known.values()), dtype=np.int64, count=len(known))
        if len(idx) and (idx.min() < 0 or idx.max() >= n_tasks):
            raise ValueError(f"known: task indices must lie in [0, {n_tasks})")
        out[idx] = val
    else:
        out = np.asarray(known, dtype=np.int64).copy()
        if out.shape != (n_tasks,):
            raise ValueError(f"known: expected shape ({n_tasks},) with -1 = unknown, "
                             f"got {out.shape}")
    if ((out < -1) | (out >= n_classes)).any():
        raise ValueError(f"known: classes must be in [0, {n_classes}) or -1 (unknown)")
    return out


def _check_triples(task: np.ndarray, worker: np.ndarray, label: np.ndarray, n_tasks: int,
                   n_workers: int, n_classes: int) -> None:
    for name, arr, hi in (("task", task, n_tasks), ("worker", worker, n_workers),
                          ("label", label, n_classes)):
        if len(arr) and (arr.min() < 0 or arr.max() >= hi):
            raise ValueError(f"{name}: indices must lie in [0, {hi}), got "
                             f"[{arr.min()}, {arr.max()}]")


class _Incidence:
    """The (task x worker*n_classes + label) count matrix and its transpose, built once."""

    def __init__(self, task: np.ndarray, worker: np.ndarray, label: np.ndarray, n_tasks: int,
                 n_workers: int, n_classes: int) -> None:
        col = worker * n_classes + label
        ones = np.ones(len(task))
        shape = (n_tasks, n_workers * n_classes)
        self.a = sparse.csr_array((ones, (task, col)), shape=shape)
        self.a.sum_duplicates()
        self.at = self.a.T  # a CSC view: its product with dense posteriors is the fastest
        self.shape = (n_workers, n_classes)

    def log_evidence(self, confusions: np.ndarray) -> np.ndarray:
        """[n_tasks, n_classes]: sum over a task's labels of log theta_w[c, y]."""
        n_workers, k = self.shape
        # rows (w, observed y), columns true c
        log_theta = np.log(confusions).transpose(0, 2, 1).reshape(n_workers * k, k)
        return np.asarray(self.a @ log_theta)

    def counts(self, posteriors: np.ndarray) -> np.ndarray:
        """[n_workers, true, observed]: expected label counts given task posteriors."""
        n_workers, k = self.shape
        flat = np.asarray(self.at @ posteriors)  # rows (w, observed), columns true
        return flat.reshape(n_workers, k, k).transpose(0, 2, 1)


def _m_step(inc: _Incidence, posteriors: np.ndarray, smoothing: float
            ) -> tuple[np.ndarray, np.ndarray]:
    conf = np.maximum(inc.counts(posteriors) + smoothing, _FLOOR)
    conf /= conf.sum(axis=2, keepdims=True)
    priors = np.maximum(posteriors.T.sum(axis=1) + smoothing, _FLOOR)
    return conf, priors / priors.sum()


def _e_step(inc: _Incidence, confusions: np.ndarray, priors: np.ndarray, known: np.ndarray
            ) -> tuple[np.ndarray, float]:
    # class-major [K, n_tasks]: reductions over a short leading axis are fast in numpy
    joint = np.ascontiguousarray(inc.log_evidence(confusions).T)
    joint += np.log(np.maximum(priors, _FLOOR))[:, None]
    top = joint.max(axis=0)
    post = np.exp(joint - top)
    total = post.sum(axis=0)
    post /= total
    norm = top + np.log(total)  # log-sum-exp per task
    gold = known >= 0
    if gold.any():
        # clamped tasks contribute their complete-data likelihood log P(labels, z = gold)
        norm[gold] = joint[known[gold], gold]
        post[:, gold] = np.eye(len(priors))[:, known[gold]]
    return np.ascontiguousarray(post.T), float(norm.sum())


def _majority_posteriors(task: np.ndarray, label: np.ndarray, n_tasks: int, n_classes: int
                         ) -> np.ndarray:
    votes = np.bincount(task * n_classes + label, minlength=n_tasks * n_classes)
    votes = votes.reshape(n_tasks, n_classes).astype(float)
    total = votes.sum(axis=1, keepdims=True)
    return np.where(total > 0, votes / np.where(total > 0, total, 1.0), 1.0 / n_classes)


def dawid_skene_triples(task: np.ndarray, worker: np.ndarray, label: np.ndarray, *,
                        n_tasks: int, n_workers: int, n_classes: int, known: Any = None,
                        max_iter: int = 100, tol: float | None = 1e-6,
                        init: str | np.ndarray = "majority", smoothing: float = 0.01
                        ) -> DawidSkeneResult:
    """Dawid-Skene EM on observed (task, worker, label) triples; see `dawid_skene_em`.

    This is the sparse entry point (O(#labels) memory); `dawid_skene_em` converts a dense
    labels matrix to triples and calls it.
    """
    task = np.asarray(task, dtype=np.int64)
    worker = np.asarray(worker, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    if not task.shape == worker.shape == label.shape or task.ndim != 1:
        raise ValueError("task, worker and label must be 1-D arrays of equal length")
    if n_classes < 2:
        raise ValueError(f"n_classes={n_classes}: need at least 2 classes")
    if smoothing < 0:
        raise ValueError(f"smoothing={smoothing}: must be >= 0")
    if max_iter < 1:
        raise ValueError(f"max_iter={max_iter}: must be >= 1")
    _check_triples(task, worker, label, n_tasks, n_workers, n_classes)
    gold = _known_array(known, n_tasks, n_classes)
    inc = _Incidence(task, worker, label, n_tasks, n_workers, n_classes)

    if isinstance(init, str):
        if init != "majority":
            raise ValueError(f"init={init!r}: use 'majority' or an array of posteriors "
                             f"[{n_tasks}, {n_classes}]")
        post = _majority_posteriors(task, label, n_tasks, n_classes)
    else:
        post = np.array(init, dtype=float)
        if post.shape != (n_tasks, n_classes):
            raise ValueError(f"init: expected posteriors of shape ({n_tasks}, {n_classes}), "
                             f"got {post.shape}")
    if (gold >= 0).any():
        post[gold >= 0] = np.eye(n_classes)[gold[gold >= 0]]
    conf, priors = _m_step(inc, post, smoothing)

    history: list[float] = []
    scale = max(len(task), 1)
    for _ in range(max_iter):
        post, ll = _e_step(inc, conf, priors, gold)
        conf, priors = _m_step(inc, post, smoothing)
        history.append(ll)
        if tol is not None and len(history) > 1 and (ll - history[-2]) / scale < tol:
            break
    return DawidSkeneResult(post, conf, priors, history)


def dawid_skene_em(labels: np.ndarray, n_classes: int | None = None, *, known: Any = None,
                   max_iter: int = 100, tol: float | None = 1e-6,
                   init: str | np.ndarray = "majority", smoothing: float = 0.01
                   ) -> DawidSkeneResult:
    """Dawid & Skene (1979) EM on a labels matrix [n_tasks, n_workers], -1 = missing.

    Returns (posteriors [n_tasks, K], confusions [n_workers, K, K] with
    confusions[w, true, observed], priors [K], log-likelihood history).

    - `init="majority"` starts from vote shares per task (crowd-kit's convention); an array
      [n_tasks, K] of posteriors may be given instead. Each iteration is one E-step then one
      M-step; the returned posteriors are the last E-step's, confusions/priors the last M's.
    - `known` (dict task -> class, or int array with -1 = unknown) clamps those tasks'
      posteriors to the gold class at initialisation and every E-step (semi-supervised D&S),
      so confusions are anchored by the labelled subset; their history term is the
      complete-data log-likelihood log P(labels, z = gold).
    - `smoothing` s adds s pseudo-counts to every confusion cell and prior (MAP under a
      symmetric Dirichlet(1 + s)); cells are floored at 1e-10 before taking logs.
    - Stops after `max_iter` iterations, or when the log-likelihood gain per observed label
      falls below `tol` (`tol=None` never stops early).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels: expected a 2-D [n_tasks, n_workers] array, got {labels.shape}")
    n_tasks, n_workers = labels.shape
    labels = labels.astype(np.int64)
    task, worker = np.nonzero(labels >= 0)
    y = labels[task, worker]
    if n_classes is None:
        n_classes = max(2, int(y.max()) + 1 if len(y) else 2)
    return dawid_skene_triples(task, worker, y, n_tasks=n_tasks, n_workers=n_workers,
                               n_classes=n_classes, known=known, max_iter=max_iter, tol=tol,
                               init=init, smoothing=smoothing)


def fit_confusions_from_gold(task: np.ndarray, worker: np.ndarray, label: np.ndarray,
                             known: Any, *, n_tasks: int, n_workers: int, n_classes: int,
                             smoothing: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Supervised D&S: confusions [n_workers, K, K] and priors [K] from gold tasks only.

    One M-step with one-hot posteriors on the gold-labelled tasks (every other task has zero
    weight): theta_w[c, k] ∝ s + #{gold tasks of class c that w labelled k}. Pair it with
    `dawid_skene_posteriors` to label the rest without letting them move the confusions.
    """
    gold = _known_array(known, n_tasks, n_classes)
    task = np.asarray(task, dtype=np.int64)
    worker = np.asarray(worker, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    _check_triples(task, worker, label, n_tasks, n_workers, n_classes)
    inc = _Incidence(task, worker, label, n_tasks, n_workers, n_classes)
    onehot = np.zeros((n_tasks, n_classes))
    onehot[gold >= 0, gold[gold >= 0]] = 1.0
    return _m_step(inc, onehot, smoothing)


def dawid_skene_posteriors(task: np.ndarray, worker: np.ndarray, label: np.ndarray,
                           confusions: np.ndarray, priors: np.ndarray, *, n_tasks: int,
                           known: Any = None) -> tuple[np.ndarray, float]:
    """One E-step with fixed parameters: (posteriors [n_tasks, K], log-likelihood)."""
    n_workers, n_classes, _ = confusions.shape
    task = np.asarray(task, dtype=np.int64)
    worker = np.asarray(worker, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    _check_triples(task, worker, label, n_tasks, n_workers, n_classes)
    inc = _Incidence(task, worker, label, n_tasks, n_workers, n_classes)
    return _e_step(inc, confusions, priors, _known_array(known, n_tasks, n_classes))


# --------------------------------------------------------------------------- wrapper


class DawidSkene:
    """Dawid-Skene over critics' verdicts (`critic_labels`), crowd-kit style.

    `fit(judgments, gold=None)`; `gold` maps item_id -> reference response index (e.g. the
    human `chosen` label). With `gold_strategy="clamp"` gold items are clamped during EM
    (semi-supervised); with "gold_only" confusions come from gold items alone and the other
    items get one E-step. Fitted: `labels_` (item_id -> response index, items with at least
    one critic verdict), `probas_`, `confusions_` (rows (critic, true), columns observed),
    `reliability_` (critic -> sum_c prior_c * theta[c, c], the chance it matches the latent
    truth), `priors_`, `log_likelihood_`, `n_iter_`, `critic_labels_`.
    """

    def __init__(self, max_iter: int = 100, tol: float | None = 1e-6, smoothing: float = 0.01,
                 *, mode: str = "pairwise", gold_strategy: str = "clamp",
                 **renamed: Any) -> None:
        # n_iter= was renamed max_iter= (the name BradleyTerry and PlackettLuce use)
        max_iter = renamed_kwarg("DawidSkene", renamed, "n_iter", "max_iter", max_iter)
        no_other_kwargs("DawidSkene", renamed)
        if gold_strategy not in GOLD_STRATEGIES:
            raise ValueError(f"gold_strategy={gold_strategy!r}: use one of "
                             f"{', '.join(GOLD_STRATEGIES)}")
        if mode not in LABEL_MODES:
            raise ValueError(f"mode={mode!r}: use one of {', '.join(LABEL_MODES)}")
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing
        self.mode = mode
        self.gold_strategy = gold_strategy

    def fit(self, judgments: pd.DataFrame, gold: Mapping[Any, int] | pd.Series | None = None
            ) -> DawidSkene:
        labs = critic_labels(judgments, self.mode)
        self.critic_labels_ = labs
        items = pd.Index(np.sort(pd.unique(labs["item_id"])), name="item_id")
        critics = pd.Index(np.sort(pd.unique(labs["critic"])), name="critic")
        task = items.get_indexer(labs["item_id"])
        worker = critics.get_indexer(labs["critic"])
        y = labs["label"].to_numpy(dtype=np.int64)
        known = np.full(len(items), -1, dtype=np.int64)
        if gold is not None:
            g = pd.Series(gold, dtype=object)
            g = g[g.notna()]
            numeric = pd.to_numeric(g, errors="coerce")
            bad = g[numeric.isna() | (numeric < 0) | (numeric % 1 != 0)]
            if len(bad):
                raise ValueError(f"gold: labels must be response indices (ints >= 0); got "
                                 f"{dict(list(bad.items())[:3])}")
            g = numeric.astype(np.int64)
            pos = items.get_indexer(g.index)
            known[pos[pos >= 0]] = g.to_numpy()[pos >= 0].astype(np.int64)
        self.n_gold_ = int((known >= 0).sum())
        n_classes = max(2, int(y.max()) + 1 if len(y) else 2,
                        int(known.max()) + 1 if len(known) else 2)
        if self.gold_strategy == "gold_only" and gold is not None:
            if self.n_gold_ == 0:
                raise ValueError("gold: no gold item_id matches an item with critic verdicts; "
                                 "gold_strategy='gold_only' needs some")
            conf, priors = fit_confusions_from_gold(
                task, worker, y, known, n_tasks=len(items), n_workers=len(critics),
                n_classes=n_classes, smoothing=self.smoothing)
            post, ll = dawid_skene_posteriors(task, worker, y, conf, priors,
                                              n_tasks=len(items), known=known)
            res = DawidSkeneResult(post, conf, priors, [ll])
        else:
            res = dawid_skene_triples(task, worker, y, n_tasks=len(items),
                                      n_workers=len(critics), n_classes=n_classes,
                                      known=known, max_iter=self.max_iter, tol=self.tol,
                                      smoothing=self.smoothing)
        classes = pd.Index(range(n_classes), name="label")
        self.probas_ = pd.DataFrame(res.posteriors, index=items, columns=classes)
        self.labels_ = pd.Series(res.posteriors.argmax(axis=1) if len(items) else [],
                                 index=items, name="label", dtype=int)
        self.priors_ = pd.Series(res.priors, index=classes, name="prior")
        idx = pd.MultiIndex.from_product([critics, range(n_classes)], names=["critic", "true"])
        self.confusions_ = pd.DataFrame(res.confusions.reshape(-1, n_classes), index=idx,
                                        columns=pd.Index(range(n_classes), name="observed"))
        diag = np.diagonal(res.confusions, axis1=1, axis2=2)
        self.reliability_ = pd.Series(diag @ res.priors, index=critics, name="reliability")
        self.log_likelihood_ = list(res.log_likelihood)
        self.n_iter_ = len(res.log_likelihood)
        return self

    def fit_predict(self, judgments: pd.DataFrame,
                    gold: Mapping[Any, int] | pd.Series | None = None) -> pd.Series:
        return self.fit(judgments, gold).labels_

    def reliability_weights(self, *, max_accuracy: float = 0.99, min_weight: float = 0.0
                            ) -> pd.Series:
        """Critic weights for weighted voting: log((K-1) a / (1 - a)), a = `reliability_`.

        For independent voters with symmetric errors this log-odds weighting is the optimal
        weighted majority rule (Nitzan & Paroush 1982; Shapley & Grofman 1984). Accuracy is
        clipped to [1/K, max_accuracy] so one perfect critic cannot get an infinite weight,
        and weights are floored at `min_weight`: a critic at or below chance gets weight 0
        rather than a negative weight, since a vote tally cannot flip its ballots.
        """
        if not hasattr(self, "reliability_"):
            raise ValueError("DawidSkene is not fitted: call fit(judgments) first")
        k = len(self.priors_)
        if not 1.0 / k < max_accuracy < 1.0:
            raise ValueError(f"max_accuracy={max_accuracy}: must lie in (1/{k}, 1)")
        a = self.reliability_.clip(lower=1.0 / k, upper=max_accuracy)
        w = np.log((k - 1) * a / (1.0 - a)).clip(lower=min_weight)
        return w.rename("weight")


def reliability_bootstrap(judgments: pd.DataFrame, critics: Sequence[str], *, n_boot: int = 200,
                          seed: int = 0, level: float = 0.95, mode: str = "all",
                          max_iter: int = 50) -> pd.DataFrame:
    """Dawid-Skene reliability per critic (P(its verdict is right), prior-weighted) with a
    bootstrap interval over items: `n_boot` resamples of the items, refitted with at most
    `max_iter` EM steps each. Columns: critic, reliability, ci_low, ci_high (NaN with
    n_boot = 0, or for a critic absent from every resample)."""
    import warnings

    cols = ["critic", "reliability", "ci_low", "ci_high"]
    labs = critic_labels(judgments, mode)
    names = pd.Index(list(critics))
    labs = labs[labs["critic"].isin(names)]
    if labs.empty:
        return pd.DataFrame(columns=cols)
    items = pd.Index(np.sort(pd.unique(labs["item_id"])))
    task = items.get_indexer(labs["item_id"])
    worker = names.get_indexer(labs["critic"])
    y = labs["label"].to_numpy(dtype=np.int64)
    k = max(2, int(y.max()) + 1)
    ds = DawidSkene(mode=mode).fit(judgments)
    out = pd.DataFrame({"critic": list(names)})
    out["reliability"] = out["critic"].map(ds.reliability_)
    rng = np.random.default_rng(seed)
    by_task = pd.Series(np.arange(len(labs))).groupby(task).apply(np.asarray)
    boots = np.full((n_boot, len(names)), np.nan)
    for b in range(n_boot):
        pick = rng.integers(0, len(by_task), len(by_task))
        rows = np.concatenate([by_task.iloc[t] for t in pick])
        new_task = np.repeat(np.arange(len(pick)), [len(by_task.iloc[t]) for t in pick])
        res = dawid_skene_triples(new_task, worker[rows], y[rows], n_tasks=len(pick),
                                  n_workers=len(names), n_classes=k, max_iter=max_iter)
        seen = np.bincount(worker[rows], minlength=len(names)) > 0
        rel = np.diagonal(res.confusions, axis1=1, axis2=2) @ res.priors
        boots[b] = np.where(seen, rel, np.nan)
    tail = (1 - level) / 2
    with warnings.catch_warnings():  # a critic with no verdict has an all-NaN column
        warnings.simplefilter("ignore", RuntimeWarning)
        out["ci_low"] = np.nanquantile(boots, tail, axis=0) if n_boot else np.nan
        out["ci_high"] = np.nanquantile(boots, 1 - tail, axis=0) if n_boot else np.nan
    return out
