"""Dawid-Skene: golden agreement with crowd-kit, planted skills, gold labels, properties.

Golden fixtures (tests/golden/ds_*.json) hold a labels matrix and crowd-kit 1.4.2's
DawidSkene output on it after a fixed number of iterations (majority-vote shares as the
start, no early stop). Regenerate with `python tests/test_dawid_skene.py`. Conventions:
crowd-kit's `errors_` is indexed (worker, observed) x true; ours is [worker, true, observed].
With smoothing=0 the two agree to ~1e-10 (both floor confusion cells at 1e-10; crowd-kit
also clips gold rows of `probas_` to 1e-10 instead of 0).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oversight.aggregate._dawid_skene import (
    DawidSkene,
    critic_labels,
    dawid_skene_em,
    dawid_skene_posteriors,
    dawid_skene_triples,
    fit_confusions_from_gold,
)
from oversight.critics import JUDGMENT_COLUMNS

GOLDEN = Path(__file__).parent / "golden"


# --------------------------------------------------------------------------- data


def planted(n_items: int, skills: list[float], seed: int, missing: float = 0.3,
            n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(truth, labels [items, critics] with -1 missing); a wrong label is uniform over others."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    correct = rng.random((n_items, len(skills))) < np.asarray(skills)
    wrong = (truth[:, None] + rng.integers(1, n_classes, (n_items, len(skills)))) % n_classes
    labels = np.where(correct, truth[:, None], wrong)
    labels[rng.random(labels.shape) < missing] = -1
    return truth, labels


def row(item: str, critic: str, order: str, value: float | None, status: str = "ok",
        principle: str = "p") -> dict:
    d = dict.fromkeys(JUDGMENT_COLUMNS)
    d.update(item_id=item, critic=critic, constitution=critic, principle=principle,
             principle_weight=1.0, order=order, mode="pairwise", status=status,
             value=value if status == "ok" else None)
    return d


def judgments_from_labels(labels: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Pairwise rows whose verdicts are `labels`, shown in a random order per row."""
    rng = np.random.default_rng(seed)
    t, w = np.nonzero(labels >= 0)
    y = labels[t, w]
    swap = rng.random(len(t)) < 0.5
    strength = rng.uniform(0.6, 0.95, len(t))
    p0 = np.where(y == 0, strength, 1 - strength)
    df = pd.DataFrame({c: None for c in JUDGMENT_COLUMNS}, index=range(len(t)))
    df["item_id"] = [f"i{k:05d}" for k in t]
    df["critic"] = [f"c{k}" for k in w]
    df["constitution"] = df["critic"]
    df["principle"] = "p"
    df["principle_weight"] = 1.0
    df["order"] = np.where(swap, "1,0", "0,1")
    df["mode"] = "pairwise"
    df["value"] = np.where(swap, 1 - p0, p0)
    df["status"] = "ok"
    return df


def accuracy(labels: pd.Series, truth: np.ndarray) -> float:
    ref = pd.Series(truth, index=[f"i{k:05d}" for k in range(len(truth))])
    return float((labels.to_numpy() == ref.reindex(labels.index).to_numpy()).mean())


# --------------------------------------------------------------------------- golden


