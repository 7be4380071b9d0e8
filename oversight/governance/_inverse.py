"""Inverse constitution: which few principles best reconstruct a set of preference labels?

After Inverse Constitutional AI (Findeis et al. 2024, arXiv:2406.06560):

1. A candidate pool: shipped constitutions' principles, user-written principles, or principles
   a model generates from labelled pairs (`generate_principles`).
2. Optional deduplication by embedding: greedy leader clustering at a cosine threshold
   (`dedup_principles`, any `embed(texts) -> array` callable).
3. Every candidate votes on every pair through a critic, in both orders (so position bias
   cancels): A (response 0), B (response 1) or not relevant. Its vote is its canonical
   P(response 0 better) averaged over the orders; within `margin` of 0.5, or an abstention,
   is "not relevant". (ICAI asks the annotator for a third "not relevant" answer; our critics
   answer A/B with a probability, so relevance is a confident probability.)
4. Keep the candidates relevant on at least `min_relevance` of the labelled pairs.
5. Rank by correct - incorrect votes; keep the top `n` with a positive net.

Reconstruction agreement of a set S: per pair, the majority of S's relevant votes; a pair with
no relevant vote or a tied vote gets half credit (a coin flip's expectation), so sets of any
size are compared on the same items. The result reports it for the chosen set, for random sets
of the same size from the pool and for the whole pool, next to trivial baselines (first shown,
longer, shorter), with 95% intervals, on the fitting pairs and, with `holdout`, on pairs the
selection never saw.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oversight.constitution import Constitution, Principle, load_constitution, parse_constitution
from oversight.data import Comparison
from oversight.governance import _toml

POOL_NAME = "inverse-pool"
NOT_RELEVANT = -1


# --------------------------------------------------------------------------- candidates
def principle_from_statement(statement: str, pid: str, tags: Sequence[str] = ()) -> Principle:
    """A principle whose prompts all quote its one-sentence statement."""
    s = statement.strip()
    if not s:
        raise ValueError(f"principle {pid!r}: empty statement")
    return Principle(
        id=pid, statement=s,
        critique_request=("Identify ways in which the assistant's last response goes against "
                          f"this principle: \"{s}\""),
        revision_request=("Please rewrite the assistant's response so that it follows this "
                          f"principle: \"{s}\""),
        comparison_question=f"Which of the two responses better follows this principle: \"{s}\"?",
        tags=tuple(tags))


def _slug(text: str, n_words: int = 6) -> str:
    words = [w for w in re.sub(r"[^a-z0-9]+", "-", text.lower()).split("-") if w]
    return "-".join(words[:n_words]) or "principle"


def candidate_pool(constitutions: Sequence[Constitution | str | Path] = (),
                   principles: Sequence[Principle | str] = (), *,
                   name: str = POOL_NAME) -> Constitution:
    """One constitution holding every candidate. Ids are `<constitution>-<principle id>` for
    shipped or loaded constitutions and a slug of the statement for user text; each keeps a
    `source:<where from>` tag. Weights and kinds are reset: candidates vote as equals."""
    out: list[Principle] = []
    used: set[str] = set()

    def add(p: Principle, pid: str, source: str) -> None:
        base, k = pid, 2
        while pid in used:
            pid, k = f"{base}-{k}", k + 1
        used.add(pid)
        tags = tuple(t for t in p.tags if not t.startswith("source:")) + (f"source:{source}",)
        out.append(Principle(id=pid, statement=p.statement, critique_request=p.critique_request,
                             revision_request=p.revision_request,
                             comparison_question=p.comparison_question, tags=tags))

    for c in constitutions:
        const = c if isinstance(c, Constitution) else load_constitution(c)
        cname = const.name.replace("_", "-")
        for p in const.principles:
            add(p, f"{cname}-{p.id}", f"{const.name}/{p.id}")
    for q in principles:
        if isinstance(q, str):
            add(principle_from_statement(q, _slug(q)), _slug(q), "user")
        else:
            add(q, q.id, next((t[7:] for t in q.tags if t.startswith("source:")), "user"))
    if not out:
        raise ValueError("the candidate pool is empty: give constitutions and/or principles")
    return Constitution(name=name, version="1", description="candidate principles",
                        principles=tuple(out))


GENERATE_TEMPLATE = (
    "Here is a conversation and two possible assistant replies.\n\n{conversation}\n\n"
    "Reply A: {a}\n\nReply B: {b}\n\n"
    "A careful human reviewer preferred Reply {winner}. State, in one short sentence, the "
    "general principle that explains this preference. Start with \"Prefer the reply that\".")


def generate_principles(items: Sequence[Comparison], labels: Mapping[str, int], backend: Any,
                        *, max_new_tokens: int = 40, limit: int | None = None
                        ) -> tuple[list[Principle], list[str]]:
    """Ask a backend for one principle per labelled pair, as ICAI's proposal step does.

    Returns (principles, skipped): the item ids whose generation gave no usable sentence are
    listed, never silently dropped."""
    from oversight.backends import ChatPrompt

    chosen = [it for it in items if it.k == 2 and labels.get(it.id) is not None]
    if limit is not None:
        chosen = chosen[:limit]
    prompts = []
    for it in chosen:
        conv = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in it.messages)
        text = GENERATE_TEMPLATE.format(conversation=conv, a=it.responses[0],
                                        b=it.responses[1], winner="AB"[int(labels[it.id])])
        prompts.append(ChatPrompt(({"role": "user", "content": text},)))
    gens = backend.generate(prompts, max_new_tokens=max_new_tokens) if prompts else []
    out: list[Principle] = []
    skipped: list[str] = []
    for it, g in zip(chosen, gens):
        line = next((ln.strip(" -*\"'") for ln in (g.text or "").splitlines() if ln.strip()), "")
        if len(line.split()) < 3:
            skipped.append(it.id)
            continue
        out.append(principle_from_statement(line, f"gen-{it.id[:8]}",
                                            tags=("source:generated", f"item:{it.id}")))
    return out, skipped


def dedup_principles(pool: Constitution, embed: Callable[[list[str]], Any],
                     threshold: float = 0.9) -> tuple[Constitution, dict[str, str]]:
    """Greedy leader clustering of statements by cosine similarity of their embeddings: a
    candidate within `threshold` of an earlier kept one joins it. Returns the reduced pool and
    {dropped id: id of the kept candidate it duplicates}."""
    texts = [p.statement for p in pool.principles]
    e = np.asarray(embed(texts), dtype=float)
    if e.ndim != 2 or len(e) != len(texts):
        raise ValueError(f"embed returned shape {e.shape}; expected ({len(texts)}, dim)")
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    kept: list[int] = []
    merged: dict[str, str] = {}
    for i in range(len(texts)):
        if kept:
            sims = e[kept] @ e[i]
            j = int(np.argmax(sims))
            if sims[j] >= threshold:
                merged[pool.principles[i].id] = pool.principles[kept[j]].id
                continue
        kept.append(i)
    return (Constitution(name=pool.name, version=pool.version, description=pool.description,
                         principles=tuple(pool.principles[i] for i in kept)), merged)


# --------------------------------------------------------------------------- votes
@dataclass
class PrincipleVotes:
    """Candidates' canonical P(response 0 better) per pair (NaN: abstained or not judged)."""

    principle_ids: list[str]
    item_ids: list[str]
    p0: np.ndarray
    margin: float = 0.1

    def __post_init__(self) -> None:
        self.p0 = np.asarray(self.p0, dtype=float)
        if self.p0.shape != (len(self.principle_ids), len(self.item_ids)):
            raise ValueError(f"p0 has shape {self.p0.shape}; expected "
                             f"({len(self.principle_ids)}, {len(self.item_ids)})")
        if not 0.0 <= self.margin < 0.5:
            raise ValueError(f"margin={self.margin} must be in [0, 0.5)")

    @property
    def votes(self) -> np.ndarray:
        """0 (response 0), 1 (response 1) or -1 (not relevant), principles x items."""
        p = self.p0
        return np.where(p > 0.5 + self.margin, 0,
                        np.where(p < 0.5 - self.margin, 1, NOT_RELEVANT)).astype(int)


