"""Participatory drafting: stakeholders' votes -> group-aware consensus -> a constitution.

The method of Collective Constitutional AI (Anthropic and CIP, 2023), which used Polis:

1. Fill in unseen votes by cosine k-nearest neighbours over participants' vote vectors.
2. Project participants with PCA (2 components) and cluster them with k-means; k is given,
   or chosen in 2..5 by the silhouette score (as Polis does).
3. Score each statement by group-aware consensus, the product over clusters g of
   P(agree | g) = (1 + agrees in g) / (2 + votes in g), over the *observed* votes only (passes
   count as votes, imputed values never do: they shaped the clusters, not the tallies).
4. Keep the statements whose score clears a declared threshold.

A statement that one group accepts and another rejects scores low however popular it is in
the larger group, which is the point: the constitution is what the groups share. The numeric
cores are pure numpy functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oversight.constitution import Constitution, parse_constitution
from oversight.governance import _toml
from oversight.governance._votes import Votes, load_votes

METHOD = "group-aware consensus (Collective Constitutional AI): kNN imputation, PCA, k-means"


# --------------------------------------------------------------------------- numeric cores
def impute_votes(matrix: np.ndarray, k: int = 5, chunk: int = 2048) -> np.ndarray:
    """Unseen votes (NaN) filled with the similarity-weighted mean vote of the k participants
    most similar (cosine over zero-filled vote vectors) among those who voted on that
    statement (their plain mean when none is similar). A statement nobody voted on is filled
    with 0 (pass)."""
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    m = np.asarray(matrix, dtype=float)
    seen = ~np.isnan(m)
    x = np.where(seen, m, 0.0)
    norm = np.linalg.norm(x, axis=1)
    unit = x / np.where(norm > 0, norm, 1.0)[:, None]
    out = x.copy()
    n = len(m)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        sim = unit[rows] @ unit.T
        sim[np.arange(len(rows)), rows] = -np.inf  # never your own neighbour
        for j in np.flatnonzero((~seen[rows]).any(axis=0)):
            donors = np.flatnonzero(seen[:, j])
            targets = np.flatnonzero(~seen[rows, j])
            if donors.size == 0:
                continue
            s = sim[np.ix_(targets, donors)]
            kk = min(k, donors.size)
            top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            s_top = np.take_along_axis(s, top, axis=1)
            v_top = m[donors][:, j][top]
            w = np.clip(s_top, 0.0, None)
            wsum = w.sum(axis=1)
            # No similar neighbour (e.g. a participant with no votes yet): the donors' mean.
            mean = np.where(wsum > 0, (w * v_top).sum(axis=1) / np.where(wsum > 0, wsum, 1.0),
                            m[donors, j].mean())
            out[rows[targets], j] = mean
    return out


def pca(x: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Participants' coordinates on the first principal components (centred SVD)."""
    x = np.asarray(x, dtype=float)
    centred = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    c = min(n_components, s.size)
    return u[:, :c] * s[:c]


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10,
           max_iter: int = 300) -> tuple[np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding, best of `n_init` runs: (labels, inertia)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k={k} clusters needs between 1 and {n} participants")
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, float] | None = None
    for _ in range(n_init):
        centres = [x[rng.integers(n)]]
        for _ in range(1, k):
            d2 = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
            total = d2.sum()
            centres.append(x[rng.choice(n, p=d2 / total)] if total > 0 else x[rng.integers(n)])
        c = np.array(centres)
        labels = np.zeros(n, dtype=int)
        for it in range(max_iter):
            d = ((x[:, None, :] - c[None]) ** 2).sum(-1)
            new = d.argmin(axis=1)
            if it > 0 and np.array_equal(new, labels):
                break
            labels = new
            for g in range(k):
                if (labels == g).any():
                    c[g] = x[labels == g].mean(axis=0)
        inertia = float(((x - c[labels]) ** 2).sum())
        if best is None or inertia < best[1] - 1e-12:
            best = (_canonical(labels), inertia)
    assert best is not None
    return best


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters by first appearance, so equal partitions get equal labels."""
    order = {g: i for i, g in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[g] for g in labels.tolist()], dtype=int)


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (Rousseeuw 1987); 0 for a single cluster."""
    x = np.asarray(x, dtype=float)
    groups = np.unique(labels)
    if groups.size < 2:
        return 0.0
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None]) ** 2).sum(-1), 0.0))
    onehot = (labels[:, None] == groups[None]).astype(float)
    size = onehot.sum(axis=0)
    mean_to = d @ onehot
    own = np.searchsorted(groups, labels)
    a_den = size[own] - 1
    a = np.where(a_den > 0, mean_to[np.arange(len(x)), own] / np.maximum(a_den, 1), 0.0)
    other = mean_to / size
    other[np.arange(len(x)), own] = np.inf
    b = other.min(axis=1)
    s = np.where(a_den > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def group_consensus(matrix: np.ndarray, labels: np.ndarray, n_groups: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(scores, p_agree): p_agree[s, g] = (1 + agrees) / (2 + votes) among group g's observed
    votes on statement s; scores[s] = prod_g p_agree[s, g]."""
    m = np.asarray(matrix, dtype=float)
    labels = np.asarray(labels, dtype=int)
    k = int(labels.max()) + 1 if n_groups is None else n_groups
    onehot = (labels[:, None] == np.arange(k)[None]).astype(float)  # participants x groups
    agree = (m == 1).astype(float).T @ onehot
    seen = (~np.isnan(m)).astype(float).T @ onehot
    p = (1.0 + agree) / (2.0 + seen)
    return p.prod(axis=1), p


# --------------------------------------------------------------------------- drafting
@dataclass
class ConsensusDraft:
    """The outcome of `draft_constitution`: scores for every statement and the kept ones."""

    votes: Votes
    imputed: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    k: int
    silhouettes: dict[int, float]
    p_agree: np.ndarray
    scores: np.ndarray
    threshold: float
    knn: int
    seed: int

    @property
    def kept(self) -> np.ndarray:
        return self.scores >= self.threshold

    @property
    def selected(self) -> list[str]:
        """Statement ids that clear the threshold, best first."""
        order = np.argsort(-self.scores, kind="stable")
        return [self.votes.statement_ids[i] for i in order if self.kept[i]]

    @property
    def cluster_sizes(self) -> list[int]:
        return np.bincount(self.labels, minlength=self.k).tolist()

    def table(self) -> pd.DataFrame:
        """One row per statement: id, text, consensus, P(agree | group) each, kept, votes."""
        v = self.votes
        df = pd.DataFrame({"statement_id": v.statement_ids, "statement": v.statements,
                           "consensus": self.scores, "kept": self.kept,
                           "votes": v.observed.sum(axis=0),
                           "agree": (v.matrix == 1).sum(axis=0)})
        for g in range(self.k):
            df[f"p_agree_g{g}"] = self.p_agree[:, g]
        return df.sort_values("consensus", ascending=False, kind="stable").reset_index(
            drop=True)

    def provenance(self) -> dict[str, Any]:
        v = self.votes
        counts = v.counts()
        return {
            "method": METHOD,
            "source": Path(v.source).name,
            "source_format": v.format,
            "source_sha256": v.source_sha256,
            **counts,
            "excluded_statements": list(v.excluded),
            "imputation": f"cosine kNN, k={self.knn}",
            "pca_components": int(self.coords.shape[1]),
            "clusters": self.k,
            "cluster_sizes": self.cluster_sizes,
            "threshold": float(self.threshold),
            "seed": self.seed,
            "kept": int(self.kept.sum()),
            "statements_scored": [
                {"statement_id": sid, "consensus": round(float(s), 6), "kept": bool(kept),
                 "p_agree": [round(float(x), 6) for x in p]}
                for sid, s, kept, p in zip(v.statement_ids, self.scores, self.kept,
                                           self.p_agree)],
        }

    def document(self, name: str, *, version: str = "1.0",
                 description: str | None = None) -> dict[str, Any]:
        if not self.kept.any():
            raise ValueError(f"no statement clears threshold {self.threshold}; the best "
                             f"consensus is {self.scores.max():.4f}. Lower the threshold.")
        v = self.votes
        counts = v.counts()
        desc = description or (
            f"Drafted from {counts['participants']} participants' {counts['votes']} votes on "
            f"{counts['statements']} statements ({Path(v.source).name}); kept the "
            f"{int(self.kept.sum())} statements whose group-aware consensus over {self.k} "
            f"opinion groups is >= {self.threshold:g}.")
        used: set[str] = set()
        principles = []
        for sid in self.selected:
            i = v.statement_ids.index(sid)
            text = v.statements[i]
            principles.append({
                "id": _unique_slug(text, sid, used),
                "statement": text,
                "critique_request": "Identify ways in which the assistant's last response goes "
                                    f"against this principle: \"{text}\"",
                "revision_request": "Please rewrite the assistant's response so that it "
                                    f"follows this principle: \"{text}\"",
                "comparison_question": "Which of the two responses better follows this "
                                       f"principle: \"{text}\"?",
                "tags": ["participatory", f"statement-{_slug(sid) or 'x'}"],
            })
        return {"constitution": {"name": name, "version": version, "description": desc},
                "principles": principles, "provenance": self.provenance()}

    def constitution(self, name: str, **kwargs: Any) -> Constitution:
        return parse_constitution(self.document(name, **kwargs))

    def write(self, path: str | Path, name: str | None = None, **kwargs: Any) -> Constitution:
        """Write the constitution TOML (its name is the file stem) and return it, reloaded."""
        from oversight.constitution import load_constitution

        path = Path(path)
        doc = self.document(name or path.stem, **kwargs)
        header = ("Drafted by `oversight draft` from stakeholders' votes; see [provenance].\n"
                  "Regenerate it rather than edit it by hand, so the provenance stays true.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_toml.dumps(doc, header), encoding="utf-8")
        return load_constitution(path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _unique_slug(text: str, sid: str, used: set[str]) -> str:
    """A readable principle id: the statement id if it has words, else the text's first words."""
    base = _slug(sid)
    if not re.search(r"[a-z]", base):
        words = _slug(text).removeprefix("the-assistant-").split("-")
        base = "-".join(w for w in words[:6] if w) or f"statement-{base or 'x'}"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    return slug


def draft_constitution(votes: Votes | str | Path, threshold: float, *,
                       k: int | None = None, knn: int = 5, n_components: int = 2,
                       k_range: Sequence[int] = (2, 3, 4, 5), seed: int = 0) -> ConsensusDraft:
    """Select statements by group-aware consensus (see the module docstring).

    `k` fixes the number of opinion groups; None picks it from `k_range` by silhouette.
    """
    if not isinstance(votes, Votes):
        votes = load_votes(votes)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold={threshold} must be in [0, 1] (a product of "
                         "probabilities)")
    n = len(votes.participants)
    if n < 2:
        raise ValueError(f"{votes.source}: {n} participant(s); consensus needs at least 2")
    filled = impute_votes(votes.matrix, k=knn)
    coords = pca(filled, n_components)
    sil: dict[int, float] = {}
    if k is None:
        best: tuple[float, int, np.ndarray] | None = None
        for kk in k_range:
            if not 2 <= kk < n:
                continue
            labels, _ = kmeans(coords, kk, seed=seed)
            sil[kk] = silhouette(coords, labels)
            if best is None or sil[kk] > best[0] + 1e-9:
                best = (sil[kk], kk, labels)
        if best is None:
            raise ValueError(f"k_range={list(k_range)} has no k with 2 <= k < {n} participants")
        _, k, labels = best
    else:
        if not 1 <= k <= n:
            raise ValueError(f"k={k} must be between 1 and {n} (participants)")
        labels, _ = kmeans(coords, k, seed=seed)
        sil[k] = silhouette(coords, labels)
    scores, p = group_consensus(votes.matrix, labels, k)
    return ConsensusDraft(votes, filled, coords, labels, k, sil, p, scores, threshold, knn, seed)


# --------------------------------------------------------------------------- merging
WEIGHT_RULES = ("equal", "participants", "votes")


def stakeholder_weights(constitutions: Mapping[str, Constitution],
                        rule: str | Mapping[str, float] = "equal") -> dict[str, float]:
    """Each stakeholder critic's weight under a declared rule, scaled to mean 1.

    `equal`: 1 each; `participants` / `votes`: proportional to the participants or votes in
    the constitution's [provenance] (drafted files have it); a mapping: those weights.
    """
    names = list(constitutions)
    if isinstance(rule, Mapping):
        missing = [n for n in names if n not in rule]
        extra = [n for n in rule if n not in constitutions]
        if missing or extra:
            raise ValueError(f"weights must name each stakeholder once; missing {missing}, "
                             f"unknown {extra}; stakeholders: {names}")
        raw = {n: float(rule[n]) for n in names}
    elif rule == "equal":
        raw = {n: 1.0 for n in names}
    elif rule in ("participants", "votes"):
        raw = {}
        for n, c in constitutions.items():
            value = (c.provenance or {}).get(rule)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"stakeholder {n!r} ({c.path or c.name}): weight rule "
                                 f"{rule!r} needs [provenance] {rule} = <number>, which it "
                                 "lacks; use 'equal' or explicit weights")
            raw[n] = float(value)
    else:
        raise ValueError(f"weight rule {rule!r} is not valid; use one of "
                         f"{', '.join(WEIGHT_RULES)} or a mapping stakeholder -> weight")
    bad = {n: w for n, w in raw.items() if not w > 0}
    if bad:
        raise ValueError(f"stakeholder weights must be > 0; got {bad}")
    mean = sum(raw.values()) / len(raw)
    return {n: w / mean for n, w in raw.items()}


def merge_stakeholders(stakeholders: Mapping[str, Constitution | str | Path]
                       | Sequence[Constitution | str | Path], backend: Any, *,
                       weights: str | Mapping[str, float] = "equal", name: str = "stakeholders",
                       aggregator: str = "vote", **critic_options: Any) -> Any:
    """One panel with one critic per stakeholder's constitution, weighted by a declared rule.

    Critics are named after the stakeholder (the mapping key, or the constitution name), so
    the report's principle-conflict graph reads "stakeholder:principle" and its edges show
    where stakeholders pull apart (see `stakeholder_conflicts`).
    """
    from oversight.constitution import load_constitution
    from oversight.critics import Critic
    from oversight.panel import Panel

    if isinstance(stakeholders, Mapping):
        pairs = list(stakeholders.items())
    else:
        loaded = [s if isinstance(s, Constitution) else load_constitution(s)
                  for s in stakeholders]
        pairs = [(c.name, c) for c in loaded]
    consts: dict[str, Constitution] = {}
    for key, c in pairs:
        if key in consts:
            raise ValueError(f"stakeholder {key!r} appears twice; name them with a mapping")
        consts[key] = c if isinstance(c, Constitution) else load_constitution(c)
    if not consts:
        raise ValueError("merge_stakeholders needs at least one constitution")
    w = stakeholder_weights(consts, weights)
    critics = [Critic(c, backend, name=key, weight=w[key], **critic_options)
               for key, c in consts.items()]
    return Panel(critics, name=name, method=aggregator)


def stakeholder_conflicts(judgments: pd.DataFrame, *, min_items: int = 20,
                          threshold: float = -0.3) -> pd.DataFrame:
    """The principle-conflict graph's edges that join two different stakeholders (critics):
    stakeholder and principle on each side, Pearson r of their verdicts, shared items, and
    observed against chance disagreement. Strongest conflict first."""
    from oversight.aggregate import principle_conflict_graph

    g = principle_conflict_graph(judgments, min_items=min_items, threshold=threshold)
    rows = []
    for u, v, d in g.edges(data=True):
        su, sv = g.nodes[u]["critic"], g.nodes[v]["critic"]
        if su == sv:
            continue
        (su, u), (sv, v) = sorted([(su, u), (sv, v)])
        rows.append({"stakeholder_a": su, "principle_a": g.nodes[u]["principle"],
                     "stakeholder_b": sv, "principle_b": g.nodes[v]["principle"],
                     "correlation": d["correlation"], "n_items": d["n_items"],
                     "disagreement": d["disagreement"],
                     "expected_disagreement": d["expected_disagreement"]})
    cols = ["stakeholder_a", "principle_a", "stakeholder_b", "principle_b", "correlation",
            "n_items", "disagreement", "expected_disagreement"]
    return pd.DataFrame(rows, columns=cols).sort_values("correlation", kind="stable"
                                                         ).reset_index(drop=True)