def _load(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


@pytest.mark.parametrize("name", ["ds_binary.json", "ds_gold_3class.json"])
def test_matches_crowdkit_golden(name):
    g = _load(name)
    labels = np.array(g["labels"])
    known = np.array(g["known"]) if g["known"] is not None else None
    res = dawid_skene_em(labels, g["n_classes"], known=known, max_iter=g["n_iter"], tol=None,
                         smoothing=0.0)
    np.testing.assert_allclose(res.posteriors, g["posteriors"], atol=1e-8)
    np.testing.assert_allclose(res.confusions, g["confusions"], atol=1e-8)
    np.testing.assert_allclose(res.priors, g["priors"], atol=1e-8)
    assert (res.posteriors.argmax(axis=1) == np.array(g["labels_out"])).all()
    assert len(res.log_likelihood) == g["n_iter"]


def _crowdkit_reference(labels: np.ndarray, n_classes: int, n_iter: int,
                        known: np.ndarray | None) -> dict:
    from crowdkit.aggregation import DawidSkene as CrowdKitDS

    n_tasks, n_workers = labels.shape
    t, w = np.nonzero(labels >= 0)
    df = pd.DataFrame({"task": t, "worker": w, "label": labels[t, w]})
    gold = None
    if known is not None:
        idx = np.flatnonzero(known >= 0)
        gold = pd.Series(known[idx], index=idx)
    ck = CrowdKitDS(n_iter=n_iter, tol=-np.inf).fit(df, gold)
    classes = list(range(n_classes))
    probas = ck.probas_.reindex(index=range(n_tasks), columns=classes).to_numpy()
    errors = ck.errors_.reindex(pd.MultiIndex.from_product(
        [range(n_workers), classes], names=["worker", "label"]))[classes].fillna(0.0)
    conf = errors.to_numpy().reshape(n_workers, n_classes, n_classes).transpose(0, 2, 1)
    return {"posteriors": probas, "confusions": conf,
            "priors": ck.priors_.reindex(classes).to_numpy(),
            "labels_out": ck.labels_.reindex(range(n_tasks)).to_numpy()}


def test_matches_live_crowdkit():
    pytest.importorskip("crowdkit")
    _, labels = planted(400, [0.9, 0.8, 0.7, 0.65, 0.6, 0.55], seed=11, missing=0.25)
    ref = _crowdkit_reference(labels, 2, 7, None)
    res = dawid_skene_em(labels, 2, max_iter=7, tol=None, smoothing=0.0)
    np.testing.assert_allclose(res.posteriors, ref["posteriors"], atol=1e-8)
    np.testing.assert_allclose(res.confusions, ref["confusions"], atol=1e-8)
    assert (res.posteriors.argmax(axis=1) == ref["labels_out"]).all()


# --------------------------------------------------------------------------- behaviour


def test_recovers_planted_skills_and_beats_majority():
    skills = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6]
    truth, labels = planted(3000, skills, seed=7)
    judgments = judgments_from_labels(labels)
    ds = DawidSkene().fit(judgments)
    rel = ds.reliability_.reindex([f"c{k}" for k in range(len(skills))]).to_numpy()
    assert np.abs(rel - skills).max() < 0.03  # measured: 0.015
    acc_ds = accuracy(ds.labels_, truth)
    majority = np.where(labels == 1, 1, np.where(labels == 0, -1, 0)).sum(axis=1)
    acc_mv = float(np.where(majority == 0, 0.5, (majority > 0) == (truth == 1)).mean())
    print(f"planted skills: max |reliability - skill| = {np.abs(rel - skills).max():.3f}, "
          f"DS accuracy {acc_ds:.3f}, majority {acc_mv:.3f} (ties = coin flip)")
    assert acc_ds > 0.95 and acc_ds > acc_mv + 0.02
    w = ds.reliability_weights()
    assert (np.diff(w.reindex(ds.reliability_.sort_values(ascending=False).index)) <= 0).all()


def test_gold_breaks_the_adversarial_majority():
    # Three of five critics are adversarial: without gold, EM settles in the label-swapped
    # mode (which has the same likelihood); 100 gold items anchor the right one.
    truth, labels = planted(2000, [0.85, 0.8, 0.25, 0.3, 0.3], seed=0, missing=0.1)
    judgments = judgments_from_labels(labels)
    gold = {f"i{k:05d}": int(truth[k]) for k in range(100)}
    plain = DawidSkene().fit(judgments)
    clamped = DawidSkene().fit(judgments, gold)
    gold_only = DawidSkene(gold_strategy="gold_only").fit(judgments, gold)
    assert accuracy(plain.labels_, truth) < 0.2  # measured: 0.10
    assert accuracy(clamped.labels_, truth) > 0.87  # measured: 0.90
    assert accuracy(gold_only.labels_, truth) > 0.87  # measured: 0.90
    assert clamped.n_gold_ == 100
    rel = clamped.reliability_
    assert rel["c0"] > 0.75 and rel[["c2", "c3", "c4"]].max() < 0.4
    w = clamped.reliability_weights()
    assert (w[["c2", "c3", "c4"]] == 0).all() and (w[["c0", "c1"]] > 1).all()
    # clamped items keep their gold label exactly
    assert (clamped.probas_.loc[list(gold)].to_numpy().argmax(axis=1)
            == np.array(list(gold.values()))).all()


