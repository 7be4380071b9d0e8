"""The integer-code helpers under the columnar aggregation (issue 17) against the pandas and
numpy operations they replace, on random input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oversight.aggregate import aggregate, columnar
from oversight.aggregate._ballots import dense_rank, item_positions, sorted_codes
from oversight.aggregate._stats import _matches

words = st.lists(st.sampled_from(["b", "a", "c", "aa", None]), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(words, st.booleans())
def test_sorted_codes_are_pandas_sorted_factorize(values, as_category):
    s = pd.Series(values, dtype="category" if as_category else object)
    want_codes, want_uniques = pd.factorize(s, sort=True)
    codes, uniques = sorted_codes(s)
    assert codes.tolist() == list(want_codes)
    assert list(np.asarray(uniques, dtype=object)) == list(np.asarray(want_uniques,
                                                                      dtype=object))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=60))
def test_dense_rank_is_numpy_unique(keys):
    key = np.array(keys, dtype=np.int64)
    uniq, inverse = dense_rank(key)
    want_uniq, want_inverse = np.unique(key, return_inverse=True)
    assert uniq.tolist() == want_uniq.tolist() and inverse.tolist() == want_inverse.tolist()


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 300), min_size=1), st.sets(st.integers(0, 300), min_size=1),
       st.booleans())
def test_matches_are_intersect1d(a, b, spread):
    scale = 10**9 if spread else 1  # a wide key range takes the sorting branch
    a = np.array(sorted(a), dtype=np.int64) * scale
    b = np.array(sorted(b), dtype=np.int64) * scale
    at_a, at_b = _matches(a, b)
    _, want_a, want_b = np.intersect1d(a, b, assume_unique=True, return_indices=True)
    assert at_a.tolist() == want_a.tolist() and at_b.tolist() == want_b.tolist()


def test_item_positions_through_categories():
    index = pd.Index(["x", "y", "z"], dtype=object)
    values = pd.Series(pd.Categorical(["z", "w", None, "x"], categories=["w", "x", "z"]))
    assert item_positions(values, index).tolist() == [2, -1, -1, 0]
    assert item_positions(np.array(["y", "q"], dtype=object), index).tolist() == [1, -1]


def test_columnar_sorts_a_stores_dictionary_and_is_idempotent():
    frame = pd.DataFrame({
        "item_id": pd.Categorical(["i2", "i1", "i2", "i1"], categories=["i2", "i1"]),
        "critic": ["c", "c", "c", "c"], "principle": ["p"] * 4,
        "order": ["0,1", "0,1", "1,0", "1,0"], "mode": ["pairwise"] * 4,
        "value": [0.9, 0.2, 0.3, 0.6], "status": ["ok"] * 4, "raw": ["x"] * 4})
    work = columnar(frame)
    assert "raw" not in work.columns  # only the columns aggregation reads
    assert list(work["item_id"].cat.categories) == ["i1", "i2"]  # re-sorted, codes remapped
    assert work["item_id"].astype(object).tolist() == ["i2", "i1", "i2", "i1"]
    assert columnar(work) is work
    items_plain = aggregate(frame.drop(columns="raw").astype({"item_id": object}))
    items_work = aggregate(work)
    pd.testing.assert_frame_equal(items_plain.decisions, items_work.decisions)
    assert items_work.decisions.set_index("item_id")["final"].to_dict() == {"i2": 0, "i1": 1}


@pytest.mark.parametrize("method", ["vote", "bt", "ds"])
def test_a_categorical_table_aggregates_as_its_strings(method):
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "item_id": [f"item{i % 50}" for i in range(n)],
        "critic": [f"c{i % 3}" for i in range(n)],
        "principle": ["p"] * n, "order": np.where(rng.random(n) < 0.5, "0,1", "1,0"),
        "mode": ["pairwise"] * n, "value": rng.random(n), "principle_weight": 1.0,
        "status": np.where(rng.random(n) < 0.1, "abstain", "ok")})
    as_cat = frame.astype({c: "category" for c in ("item_id", "critic", "order", "status")})
    a = aggregate(frame, method=method).decisions
    b = aggregate(as_cat, method=method).decisions
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("kway", [False, True])
@pytest.mark.parametrize("method", ["vote", "majority", "bt", "conservative"])
def test_chunked_aggregation_equals_one_pass_without_items(method, kway, monkeypatch):
    """A veto principle and abstentions, no items given: the chunked path (bounded memory)
    decides exactly as one pass does. A table with K-way items is not chunked (the vote's
    entropy is normalised over the whole table)."""
    from oversight.aggregate import _aggregate as A

    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        k = 3 if kway and i % 4 == 0 else 2
        for c in range(3):
            for principle, kind in (("harm", "veto"), ("help", "soft")):
                for a in range(k):
                    for b in range(k):
                        if a != b:
                            rows.append({"item_id": f"it{i:03d}", "critic": f"c{c}",
                                         "principle": principle, "principle_kind": kind,
                                         "principle_weight": 1.0, "order": f"{a},{b}",
                                         "mode": "pairwise", "value": float(rng.random()),
                                         "status": "ok" if rng.random() > 0.1 else "abstain"})
    frame = pd.DataFrame(rows)
    one = aggregate(frame, method=method).decisions
    monkeypatch.setattr(A, "CHUNK_JUDGMENTS", 100)
    seen = []
    real = A._aggregate
    monkeypatch.setattr(A, "_aggregate", lambda *a, **k: seen.append(1) or real(*a, **k))
    chunked = aggregate(frame, method=method).decisions
    assert len(seen) == 1 if kway else len(seen) > 5
    assert (one["veto_override"] | one["veto_conflict"]).any()  # the veto stage has work
    pd.testing.assert_frame_equal(chunked, one)
