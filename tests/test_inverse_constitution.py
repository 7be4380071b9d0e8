"""Inverse constitution: recover the principles that generated a set of preference labels."""

from __future__ import annotations

import random

import numpy as np
import pytest
from typer.testing import CliRunner

from oversight import Comparison, Critic, FunctionBackend, Panel, load_constitution
from oversight.aggregate import baseline_agreement
from oversight.cli import app
from oversight.constitution import builtin
from oversight.governance import (
    PrincipleVotes,
    candidate_pool,
    dedup_principles,
    generate_principles,
    infer_constitution,
    labels_from_decisions,
    labels_from_items,
    principle_from_statement,
    principle_votes,
    reconstruct,
    select_principles,
)

runner = CliRunner()
FEATURES = ["polite", "accurate", "safe", "concise", "emoji", "formal", "cites", "humor"]
TRUE = ["accurate", "polite", "safe"]  # the labeller's principles


def synthetic(n: int = 160, seed: int = 0, noise: float = 0.1) -> list[Comparison]:
    """Responses carry random feature tags; the label is the majority vote of the TRUE
    principles that tell the two apart (a coin flip on a tie), then 10% of labels flip."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        fa = {f for f in FEATURES if rng.random() < 0.5}
        fb = {f for f in FEATURES if rng.random() < 0.5}
        ra = f"reply {i}a " + " ".join(f"[{f}]" for f in sorted(fa)) + " x" * rng.randint(0, 20)
        rb = f"reply {i}b " + " ".join(f"[{f}]" for f in sorted(fb)) + " x" * rng.randint(0, 20)
        lean = sum((f in fa) - (f in fb) for f in TRUE)
        label = 0 if lean > 0 else 1 if lean < 0 else rng.randint(0, 1)
        if rng.random() < noise:
            label = 1 - label
        items.append(Comparison(f"prompt {i}", (ra, rb), reference=label))
    return items


def feature_rule(ctx):
    """A candidate principle prefers the response with its feature; not relevant otherwise."""
    feature = next(t[8:] for t in ctx.principle.tags if t.startswith("feature:"))
    a, b = (f"[{feature}]" in r for r in ctx.responses)
    if a == b:
        return None
    return "A" if a else "B"


def feature_pool():
    return candidate_pool(principles=[
        principle_from_statement(f"Prefer the {f} reply.", f, tags=(f"feature:{f}",))
        for f in FEATURES])


@pytest.fixture(scope="module")
def synthetic_votes():
    items = synthetic()
    pool = feature_pool()
    return items, pool, principle_votes(items, pool, FunctionBackend(feature_rule,
                                                                       name="features"))


def test_recovers_the_labellers_principles(synthetic_votes):
    items, pool, votes = synthetic_votes
    res = infer_constitution(votes, labels_from_items(items), items=items, n=3, pool=pool,
                             holdout=0.5)
    assert sorted(res.chosen) == TRUE  # exactly the planted set
    s = res.summary.set_index(["split", "method"])["agreement"]
    lo = res.summary.set_index(["split", "method"])
    held = "held-out"
    chosen = s[(held, "chosen set")]
    assert chosen >= 0.75
    random_row = lo.loc[(held, "random 3 (mean of 1000)")]
    assert chosen > random_row["ci_high"]  # better than 97.5% of random 3-sets
    assert chosen > s[(held, "full pool")] + 0.1
    for b in ("first shown", "longer", "shorter"):
        assert chosen > s[(held, f"baseline: {b}")] + 0.1
    # The distractors' net votes are near zero; the planted ones are far above.
    cand = res.candidates.set_index("principle")
    assert cand.loc[TRUE, "net"].min() > 2 * cand.drop(TRUE)["net"].max()


def test_fewer_slots_keep_the_highest_net(synthetic_votes):
    items, pool, votes = synthetic_votes
    full = infer_constitution(votes, labels_from_items(items), n=3, pool=pool)
    res = infer_constitution(votes, labels_from_items(items), n=1, pool=pool)
    assert res.chosen == full.chosen[:1]
    assert res.candidates.iloc[0]["net"] == res.candidates["net"].max()


def test_relevance_threshold_drops_rarely_relevant_principles():
    # principle 0: right on every pair it votes on, but relevant on 2 of 40; principle 1: right
    # on 30, wrong on 6, relevant on 36.
    labels = np.zeros(40, dtype=int)
    v = np.full((2, 40), -1)
    v[0, :2] = 0
    v[1, :30] = 0
    v[1, 30:36] = 1
    assert select_principles(v, labels, n=2, min_relevance=0.1).tolist() == [1]
    assert select_principles(v, labels, n=2, min_relevance=0.0).tolist() == [1, 0]
    # A principle that votes against the labels more than with them never qualifies.
    flipped = np.where(v == -1, -1, 1 - v)
    assert select_principles(flipped, labels, n=2, min_relevance=0.0).tolist() == []


def test_reconstruct_counts_ties_and_silence_as_half():
    labels = np.array([0, 1, 0, 1, -1])
    votes = np.array([[0, 1, -1, 0, 0],
                      [0, 0, -1, 1, 1]])
    # item 0: both say 0 (hit); item 1: tie (half); item 2: silent (half); item 3: tie (half);
    # item 4 has no label.
    assert reconstruct(votes, labels) == (2.5, 4, 1)


def test_labels_from_a_panels_decisions(synthetic_votes):
    items, pool, votes = synthetic_votes
    unlabelled = [Comparison(it.prompt, it.responses) for it in items]
    judge = Critic(candidate_pool(principles=[principle_from_statement(
        "Prefer the concise reply.", "concise", tags=("feature:concise",))]),
        FunctionBackend(feature_rule, name="concise-judge"), name="judge")
    decisions = Panel([judge]).judge(unlabelled).aggregate("vote").decisions
    labels = labels_from_decisions(decisions)
    assert 0.4 * len(items) < len(labels) < len(items)  # ties (no concise difference) drop out
    res = infer_constitution(votes, labels, n=1, pool=pool)
    assert res.chosen == ["concise"]
    cand = res.candidates.set_index("principle")
    assert cand.loc["concise", "incorrect"] == 0
    assert cand.loc["concise", "correct"] == len(labels)
    s = res.summary.set_index("method")
    assert s.loc["chosen set", "agreement"] == 1.0
    assert s.loc["full pool", "agreement"] < 0.8


def test_dedup_by_embedding_records_what_it_merged():
    pool = candidate_pool(principles=["Prefer the safe reply.", "Prefer the SAFE reply!",
                                      "Prefer the polite reply."])

    def bag_of_words(texts):
        vocab = sorted({w for t in texts for w in t.lower().strip(".!").split()})
        return np.array([[t.lower().strip(".!").split().count(w) for w in vocab]
                         for t in texts], dtype=float)

    reduced, merged = dedup_principles(pool, bag_of_words, threshold=0.95)
    assert [p.statement for p in reduced.principles] == ["Prefer the safe reply.",
                                                         "Prefer the polite reply."]
    assert merged == {"prefer-the-safe-reply-2": "prefer-the-safe-reply"}


def test_generated_candidates_and_skips(synthetic_votes):
    items = synthetic_votes[0][:4]

    def gen(prompt):
        text = prompt.messages[-1]["content"]
        return "" if "prompt 1" in text else "Prefer the reply that is safe.\nmore text"

    backend = FunctionBackend(feature_rule, generate=gen, name="gen")
    principles, skipped = generate_principles(items, labels_from_items(items), backend)
    assert [p.statement for p in principles] == ["Prefer the reply that is safe."] * 3
    assert skipped == [items[1].id]
    pool = candidate_pool([builtin("honesty")], principles)
    assert len(pool) == 8 + 3 and len({p.id for p in pool.principles}) == 11


def test_written_inverse_constitution_has_provenance(tmp_path, synthetic_votes):
    items, pool, votes = synthetic_votes
    res = infer_constitution(votes, labels_from_items(items), items=items, n=3, pool=pool)
    const = res.write(tmp_path / "labeller.toml")
    assert load_constitution(tmp_path / "labeller.toml").hash == const.hash
    assert sorted(const.ids) == TRUE
    prov = const.provenance
    assert prov["pool_size"] == 8 and prov["labelled_pairs"] == 160
    methods = {r["method"] for r in prov["reconstruction"]}
    assert {"chosen set", "full pool", "baseline: first shown", "baseline: longer",
            "baseline: shorter"} <= methods


def test_baseline_agreement_golden():
    items = [Comparison("p", ("long answer", "short"), reference=0),
             Comparison("q", ("a", "bb"), reference=0),
             Comparison("r", ("same", "size"), reference=1)]
    b = baseline_agreement(items).set_index("baseline")
    assert b.loc["first shown", "hits"] == 2.0
    assert b.loc["longer", "hits"] == 1.5  # hit, miss, tie
    assert b.loc["shorter", "hits"] == 1.5  # miss, hit, tie
    assert (b["n"] == 3).all()


def test_votes_shape_is_checked():
    with pytest.raises(ValueError, match="expected \\(2, 3\\)"):
        PrincipleVotes(["a", "b"], ["x", "y", "z"], np.zeros((3, 2)))


def test_cli_inverse_on_a_tiny_model(tmp_path, tiny_llama):
    model, tok = tiny_llama
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        '{"prompt": "Hi", "chosen": "Hello, how can I help?", "rejected": "Go away."}\n'
        '{"prompt": "2+2?", "chosen": "4", "rejected": "5, probably"}\n')
    out = tmp_path / "inv"
    res = runner.invoke(app, ["inverse", "--data", str(data), "--out", str(out), "--pool",
                              "honesty", "--model", str(tmp_path / "tiny"), "--n", "2",
                              "--margin", "0", "--min-relevance", "0", "--holdout", "0"])
    assert res.exit_code == 0, res.output
    assert "baseline: longer" in res.output and "random 2" in res.output
    import pandas as pd

    cand = pd.read_csv(out / "candidates.csv")
    assert len(cand) == 8 and cand["relevant"].between(0, 2).all()
    assert cand["chosen"].sum() <= 2
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["n"]) == {2}
