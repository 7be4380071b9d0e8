"""Bradley-Terry and Plackett-Luce: golden values vs choix, batching, ties, connectivity,
standard errors, and the DataFrame wrappers."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oversight.aggregate._bradley_terry import (
    BradleyTerry,
    bt_fit,
    bt_strengths,
    bt_strengths_batched,
)
from oversight.aggregate._plackett_luce import (
    PlackettLuce,
    pl_fit,
    pl_strengths,
    pl_strengths_batched,
)
from oversight.errors import AggregationWarning

GOLDEN = json.loads((Path(__file__).parent / "golden" / "bt_choix_small.json").read_text())


def comparisons(seed: int, n: int, m: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, scale, n)
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j = j + (j >= i)
    win = rng.random(m) < 1 / (1 + np.exp(theta[j] - theta[i]))
    return np.where(win, i, j), np.where(win, j, i), theta


def judgments(theta_per_item: dict[str, np.ndarray], critics: int = 3, seed: int = 0,
              soft: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for item, theta in theta_per_item.items():
        for c in range(critics):
            for i in range(len(theta)):
                for j in range(len(theta)):
                    if i == j:
                        continue
                    p = 1 / (1 + np.exp(theta[j] - theta[i]))
                    value = float(np.clip(p + rng.normal(0, 0.05), 0, 1)) if soft \
                        else float(rng.random() < p)
                    rows.append({"item_id": item, "critic": f"c{c}", "principle": "helpful",
                                 "order": f"{i},{j}", "mode": "pairwise", "value": value,
                                 "status": "ok", "principle_weight": 1.0})
    return pd.DataFrame(rows)


# --- golden: agreement with choix -------------------------------------------------------

@pytest.mark.parametrize("case", GOLDEN["pairwise"], ids=lambda c: f"prior={c['prior']}")
def test_bt_matches_golden_choix_mm(case):
    est = bt_strengths(GOLDEN["n_items"], GOLDEN["winners"], GOLDEN["losers"], prior=case["prior"])
    np.testing.assert_allclose(est, case["log_strength"], atol=1e-6)


@pytest.mark.parametrize("prior", [0.0, 0.3])
def test_bt_matches_choix_live(prior):
    choix = pytest.importorskip("choix")
    n = 40
    w, lo, _ = comparisons(1, n, 800)
    est = bt_strengths(n, w, lo, prior=prior)
    data = np.column_stack([w, lo])
    ilsr = choix.ilsr_pairwise(n, data, alpha=prior / n, tol=1e-12)  # alpha scales with n
    mm = choix.mm_pairwise(n, data, alpha=prior, tol=1e-12, max_iter=100_000)
    assert np.abs(est - (ilsr - ilsr.mean())).max() < 1e-4
    assert np.abs(est - (mm - mm.mean())).max() < 1e-4
    assert abs(est.mean()) < 1e-12


def test_near_separable_graph_converges_to_choix():
    """A strict total order (every pair 5-0): the plain fixed point oscillates here."""
    choix = pytest.importorskip("choix")
    wins = np.array([[0, 0, 0, 0], [5, 0, 5, 5], [5, 0, 0, 0], [5, 0, 5, 0]])
    w, lo = np.nonzero(wins)
    w, lo = np.repeat(w, 5), np.repeat(lo, 5)
    est = bt_strengths(4, w, lo, prior=0.1)
    ref = choix.mm_pairwise(4, np.column_stack([w, lo]), alpha=0.1, tol=1e-12, max_iter=10**6)
    np.testing.assert_allclose(est, ref - ref.mean(), atol=1e-6)
    g = np.repeat(np.arange(3), len(w))
    batched = bt_strengths_batched(g, 4, np.tile(w, 3), np.tile(lo, 3), prior=0.1).reshape(3, 4)
    np.testing.assert_allclose(batched, np.tile(est, (3, 1)), atol=1e-8)


# --- batching --------------------------------------------------------------------------

def test_batched_equals_loop_with_soft_weights_and_variable_sizes():
    rng = np.random.default_rng(5)
    sizes = rng.integers(2, 6, 60)
    group = np.repeat(np.arange(60), 25)
    w = rng.integers(0, 100, len(group)) % sizes[group]
    lo = (w + 1 + rng.integers(0, 100, len(group)) % (sizes[group] - 1)) % sizes[group]
    v = rng.random(len(group))
    args = (np.r_[group, group], sizes, np.r_[w, lo], np.r_[lo, w], np.r_[v, 1 - v])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AggregationWarning)  # a few groups miss a response
        flat = bt_strengths_batched(*args, prior=0.2)
        fit = bt_fit(*args[1:], group=args[0], prior=0.2)
        offset = np.r_[0, np.cumsum(sizes)]
        for g in range(60):
            rows = args[0] == g
            one = bt_fit(sizes[g], args[2][rows], args[3][rows], args[4][rows], prior=0.2)
            np.testing.assert_allclose(flat[offset[g]:offset[g + 1]], one.log_strength,
                                       atol=1e-8)
            np.testing.assert_allclose(fit.se[offset[g]:offset[g + 1]], one.se, atol=1e-8)


# --- ties and soft comparisons -------------------------------------------------------

def test_tie_counts_as_half_a_win():
    # 0 beats 1 once, and one tie: wins 1.5 vs 0.5 -> P(0 beats 1) = 3/4, margin = log 3
    est = bt_strengths(2, [0, 0, 1], [1, 1, 0], [1.0, 0.5, 0.5])
    assert est[0] - est[1] == pytest.approx(np.log(3), abs=1e-9)
    base = {"item_id": "q", "critic": "c", "principle": "p", "mode": "pairwise",
            "status": "ok", "principle_weight": 1.0}
    df = pd.DataFrame([{**base, "order": "0,1", "value": 1.0},
                       {**base, "order": "1,0", "value": 0.5}])
    bt = BradleyTerry(prior=0.0).fit(df)
    s = bt.strengths_.set_index("response")["log_strength"]
    assert s[0] - s[1] == pytest.approx(np.log(3), abs=1e-9)
    assert bt.preferences_["p_best_beats_runner_up"].iloc[0] == pytest.approx(0.75, abs=1e-9)
    only_ties = BradleyTerry(prior=0.0).fit(df.assign(value=0.5))
    np.testing.assert_allclose(only_ties.strengths_["log_strength"], 0.0, atol=1e-12)


# --- connectivity ----------------------------------------------------------------------

def test_disconnected_graph_warns_and_centres_each_component():
    w = [0, 1, 2, 0, 3, 4, 5]
    lo = [1, 2, 0, 2, 4, 5, 3]
    with pytest.warns(AggregationWarning, match=r"2 components.*\[0, 1, 2\].*\[3, 4, 5\]"):
        fit = bt_fit(6, w, lo, prior=0.0)
    assert np.all(np.isfinite(fit.log_strength)) and np.all(np.isfinite(fit.se))
    assert fit.component.tolist() == [0, 0, 0, 1, 1, 1]
    assert fit.log_strength[:3].sum() == pytest.approx(0, abs=1e-12)
    assert fit.log_strength[3:].sum() == pytest.approx(0, abs=1e-12)


def test_undefeated_item_warns_without_prior_and_is_finite_with_prior():
    w, lo = [0, 1, 2, 0, 3, 3], [1, 2, 1, 2, 0, 2]  # item 3 never loses
    with pytest.warns(AggregationWarning, match=r"\[3\] never lost"):
        fit = bt_fit(4, w, lo, prior=0.0)
    assert fit.component[3] != fit.component[0]  # split off, not a number pretending to be one
    with warnings.catch_warnings():
        warnings.simplefilter("error", AggregationWarning)
        fit = bt_fit(4, w, lo, prior=0.5)
    assert np.all(np.isfinite(fit.log_strength)) and np.all(np.isfinite(fit.se))
    assert fit.log_strength.argmax() == 3


def test_wrapper_names_disconnected_items():
    theta = {"q1": np.array([0.0, 1.0, -1.0, 0.3])}
    df = judgments(theta)
    df = df[df["order"].isin(["0,1", "1,0", "2,3", "3,2"])]  # {0, 1} and {2, 3} never meet
    df = pd.concat([df, judgments({"q2": np.array([0.0, 0.5])})])
    with pytest.warns(AggregationWarning, match=r"1 of 2 group\(s\) \['q1'\]"):
        bt = BradleyTerry().fit(df)
    pref = bt.preferences_.set_index("item_id")
    assert not pref.at["q1", "connected"] and pref.at["q2", "connected"]
    assert np.isnan(pref.at["q1", "p_best_beats_worst"])


# --- standard errors -------------------------------------------------------------------

def _neg_log_posterior(theta, w, lo, prior):
    return np.logaddexp(0, theta[lo] - theta[w]).sum() - prior * (theta - np.exp(theta)).sum()


@pytest.mark.parametrize("prior", [0.0, 0.7])
def test_hessian_se_matches_numerical_second_derivative(prior):
    n = 5
    w, lo, _ = comparisons(7, n, 120)
    fit = bt_fit(n, w, lo, prior=prior)
    theta = fit.log_strength - (np.log(np.exp(fit.log_strength).mean()) if prior else 0)
    h, eps = np.zeros((n, n)), 1e-4
    for i in range(n):
        for j in range(n):
            e_i, e_j = np.eye(n)[i] * eps, np.eye(n)[j] * eps
            h[i, j] = (_neg_log_posterior(theta + e_i + e_j, w, lo, prior)
                       - _neg_log_posterior(theta + e_i - e_j, w, lo, prior)
                       - _neg_log_posterior(theta - e_i + e_j, w, lo, prior)
                       + _neg_log_posterior(theta - e_i - e_j, w, lo, prior)) / (4 * eps**2)
    center = np.eye(n) - 1 / n
    cov = center @ np.linalg.pinv(h, rcond=1e-8) @ center
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(cov)), rtol=1e-4)
    np.testing.assert_allclose(fit.cov[0], cov, atol=1e-5)


def test_bootstrap_se_close_to_hessian_and_reproducible():
    w, lo, _ = comparisons(8, 6, 600)
    hess = bt_fit(6, w, lo, prior=0.1)
    boot = bt_fit(6, w, lo, prior=0.1, ci="bootstrap", n_boot=200, seed=1)
    np.testing.assert_allclose(boot.se, hess.se, rtol=0.25)
    again = bt_fit(6, w, lo, prior=0.1, ci="bootstrap", n_boot=200, seed=1)
    np.testing.assert_array_equal(boot.ci_low, again.ci_low)
    assert np.all(boot.ci_low < boot.log_strength) and np.all(boot.log_strength < boot.ci_high)


def test_hessian_ci_coverage_is_near_nominal():
    rng = np.random.default_rng(11)
    n, reps, m = 5, 300, 150
    theta = rng.normal(0, 0.7, n)
    truth = theta - theta.mean()
    i = rng.integers(0, n, (reps, m))
    j = (i + rng.integers(1, n, (reps, m))) % n
    win = rng.random((reps, m)) < 1 / (1 + np.exp(theta[j] - theta[i]))
    w, lo = np.where(win, i, j), np.where(win, j, i)
    group = np.repeat(np.arange(reps), m)  # 300 replicate experiments, one batched fit
    fit = bt_fit(n, w.ravel(), lo.ravel(), group=group, prior=0.0)
    inside = (fit.ci_low <= np.tile(truth, reps)) & (np.tile(truth, reps) <= fit.ci_high)
    assert 0.92 <= inside.mean() <= 0.98


# --- Plackett-Luce ---------------------------------------------------------------------

@pytest.mark.parametrize("case", GOLDEN["plackett_luce"], ids=lambda c: f"prior={c['prior']}")
def test_pl_matches_golden_choix_mm_rankings(case):
    est = pl_strengths(GOLDEN["n_items"], GOLDEN["rankings"], prior=case["prior"])
    np.testing.assert_allclose(est, case["log_strength"], atol=1e-6)


@pytest.mark.parametrize("prior", [0.0, 0.5])
def test_pl_matches_choix_ilsr_rankings(prior):
    choix = pytest.importorskip("choix")
    n = GOLDEN["n_items"]
    ref = choix.ilsr_rankings(n, GOLDEN["rankings"], alpha=prior / n, tol=1e-12)
    est = pl_strengths(n, GOLDEN["rankings"], prior=prior)
    assert np.abs(est - (ref - ref.mean())).max() < 1e-4


def test_pl_with_two_item_rankings_is_bradley_terry():
    w, lo, _ = comparisons(3, 6, 200)
    pl = pl_fit(6, np.column_stack([w, lo]), prior=0.2)
    bt = bt_fit(6, w, lo, prior=0.2)
    np.testing.assert_allclose(pl.log_strength, bt.log_strength, atol=1e-10)
    np.testing.assert_allclose(pl.se, bt.se, atol=1e-10)
    assert pl.log_strength[0] == pytest.approx(bt.log_strength[0], abs=1e-10)


def test_pl_batched_equals_loop_and_se_matches_numerical():
    rng = np.random.default_rng(9)
    group = np.repeat(np.arange(40), 6)
    rankings = [rng.permutation(4)[: rng.integers(2, 5)] for _ in group]
    flat = pl_strengths_batched(group, 4, rankings, prior=0.3).reshape(40, 4)
    for g in range(40):
        mine = [r for r, gg in zip(rankings, group) if gg == g]
        np.testing.assert_allclose(flat[g], pl_strengths(4, mine, prior=0.3), atol=1e-8)
    n, ranks = GOLDEN["n_items"], GOLDEN["rankings"]
    fit = pl_fit(n, ranks, prior=0.0)

    def nll(theta):
        return -sum(theta[r[k]] - np.log(np.exp(theta[r[k:]]).sum())
                    for r in map(np.asarray, ranks) for k in range(len(r) - 1))

    h, eps, t0 = np.zeros((n, n)), 1e-4, fit.log_strength
    for i in range(n):
        for j in range(n):
            e_i, e_j = np.eye(n)[i] * eps, np.eye(n)[j] * eps
            h[i, j] = (nll(t0 + e_i + e_j) - nll(t0 + e_i - e_j) - nll(t0 - e_i + e_j)
                       + nll(t0 - e_i - e_j)) / (4 * eps**2)
    cov = np.linalg.inv(h + 1 / n) - 1 / n  # = pinv(h) on the sum-to-zero subspace
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(cov)), rtol=1e-4)


def test_pl_wrapper_from_rankings_and_from_scores():
    table = pd.DataFrame({"item_id": ["a", "a", "a", "b"],
                          "ranking": ["2,0,1", [2, 1, 0], (0, 2, 1), "1,0"]})
    pl = PlackettLuce(prior=0.1).fit(table)
    best = pl.strengths_[pl.strengths_["rank"] == 1].set_index("item_id")["response"]
    assert best.to_dict() == {"a": 2, "b": 1}
    base = {"critic": "c", "principle": "p", "mode": "score", "status": "ok",
            "principle_weight": 1.0}
    scores = pd.DataFrame([{**base, "item_id": "a", "order": str(r), "value": v}
                           for r, v in [(0, 3.0), (1, 1.0), (2, 9.0)]]
                          + [{**base, "item_id": "b", "critic": "d", "order": str(r),
                              "value": 5.0} for r in range(2)])
    with pytest.warns(AggregationWarning, match="tied scores"):
        from_scores = PlackettLuce(prior=0.1).fit(scores)
    order = from_scores.strengths_.sort_values("rank")["response"].tolist()
    assert order == [2, 0, 1]
    glob = PlackettLuce(scope="global").fit(pd.DataFrame({"ranking": [["x", "y", "z"],
                                                                       ["x", "z"]]}))
    assert glob.strengths_.index[0] == "x"


# --- wrappers --------------------------------------------------------------------------

def test_item_scope_recovers_the_best_response_with_confidence():
    theta = {f"q{k}": np.array([0.0, 2.0, -1.0, 0.5]) for k in range(3)}
    bt = BradleyTerry().fit(judgments(theta, critics=4))
    pref = bt.preferences_
    assert pref["best"].tolist() == [1, 1, 1] and pref["worst"].tolist() == [2, 2, 2]
    assert pref["confident"].all() and (pref["p_best_beats_runner_up"] > 0.7).all()
    cols = ["item_id", "response", "log_strength", "se", "ci_low", "ci_high", "component",
            "n_comparisons", "rank"]
    assert list(bt.strengths_.columns) == cols
    assert bt.n_comparisons_ == 3 * 4 * 12


def test_global_scope_entity_inputs_agree():
    rng = np.random.default_rng(2)
    theta = {f"q{k}": rng.normal(0, 1, 3) for k in range(8)}
    df = judgments(theta, soft=False)
    mapping = {(f"q{k}", r): f"model{(k + r) % 4}" for k in range(8) for r in range(3)}
    by_map = BradleyTerry(scope="global").fit(df, entity_of=mapping).strengths_
    by_fn = BradleyTerry(scope="global").fit(
        df, entity_of=lambda item, r: mapping[(item, r)]).strengths_
    table = pd.DataFrame([(i, r, e) for (i, r), e in mapping.items()],
                         columns=["item_id", "response", "entity"])
    bt = BradleyTerry(scope="global").fit(df, entity_of=table)
    pd.testing.assert_frame_equal(by_map, by_fn)
    pd.testing.assert_frame_equal(by_map, bt.strengths_)
    rows = judgments(theta, soft=False)
    shown = rows["order"].str.split(",", expand=True).astype(int)
    comp = pd.DataFrame({"left": [mapping[(i, a)] for i, a in zip(rows["item_id"], shown[0])],
                         "right": [mapping[(i, b)] for i, b in zip(rows["item_id"], shown[1])],
                         "value": rows["value"]})
    direct = BradleyTerry(scope="global").fit(comp).strengths_
    np.testing.assert_allclose(direct.loc[by_map.index, "log_strength"], by_map["log_strength"],
                               atol=1e-9)
    top, second = by_map.index[:2]
    assert 0.5 <= bt.p_win(top, second) <= 1


def test_errors_name_the_field_and_the_options():
    with pytest.raises(ValueError, match="'scope' must be 'item' or 'global'"):
        BradleyTerry(scope="prompt")
    with pytest.raises(ValueError, match="'ci' must be one of"):
        BradleyTerry(ci="laplace")
    df = judgments({"q": np.zeros(2)})
    with pytest.raises(ValueError, match="weight_by='w'"):
        BradleyTerry(weight_by="w").fit(df)
    with pytest.raises(ValueError, match="field 'order'"):
        BradleyTerry().fit(df.assign(order="1"))
    with pytest.raises(ValueError, match="lacks column"):
        BradleyTerry().fit(df.drop(columns="order"))
    with pytest.raises(ValueError, match="entity_of"):
        BradleyTerry(scope="global").fit(df)
    with pytest.raises(ValueError, match="'losers' has indices outside"):
        bt_strengths(3, [0, 1], [1, 3])


# --- invariance ------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), prior=st.sampled_from([0.0, 0.1, 1.0]))
def test_permuting_comparisons_changes_nothing(seed, prior):
    rng = np.random.default_rng(seed)
    w, lo, _ = comparisons(seed, 6, 80)
    v = rng.random(len(w))
    perm = rng.permutation(2 * len(w))
    wins, losses, wts = np.r_[w, lo], np.r_[lo, w], np.r_[v, 1 - v]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AggregationWarning)
        a = bt_fit(6, wins, losses, wts, prior=prior)
        b = bt_fit(6, wins[perm], losses[perm], wts[perm], prior=prior)
    np.testing.assert_allclose(a.log_strength, b.log_strength, atol=1e-8)
    np.testing.assert_allclose(a.se, b.se, atol=1e-8)