def test_known_clamps_posteriors_and_gold_only_path():
    truth, labels = planted(300, [0.8, 0.7, 0.6], seed=3, n_classes=3, missing=0.0)
    known = np.full(300, -1)
    known[:30] = truth[:30]
    res = dawid_skene_em(labels, 3, known={i: int(truth[i]) for i in range(30)})
    res_arr = dawid_skene_em(labels, 3, known=known)
    np.testing.assert_array_equal(res.posteriors, res_arr.posteriors)
    np.testing.assert_array_equal(res.posteriors[:30], np.eye(3)[truth[:30]])
    t, w = np.nonzero(labels >= 0)
    conf, priors = fit_confusions_from_gold(t, w, labels[t, w], known, n_tasks=300,
                                            n_workers=3, n_classes=3, smoothing=0.0)
    # supervised counts: critic 0's confusion on the 30 gold items, by hand
    g = np.flatnonzero(known >= 0)
    hand = np.zeros((3, 3))
    np.add.at(hand, (truth[g], labels[g, 0]), 1.0)
    np.testing.assert_allclose(conf[0], np.maximum(hand, 1e-10)
                               / np.maximum(hand, 1e-10).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(priors, np.bincount(truth[g], minlength=3) / 30)
    post, _ = dawid_skene_posteriors(t, w, labels[t, w], conf, priors, n_tasks=300)
    assert post.shape == (300, 3) and np.allclose(post.sum(axis=1), 1)


def test_likelihood_is_monotone_and_triples_match_dense():
    _, labels = planted(500, [0.9, 0.6, 0.7, 0.55], seed=5, n_classes=3)
    res = dawid_skene_em(labels, 3, max_iter=30, tol=None, smoothing=0.0)
    assert np.all(np.diff(res.log_likelihood) > -1e-8)
    t, w = np.nonzero(labels >= 0)
    res_t = dawid_skene_triples(t[::-1], w[::-1], labels[t, w][::-1], n_tasks=500, n_workers=4,
                                n_classes=3, max_iter=30, tol=None, smoothing=0.0)
    np.testing.assert_allclose(res.posteriors, res_t.posteriors, atol=1e-12)
    early = dawid_skene_em(labels, 3, max_iter=500, tol=1e-6)
    assert len(early.log_likelihood) < 500


def test_critic_labels_canonical_orientation_ties_and_abstentions():
    j = pd.DataFrame([
        row("a", "c1", "0,1", 0.8), row("a", "c1", "1,0", 0.3),  # P(0 better) = (0.8+0.7)/2
        row("a", "c2", "1,0", 0.9),  # prefers response 1
        row("a", "c3", "0,1", 0.5),  # exact tie: missing
        row("a", "c4", "0,1", None, status="abstain"),
        row("b", "c1", "0,1", None, status="error"),
    ], columns=JUDGMENT_COLUMNS)
    labs = critic_labels(j)
    assert labs[["item_id", "critic", "label"]].values.tolist() == [["a", "c1", 0],
                                                                    ["a", "c2", 1]]
    assert labs["p"].tolist() == pytest.approx([0.75, 0.1])


def test_validation_errors_name_the_field():
    labels = np.array([[0, 1], [1, -1]])
    with pytest.raises(ValueError, match="init"):
        dawid_skene_em(labels, init="random")
    with pytest.raises(ValueError, match="known"):
        dawid_skene_em(labels, known={0: 5})
    with pytest.raises(ValueError, match="gold_strategy"):
        DawidSkene(gold_strategy="em")
    with pytest.raises(ValueError, match="judgments table lacks"):
        DawidSkene().fit(pd.DataFrame({"item_id": ["a"]}))
    j = judgments_from_labels(np.array([[0, 1], [1, 1]]))
    with pytest.raises(ValueError, match="gold"):
        DawidSkene().fit(j, {"i00000": "yes"})
    with pytest.raises(ValueError, match="not fitted"):
        DawidSkene().reliability_weights()


# --------------------------------------------------------------------------- properties

_SMALL = planted(40, [0.85, 0.7, 0.6, 0.3], seed=2, missing=0.3)[1]
_SMALL_J = judgments_from_labels(_SMALL, seed=1)


def _fit(j: pd.DataFrame) -> DawidSkene:
    return DawidSkene(max_iter=50, tol=None).fit(j)


_REFERENCE = _fit(_SMALL_J)


@settings(max_examples=15, deadline=None)
@given(st.permutations(range(len(_SMALL_J))))
def test_dawid_skene_invariant_to_row_order(perm):
    ds = _fit(_SMALL_J.iloc[list(perm)])
    pd.testing.assert_series_equal(ds.labels_, _REFERENCE.labels_)
    np.testing.assert_allclose(ds.probas_.to_numpy(), _REFERENCE.probas_.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(ds.confusions_.to_numpy(), _REFERENCE.confusions_.to_numpy(),
                               atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 39), st.sampled_from(["c0", "c1", "c9"]),
       st.sampled_from(["abstain", "error"]), st.sampled_from(["0,1", "1,0"]))
def test_abstention_rows_change_nothing(item, critic, status, order):
    extra = pd.DataFrame([row(f"i{item:05d}", critic, order, None, status=status)],
                         columns=JUDGMENT_COLUMNS)
    ds = _fit(pd.concat([_SMALL_J, extra], ignore_index=True))
    pd.testing.assert_series_equal(ds.labels_, _REFERENCE.labels_)
    np.testing.assert_allclose(ds.probas_.to_numpy(), _REFERENCE.probas_.to_numpy(), atol=1e-12)


# --------------------------------------------------------------------------- fixtures


def _regenerate() -> None:  # pragma: no cover - run by hand with crowd-kit installed
    cases = {
        "ds_binary.json": (planted(300, [0.9, 0.85, 0.75, 0.65, 0.6, 0.3], seed=1)[1], 2, 10,
                           None),
    }
    truth3, labels3 = planted(200, [0.85, 0.7, 0.6, 0.5, 0.4], seed=4, n_classes=3)
    known3 = np.full(200, -1)
    known3[:20] = truth3[:20]
    cases["ds_gold_3class.json"] = (labels3, 3, 8, known3)
    for name, (labels, k, n_iter, known) in cases.items():
        ref = _crowdkit_reference(labels, k, n_iter, known)
        out = {"source": "crowd-kit 1.4.2 DawidSkene(n_iter, tol=-inf).fit; confusions "
                         "[worker, true, observed]",
               "n_classes": k, "n_iter": n_iter, "labels": labels.tolist(),
               "known": None if known is None else known.tolist(),
               **{key: np.asarray(v).tolist() for key, v in ref.items()}}
        (GOLDEN / name).write_text(json.dumps(out))


if __name__ == "__main__":  # pragma: no cover
    _regenerate()
