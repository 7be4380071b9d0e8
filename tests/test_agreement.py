"""Agreement statistics: alpha against the krippendorff package, kappas, error structure, graphs.

tests/golden/alpha_reference.json holds random reliability matrices with missing values and
krippendorff 0.9.0's alpha on each at three levels; regenerate with
`python tests/test_agreement.py`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oversight.aggregate._agreement import (
    agreement_summary,
    category_counts,
    cohen_kappa_matrix,
    critic_agreement_graph,
    effective_panel_size,
    error_correlation,
    fleiss_kappa,
    fleiss_kappa_from_labels,
    krippendorff_alpha,
    label_matrix,
    principle_conflict_graph,
)
from oversight.aggregate._dawid_skene import critic_labels
from oversight.critics import JUDGMENT_COLUMNS

GOLDEN = Path(__file__).parent / "golden"
LEVELS = ("nominal", "ordinal", "interval")


def row(item, critic, order, value, status="ok", principle="p", constitution=None):
    d = dict.fromkeys(JUDGMENT_COLUMNS)
    d.update(item_id=item, critic=critic, constitution=constitution or critic,
             principle=principle, principle_weight=1.0, order=order, mode="pairwise",
             status=status, value=value if status == "ok" else None)
    return d


def table(rows):
    return pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)


def random_reliability(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raters, units, n_values = rng.integers(2, 7), rng.integers(5, 40), rng.integers(2, 6)
    x = rng.integers(0, n_values, (raters, units)).astype(float)
    if seed % 2:
        x = x * 1.5 + 2.0  # non-integer codes take the general (sorting) path
    x[rng.random(x.shape) < 0.35] = np.nan
    x[:, 0] = [x[0, 0] if not np.isnan(x[0, 0]) else 1.0] + [np.nan] * (raters - 1)  # singleton
    return x


# --------------------------------------------------------------------------- alpha


def test_alpha_matches_golden_krippendorff_values():
    cases = json.loads((GOLDEN / "alpha_reference.json").read_text())["cases"]
    for case in cases:
        x = np.array(case["data"], dtype=float)  # JSON null -> NaN
        for level in LEVELS:
            assert krippendorff_alpha(x, level) == pytest.approx(case[level], abs=1e-9)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("level", LEVELS)
def test_alpha_matches_live_krippendorff(seed, level):
    kripp = pytest.importorskip("krippendorff")
    x = random_reliability(seed)
    assert krippendorff_alpha(x, level) == pytest.approx(
        kripp.alpha(x, level_of_measurement=level), abs=1e-9)


def test_alpha_large_domain_and_value_domain():
    kripp = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 200, (4, 300)).astype(float)  # > 64 values: sparse path
    x[rng.random(x.shape) < 0.3] = np.nan
    for level in LEVELS:
        assert krippendorff_alpha(x, level) == pytest.approx(
            kripp.alpha(x, level_of_measurement=level), abs=1e-9)
    d = [[1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
         [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
         [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
         [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan]]
    assert round(krippendorff_alpha(d, "ordinal"), 3) == 0.815  # Krippendorff (2011) p. 8
    assert krippendorff_alpha(d, "ordinal", value_domain=[5, 4, 3, 2, 1]) == pytest.approx(
        kripp.alpha(d, level_of_measurement="ordinal", value_domain=[5, 4, 3, 2, 1]), abs=1e-9)
    with pytest.raises(ValueError, match="outside value_domain"):
        krippendorff_alpha(d, "nominal", value_domain=[1, 2, 3])
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(d, "ratio-ish")


def test_alpha_textbook_and_degenerate_cases():
    x = [[np.nan, np.nan, np.nan, np.nan, np.nan, 3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
         [1, np.nan, 2, 1, 3, 3, 4, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
         [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4]]
    assert round(krippendorff_alpha(x, "nominal"), 6) == 0.691358  # Krippendorff (2011)
    assert round(krippendorff_alpha(x, "interval"), 6) == 0.810845
    assert math.isnan(krippendorff_alpha([[1, np.nan], [np.nan, 2]]))  # nothing pairable
    assert math.isnan(krippendorff_alpha([[1, 1], [1, 1]]))  # no variation: D_e = 0
    assert krippendorff_alpha([[0, 1, 0, 1], [0, 1, 0, 1]]) == 1.0


# --------------------------------------------------------------------------- kappas

FLEISS_WIKIPEDIA = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                    [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                    [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def test_fleiss_kappa_textbook_example():
    # Fleiss (1971) as on Wikipedia: P_bar = 0.378, P_e = 0.213, kappa = 0.210
    assert round(fleiss_kappa(FLEISS_WIKIPEDIA), 3) == 0.210
    assert fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_from_labels_variable_raters():
    labels = np.array([[0, 1, 1, 0, np.nan], [0, 1, 0, 0, 1], [0, 1, 1, np.nan, np.nan]])
    counts = category_counts(labels)
    assert counts.tolist() == [[3, 0], [0, 3], [1, 2], [2, 0], [0, 1]]
    # unit 5 has one rating and is dropped; units with 2 or 3 raters use the generalised form
    p_i = np.array([1, 1, 1 / 3, 1])
    p_j = np.array([6, 5]) / 11
    expected = (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())
    assert fleiss_kappa_from_labels(labels) == pytest.approx(expected)
    complete = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [0, 1, 1, 1]], dtype=float)
    assert fleiss_kappa_from_labels(complete) == pytest.approx(
        fleiss_kappa(category_counts(complete)))


def test_cohen_kappa_matrix_by_hand_and_sklearn():
    a = [0, 0, 1, 1, 0, 1, np.nan]
    b = [0, 1, 1, 1, 0, 0, 1]
    c = [1, 1, 0, 0, 1, 0, 0]
    m = cohen_kappa_matrix(np.array([a, b, c], dtype=float), ["a", "b", "c"])
    assert m.loc["a", "b"] == pytest.approx(1 / 3)  # p_o = 4/6, p_e = 1/2
    assert m.loc["a", "b"] == m.loc["b", "a"] and m.loc["a", "a"] == 1.0
    sk = pytest.importorskip("sklearn.metrics")
    assert m.loc["b", "c"] == pytest.approx(sk.cohen_kappa_score(b, c))
    assert m.loc["a", "c"] == pytest.approx(sk.cohen_kappa_score(a[:6], c[:6]))


# --------------------------------------------------------------------------- error structure


def test_error_correlation_and_effective_panel_size():
    rng = np.random.default_rng(0)
    n = 2000
    truth = rng.integers(0, 2, n)
    shared = rng.random(n) < 0.2  # c0 and c1 fail on the same items; c2 fails independently
    err = {"c0": shared, "c1": shared ^ (rng.random(n) < 0.02), "c2": rng.random(n) < 0.2}
    labels = pd.DataFrame([{"item_id": i, "critic": c, "label": int(truth[i] ^ e[i])}
                           for c, e in err.items() for i in range(n)])
    corr = error_correlation(labels, dict(enumerate(truth)))
    assert corr.loc["c0", "c1"] > 0.9 and abs(corr.loc["c0", "c2"]) < 0.06
    n_eff = effective_panel_size(corr)
    # two near-clones and one independent critic: 9 / (3 + 2 * 0.93 + ~0) = 1.86
    assert n_eff == pytest.approx(9 / corr.to_numpy().sum()) and 1.8 < n_eff < 2.0
    assert effective_panel_size(np.eye(4)) == 4.0
    assert effective_panel_size(np.ones((4, 4))) == 1.0
    rho = np.full((4, 4), 0.5)
    np.fill_diagonal(rho, 1.0)
    assert effective_panel_size(rho) == pytest.approx(4 / (1 + 3 * 0.5))


# --------------------------------------------------------------------------- graphs


def _pairwise_from_p0(item, node_critic, principle, p0, rng, constitution=None):
    swap = rng.random() < 0.5
    return row(item, node_critic, "1,0" if swap else "0,1", 1 - p0 if swap else p0,
               principle=principle, constitution=constitution)


def test_critic_agreement_graph():
    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        v = rng.integers(0, 2)
        p = 0.8 if v == 0 else 0.2
        rows += [row(f"i{i}", "c0", "0,1", p), row(f"i{i}", "c1", "0,1", p),
                 row(f"i{i}", "c2", "0,1", float(rng.choice([0.2, 0.8])))]
    g = critic_agreement_graph(table(rows), threshold=0.5)
    assert set(g.nodes) == {"c0", "c1", "c2"} and g.nodes["c0"]["n_items"] == 60
    assert list(g.edges) == [("c0", "c1")]
    e = g.edges["c0", "c1"]
    assert e["kappa"] == 1.0 and e["agreement"] == 1.0 and e["n_items"] == 60
    assert critic_agreement_graph(table(rows)).number_of_edges() == 3


def test_principle_conflict_graph_finds_opposing_principles():
    rng = np.random.default_rng(2)
    rows = []
    for i in range(80):
        helpful = rng.uniform(0.05, 0.95)
        harmless = float(np.clip(1 - helpful + rng.normal(0, 0.1), 0.01, 0.99))
        rows += [_pairwise_from_p0(f"i{i}", "c1", "helpful", helpful, rng, "hh"),
                 _pairwise_from_p0(f"i{i}", "c1", "harmless", harmless, rng, "hh"),
                 _pairwise_from_p0(f"i{i}", "c1", "honest", rng.uniform(0.05, 0.95), rng,
                                   "hh"),
                 _pairwise_from_p0(f"i{i}", "c2", "helpful", helpful, rng, "hh")]
    rows.append(row("i0", "c1", "0,1", None, status="abstain", principle="honest"))
    j = table(rows)
    g = principle_conflict_graph(j, min_items=20, threshold=-0.3)
    assert set(g.edges) == {("c1:harmless", "c1:helpful"), ("c1:harmless", "c2:helpful")}
    e = g.edges["c1:harmless", "c1:helpful"]
    assert e["correlation"] < -0.8 and e["n_items"] == 80
    assert e["disagreement"] > e["expected_disagreement"] + 0.3
    assert g.nodes["c1:helpful"]["principle"] == "helpful"
    pooled = principle_conflict_graph(j, by="constitution")
    assert set(pooled.edges) == {("hh:harmless", "hh:helpful")}
    with pytest.raises(ValueError, match="by="):
        principle_conflict_graph(j, by="model")


# --------------------------------------------------------------------------- summary, properties


def _panel(seed: int, n_items: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        truth = rng.integers(0, 2)
        for c, skill in (("a", 0.9), ("b", 0.75), ("c", 0.6), ("d", 0.5)):
            if rng.random() < 0.2:
                rows.append(row(f"i{i:03d}", c, "0,1", None, status="abstain"))
                continue
            v = truth if rng.random() < skill else 1 - truth
            rows.append(_pairwise_from_p0(f"i{i:03d}", c, "p", 0.8 if v == 0 else 0.2, rng))
    return table(rows)


def test_agreement_summary_numbers():
    j = _panel(0)
    s = agreement_summary(j)
    x, critics, items = label_matrix(critic_labels(j))
    assert s["n_critics"] == 4 and s["n_items"] == len(items) == 30
    assert s["alpha"] == pytest.approx(krippendorff_alpha(x, "nominal"))
    assert s["fleiss_kappa"] == pytest.approx(fleiss_kappa_from_labels(x))
    k = cohen_kappa_matrix(x, critics).to_numpy()
    assert s["mean_cohen_kappa"] == pytest.approx(np.nanmean(k[np.triu_indices(4, 1)]))
    empty = agreement_summary(table([row("x", "a", "0,1", None, status="error")]))
    assert empty["n_items"] == 0 and math.isnan(empty["alpha"])


_J = _panel(3)
_ALPHA = krippendorff_alpha(label_matrix(critic_labels(_J))[0], "nominal")


@settings(max_examples=20, deadline=None)
@given(st.permutations(range(len(_J))))
def test_alpha_invariant_to_row_order(perm):
    x, _, _ = label_matrix(critic_labels(_J.iloc[list(perm)]))
    assert krippendorff_alpha(x, "nominal") == _ALPHA


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 29), st.sampled_from(["a", "d", "z"]),
       st.sampled_from(["abstain", "error"]))
def test_abstention_row_changes_no_agreement(item, critic, status):
    extra = table([row(f"i{item:03d}", critic, "1,0", None, status=status)])
    j = pd.concat([_J, extra], ignore_index=True)
    assert agreement_summary(j) == agreement_summary(_J)


def _regenerate() -> None:  # pragma: no cover - run by hand with krippendorff installed
    import krippendorff

    cases = []
    for seed in range(100, 106):
        x = random_reliability(seed)
        case = {"data": [[None if np.isnan(v) else float(v) for v in r] for r in x]}
        for level in LEVELS:
            case[level] = float(krippendorff.alpha(x, level_of_measurement=level))
        cases.append(case)
    (GOLDEN / "alpha_reference.json").write_text(json.dumps(
        {"source": "krippendorff 0.9.0 alpha(reliability_data, level_of_measurement)",
         "cases": cases}))


if __name__ == "__main__":  # pragma: no cover
    _regenerate()