def votes_from_judgments(judgments: pd.DataFrame, *, margin: float = 0.1) -> PrincipleVotes:
    """Candidate votes from a judgments table (pairwise rows; both orders are averaged)."""
    from oversight.aggregate import critic_p0

    p0 = critic_p0(judgments, by=("item_id", "principle"))
    principles = list(dict.fromkeys(judgments["principle"].astype(str)))
    items = list(dict.fromkeys(judgments["item_id"].astype(str)))
    m = np.full((len(principles), len(items)), np.nan)
    if not p0.empty:
        pi = pd.Index(principles).get_indexer(p0["principle"].astype(str))
        ii = pd.Index(items).get_indexer(p0["item_id"].astype(str))
        m[pi, ii] = p0["p0"].to_numpy(dtype=float)
    return PrincipleVotes(principles, items, m, margin)


def principle_votes(items: Sequence[Comparison], pool: Constitution, backend: Any, *,
                    store: Any = None, margin: float = 0.1, swap: bool = True,
                    progress: Any = None, **critic_options: Any) -> PrincipleVotes:
    """Every candidate judges every pair (both orders with `swap`), cached in `store`."""
    from oversight.critics import Critic
    from oversight.panel import Panel

    critic = Critic(pool, backend, name="inverse", swap=swap, **critic_options)
    result = Panel([critic], name="inverse").judge(list(items), store=store, progress=progress)
    votes = votes_from_judgments(result.judgments, margin=margin)
    # Keep the pool's order and every item, judged or not.
    ids = [p.id for p in pool.principles]
    item_ids = [it.id for it in items]
    m = np.full((len(ids), len(item_ids)), np.nan)
    src_p = {p: i for i, p in enumerate(votes.principle_ids)}
    src_i = {t: i for i, t in enumerate(votes.item_ids)}
    rows = [src_p.get(p, -1) for p in ids]
    cols = [src_i.get(t, -1) for t in item_ids]
    for a, r in enumerate(rows):
        if r < 0:
            continue
        for b, c in enumerate(cols):
            if c >= 0:
                m[a, b] = votes.p0[r, c]
    return PrincipleVotes(ids, item_ids, m, margin)


# --------------------------------------------------------------------------- numeric core
def vote_tally(votes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """(relevant, correct, incorrect) counts per principle over items with a label (>= 0)."""
    has = labels >= 0
    v = votes[:, has]
    lab = labels[has]
    relevant = (v != NOT_RELEVANT).sum(axis=1)
    correct = (v == lab[None]).sum(axis=1)
    return relevant, correct, relevant - correct


def select_principles(votes: np.ndarray, labels: np.ndarray, n: int,
                      min_relevance: float) -> np.ndarray:
    """Indices of the chosen principles: relevant on >= min_relevance of the labelled items,
    net (correct - incorrect) > 0, the top n by net (ties: more correct, then pool order)."""
    relevant, correct, incorrect = vote_tally(votes, labels)
    n_lab = int((labels >= 0).sum())
    net = correct - incorrect
    ok = (relevant >= min_relevance * n_lab) & (net > 0) & (relevant > 0)
    order = np.lexsort((np.arange(len(net)), -correct, -net))
    return np.array([i for i in order if ok[i]][:n], dtype=int)


def reconstruct(votes: np.ndarray, labels: np.ndarray) -> tuple[float, int, int]:
    """(hits, n, decided) for the majority of `votes` (a principles x items subset) against
    labels; undecided items (no relevant vote, or a tie) count half."""
    has = labels >= 0
    v = votes[:, has]
    margin = (v == 0).sum(axis=0) - (v == 1).sum(axis=0)
    pred = np.where(margin > 0, 0, np.where(margin < 0, 1, -1))
    lab = labels[has]
    decided = pred >= 0
    hits = float((pred[decided] == lab[decided]).sum()) + 0.5 * float((~decided).sum())
    return hits, int(has.sum()), int(decided.sum())


# --------------------------------------------------------------------------- result
@dataclass
class InverseResult:
    """Chosen principles, the per-candidate tally, and reconstruction against baselines."""

    pool: Constitution
    votes: PrincipleVotes
    chosen: list[str]
    candidates: pd.DataFrame
    summary: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)

    def constitution(self, name: str = "inverse", *, version: str = "1.0") -> Constitution:
        return parse_constitution(self.document(name, version=version))

    def document(self, name: str, *, version: str = "1.0") -> dict[str, Any]:
        if not self.chosen:
            raise ValueError("no candidate was chosen (none is relevant on enough pairs with "
                             "more correct than incorrect votes); nothing to write")
        by_id = {p.id: p for p in self.pool.principles}
        principles = []
        for pid in self.chosen:
            p = by_id[pid]
            principles.append({"id": pid, "statement": p.statement,
                               "critique_request": p.critique_request,
                               "revision_request": p.revision_request,
                               "comparison_question": p.comparison_question,
                               "tags": list(p.tags)})
        fit = self.summary[self.summary["split"] == self.summary["split"].iloc[-1]]
        chosen_row = fit[fit["method"] == "chosen set"].iloc[0]
        desc = (f"Inverse constitution: the {len(self.chosen)} of {len(self.pool)} candidate "
                "principles that best reconstruct the labels (ICAI); reconstruction "
                f"agreement {chosen_row['agreement']:.3f} on {chosen_row['split']} pairs.")
        cand = self.candidates.set_index("principle")
        prov = {
            "method": "inverse constitution (Findeis et al. 2024)",
            **{k: v for k, v in self.options.items() if v is not None},
            "pool": self.pool.name, "pool_hash": self.pool.hash, "pool_size": len(self.pool),
            "chosen": [{"principle": pid, "relevant": int(cand.loc[pid, "relevant"]),
                        "correct": int(cand.loc[pid, "correct"]),
                        "incorrect": int(cand.loc[pid, "incorrect"])} for pid in self.chosen],
            "reconstruction": [{k: (round(float(v), 6) if isinstance(v, float) else v)
                                for k, v in row.items() if not _isnan(v)}
                               for row in self.summary.to_dict("records")],
        }
        return {"constitution": {"name": name, "version": version, "description": desc},
                "principles": principles, "provenance": prov}

    def write(self, path: str | Path, name: str | None = None) -> Constitution:
        path = Path(path)
        doc = self.document(name or path.stem)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_toml.dumps(doc, "Written by `oversight inverse`; see [provenance]."),
                        encoding="utf-8")
        return load_constitution(path)


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def _labels_array(item_ids: Sequence[str], labels: Mapping[str, int]) -> np.ndarray:
    out = np.full(len(item_ids), -1, dtype=int)
    for k, t in enumerate(item_ids):
        v = labels.get(t)
        if v is not None:
            if int(v) not in (0, 1):
                raise ValueError(f"item {t}: label {v!r} must be 0 or 1 (two-response pairs)")
            out[k] = int(v)
    return out


def infer_constitution(votes: PrincipleVotes, labels: Mapping[str, int], *,
                       items: Sequence[Comparison] | None = None, n: int = 5,
                       min_relevance: float = 0.1, holdout: float = 0.0, n_random: int = 1000,
                       seed: int = 0, pool: Constitution | None = None) -> InverseResult:
    """Choose the top-`n` candidates (see the module docstring) and measure reconstruction.

    `labels`: item id -> preferred response (0/1), from human labels or a panel's decisions.
    `items` (same ids) gives the trivial baselines; `holdout` > 0 keeps that share of the
    labelled pairs (seeded) out of the selection and reports on them as "held-out".
    """
    from oversight.aggregate import baseline_agreement, wilson_ci

    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if not 0.0 <= min_relevance <= 1.0:
        raise ValueError(f"min_relevance={min_relevance} must be a share in [0, 1]")
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout={holdout} must be in [0, 1)")
    lab = _labels_array(votes.item_ids, labels)
    if not (lab >= 0).any():
        raise ValueError("no voted item has a label; labels must be keyed by item id")
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(lab >= 0)
    test_mask = np.zeros(len(lab), dtype=bool)
    if holdout > 0:
        n_test = int(round(holdout * labelled.size))
        test_mask[rng.permutation(labelled)[:n_test]] = True
    fit_lab = np.where(test_mask, -1, lab)
    v = votes.votes
    chosen_idx = select_principles(v, fit_lab, n, min_relevance)
    relevant, correct, incorrect = vote_tally(v, fit_lab)
    n_fit = int((fit_lab >= 0).sum())
    ids = votes.principle_ids
    by_id = {p.id: p for p in pool.principles} if pool is not None else {}
    cand = pd.DataFrame({
        "principle": ids,
        "statement": [by_id[i].statement if i in by_id else "" for i in ids],
        "relevant": relevant, "relevance": relevant / max(n_fit, 1),
        "correct": correct, "incorrect": incorrect, "net": correct - incorrect,
        "chosen": np.isin(np.arange(len(ids)), chosen_idx)})
    cand = cand.sort_values(["chosen", "net", "correct"], ascending=False,
                            kind="stable").reset_index(drop=True)
    chosen = [ids[i] for i in chosen_idx]
    size = max(len(chosen_idx), 1)
    splits = [("fit", fit_lab)]
    if holdout > 0:
        splits.append(("held-out", np.where(test_mask, lab, -1)))
    rows = []
    items_by_id = {it.id: it for it in items} if items is not None else {}
    for split, sl in splits:
        def row(method: str, k: int, hits: float, m: int, decided: int | None,
                lo: float | None = None, hi: float | None = None,
                split: str = split) -> dict[str, Any]:
            if lo is None or hi is None:
                lo, hi = wilson_ci(hits, m)
            return {"split": split, "method": method, "size": k, "n": m,
                    "agreement": hits / m if m else float("nan"), "ci_low": lo, "ci_high": hi,
                    "decided": decided}
        if len(chosen_idx):
            rows.append(row("chosen set", len(chosen_idx), *reconstruct(v[chosen_idx], sl)))
        else:
            m = int((sl >= 0).sum())
            rows.append(row("chosen set", 0, 0.5 * m, m, 0))
        draws = np.array([reconstruct(v[rng.choice(len(ids), size=min(size, len(ids)),
                                                   replace=False)], sl)[0]
                          for _ in range(n_random)]) / max(int((sl >= 0).sum()), 1)
        m = int((sl >= 0).sum())
        rows.append(row(f"random {size} (mean of {n_random})", size, float(draws.mean()) * m,
                        m, None, float(np.percentile(draws, 2.5)),
                        float(np.percentile(draws, 97.5))))
        rows.append(row("full pool", len(ids), *reconstruct(v, sl)))
        if items is not None:
            split_items = [items_by_id[t] for t, y in zip(votes.item_ids, sl)
                           if y >= 0 and t in items_by_id]
            split_labels = {t: int(y) for t, y in zip(votes.item_ids, sl) if y >= 0}
            for b in baseline_agreement(split_items, split_labels).itertuples():
                rows.append(row(f"baseline: {b.baseline}", 0, float(b.hits), int(b.n), None))
    summary = pd.DataFrame(rows)
    opts = {"n": n, "min_relevance": min_relevance, "margin": votes.margin,
            "holdout": holdout, "seed": seed, "labelled_pairs": int(labelled.size),
            "fit_pairs": n_fit}
    return InverseResult(pool or Constitution(POOL_NAME, "1", "candidates", tuple(
        principle_from_statement(i, i) for i in ids)), votes, chosen, cand, summary, opts)


def labels_from_items(items: Sequence[Comparison]) -> dict[str, int]:
    """Each item's `reference` (e.g. the human `chosen`), where it has one."""
    return {it.id: int(it.reference) for it in items if it.reference is not None}


def labels_from_decisions(decisions: pd.DataFrame) -> dict[str, int]:
    """A panel's decided items (an Aggregation's `decisions`): item id -> winning response.
    Ties and abstentions are not labels."""
    return {str(t): int(f) for t, f in zip(decisions["item_id"], decisions["final"])
            if isinstance(f, (int, np.integer)) and not isinstance(f, bool)}
