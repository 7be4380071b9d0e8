"""Voting, panel rules, flags and conservative fusion, with numbers and properties."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from oversight import Comparison
from oversight.aggregate import (
    Conservative,
    PanelRules,
    Vote,
    aggregate,
    calibrate,
    decide,
    disagreement_flags,
)
from oversight.critics import JUDGMENT_COLUMNS


def row(item, critic, order, value, principle="p", status="ok", kind="soft", weight=1.0,
        mode="pairwise"):
    d = dict.fromkeys(JUDGMENT_COLUMNS)
    d.update(item_id=item, critic=critic, fingerprint=critic, model="m", constitution=critic,
             constitution_hash="h", principle=principle, principle_kind=kind,
             principle_weight=weight, template="v1", order=order, mode=mode,
             value=None if status != "ok" else value, status=status, tokens=0, latency_s=0.0)
    return d


def table(rows):
    return pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)


def test_majority_and_weighted_vote_numbers():
    j = table([row("x", "c1", "0,1", 0.9), row("x", "c2", "0,1", 0.8),
               row("x", "c3", "0,1", 0.1)])
    maj = Vote(weighted=False).fit(j).results_.iloc[0]
    assert maj["label"] == 0 and math.isclose(maj["share"], 2 / 3)
    assert math.isclose(maj["p0"], (0.9 + 0.8 + 0.1) / 3)
    w = Vote(critic_weights={"c3": 3.0}).fit(j).results_.iloc[0]
    assert w["label"] == 1 and math.isclose(w["share"], 0.6)


def test_tie_is_reported_and_abstention_is_no_vote():
    j = table([row("x", "c1", "0,1", 0.9), row("x", "c2", "0,1", 0.2),
               row("y", "c1", "0,1", 0.5), row("z", "c1", "0,1", None, status="abstain")])
    res = Vote().fit(j).results_.set_index("item_id")
    assert res.loc["x", "label"] == "tie"
    assert res.loc["y", "label"] == "tie" and res.loc["y", "ties"] == 1
    assert res.loc["z", "label"] == "abstain" and res.loc["z", "n_ballots"] == 0


def test_principle_weights_shape_the_critic_ballot():
    j = table([row("x", "c1", "0,1", 0.9, principle="a", weight=1.0),
               row("x", "c1", "0,1", 0.2, principle="b", weight=3.0)])
    res = Vote().fit(j).results_.iloc[0]
    assert math.isclose(res["p0"], (0.9 + 3 * 0.2) / 4) and res["label"] == 1
    per_principle = Vote(unit="principle").fit(j).results_.iloc[0]
    assert per_principle["label"] == 1 and math.isclose(per_principle["share"], 0.75)


def test_decide_supermajority_and_entropy():
    winner, share, margin, ent = decide(np.array([[3.0, 1.0], [2.0, 2.0], [0.0, 0.0]]), 0.8)
    assert winner.tolist() == [-1, -1, -2]
    assert math.isclose(margin[0], 0.5) and math.isclose(ent[1], 1.0)


def test_veto_overrides_majority():
    j = table([row("x", "c1", "0,1", 0.9), row("x", "c2", "0,1", 0.9),
               row("x", "safety", "0,1", 0.3, kind="veto")])
    items = [Comparison("q", ("a", "b"))]
    j["item_id"] = items[0].id
    agg = aggregate(j, items)
    d = agg.decisions.iloc[0]
    assert d["label"] == 0 and d["final"] == 1 and d["veto_override"]
    assert d["vetoed"] == [0]


def test_opposing_vetoes_are_a_conflict():
    items = [Comparison("q", ("a", "b"))]
    j = table([row(items[0].id, "s1", "0,1", 0.9, kind="veto"),
               row(items[0].id, "s2", "0,1", 0.1, kind="veto")])
    d = aggregate(j, items).decisions.iloc[0]
    assert d["final"] == "contested" and d["veto_conflict"]
    assert aggregate(j, items).preferences(items).empty


def test_veto_critic_and_passfail_veto():
    items = [Comparison("q", ("a", "b"))]
    i = items[0].id
    j = table([row(i, "c1", "0,1", 0.9), row(i, "c2", "0,1", 0.9),
               row(i, "judge", "0", 0.2, mode="passfail")])
    d = aggregate(j, items, rules=PanelRules(veto_critics=("judge",))).decisions.iloc[0]
    assert d["final"] == 1 and d["vetoed"] == [0]


def test_quorum_and_supermajority():
    items = [Comparison("q", ("a", "b"))]
    i = items[0].id
    j = table([row(i, "c1", "0,1", 0.9), row(i, "c2", "0,1", 0.8), row(i, "c3", "0,1", 0.3),
               row(i, "c4", "0,1", None, status="abstain")])
    assert aggregate(j, items, rules=PanelRules(quorum=4)).decisions.iloc[0]["final"] \
        == "no_quorum"
    assert aggregate(j, items, rules=PanelRules(quorum=3)).decisions.iloc[0]["final"] == 0
    sm = aggregate(j, items, rules=PanelRules(supermajority=0.75)).decisions.iloc[0]
    assert sm["final"] == "no_supermajority"


def test_flags_split_position_and_cycle():
    a, b = Comparison("q", ("a", "b")), Comparison("r", ("x", "y", "z"))
    j = table([
        row(a.id, "c1", "0,1", 0.9), row(a.id, "c1", "1,0", 0.2),   # consistent, prefers 0
        row(a.id, "c2", "0,1", 0.8), row(a.id, "c2", "1,0", 0.9),   # flips with order
        row(a.id, "c3", "0,1", 0.1), row(a.id, "c3", "1,0", 0.9),   # consistent, prefers 1
        # a rock-paper-scissors K-way item: 0 > 1, 1 > 2, 2 > 0
        row(b.id, "c1", "0,1", 0.9), row(b.id, "c1", "1,2", 0.9), row(b.id, "c1", "0,2", 0.1),
    ])
    f = disagreement_flags(j, [a.id, b.id], PanelRules()).set_index("item_id")
    assert f.loc[a.id, "split"] and f.loc[a.id, "n_position_flips"] == 1
    assert f.loc[a.id, "position_inconsistent"]
    assert f.loc[b.id, "cycle"] and not f.loc[a.id, "cycle"]


def test_conservative_mean_var_and_min():
    j = table([row("x", "c1", "0,1", 0.9), row("x", "c2", "0,1", 0.5),
               row("x", "c3", "0,1", 0.4)])
    s = Conservative(lam=2.0).fit(j).scores_.set_index("response")
    vals = np.array([0.9, 0.5, 0.4])
    assert math.isclose(s.loc[0, "score"], vals.mean() - 2.0 * vals.var())
    m = Conservative(kind="min").fit(j).scores_.set_index("response")
    assert math.isclose(m.loc[0, "score"], 0.4) and math.isclose(m.loc[1, "score"], 0.1)


def test_calibration_temperature_and_clamp():
    p = np.array([0.1, 0.5, 0.9])
    assert np.allclose(calibrate(p, clamp=(0.4, 0.6)), [0.4, 0.5, 0.6])
    hot = calibrate(p, temperature=2.0)
    assert math.isclose(hot[2], 1 / (1 + math.exp(-math.log(9) / 2)))


def test_preferences_keep_provenance_and_filters():
    items = [Comparison("q", ("good", "bad"), reference=0), Comparison("r", ("u", "v"))]
    j = table([row(items[0].id, "c1", "0,1", 0.9), row(items[0].id, "c2", "0,1", 0.7),
               row(items[1].id, "c1", "0,1", 0.9), row(items[1].id, "c2", "0,1", 0.1)])
    agg = aggregate(j, items)
    prefs = agg.preferences(items)
    assert list(prefs["chosen"]) == ["good"] and list(prefs["rejected"]) == ["bad"]
    assert math.isclose(prefs["soft_label"][0], 0.8) and prefs["margin"][0] == 1.0
    assert prefs["critics"][0] == "c1,c2" and "c1:p" in prefs["principles"][0]
    assert agg.preferences(items, min_margin=1.1).empty


# -- properties ---------------------------------------------------------------------------
probs = st.floats(0.01, 0.99).filter(lambda p: abs(p - 0.5) > 1e-6)
judgment_lists = st.lists(st.tuples(st.sampled_from(["i1", "i2", "i3"]),
                                    st.sampled_from(["c1", "c2", "c3", "c4"]),
                                    st.sampled_from(["0,1", "1,0"]), probs,
                                    st.sampled_from(["p", "q"])),
                          min_size=1, max_size=30,
                          unique_by=lambda t: (t[0], t[1], t[2], t[4]))


def _frame(ts, kinds=None):
    return table([row(i, c, o, v, principle=p, kind=(kinds or {}).get(c, "soft"))
                  for i, c, o, v, p in ts])


@settings(max_examples=40, deadline=None)
@given(judgment_lists, st.randoms())
def test_permuting_judgments_changes_nothing(ts, rnd):
    j = _frame(ts)
    shuffled = j.sample(frac=1.0, random_state=rnd.randint(0, 10**6)).reset_index(drop=True)
    for method in ("vote", "majority", "conservative", "bt", "ds"):
        a = aggregate(j, method=method).decisions.set_index("item_id").sort_index()
        b = aggregate(shuffled, method=method).decisions.set_index("item_id").sort_index()
        assert a["final"].tolist() == b["final"].tolist()
        assert np.allclose(a["margin"], b["margin"], atol=1e-8)
        assert np.allclose(a["p0"], b["p0"], equal_nan=True, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(judgment_lists, st.sampled_from(["vote", "majority", "conservative", "bt", "ds"]))
def test_veto_is_never_overridden(ts, method):
    j = _frame(ts, kinds={"c4": "veto"})
    agg = aggregate(j, method=method)
    vetoed = agg.decisions.set_index("item_id")["vetoed"]
    for item, final in agg.decisions.set_index("item_id")["final"].items():
        if isinstance(final, (int, np.integer)):
            assert final not in vetoed[item]


@settings(max_examples=40, deadline=None)
@given(judgment_lists, st.sampled_from(["i1", "i2", "i3"]), st.sampled_from(["c1", "c5"]))
def test_adding_an_abstention_changes_no_vote(ts, item, critic):
    j = _frame(ts)
    extra = table([row(item, critic, "0,1", None, principle="zz", status="abstain")])
    with_abstain = pd.concat([j, extra], ignore_index=True)
    a = Vote().fit(j).results_.set_index("item_id")
    b = Vote().fit(with_abstain).results_.set_index("item_id").reindex(a.index)
    assert a["label"].tolist() == b["label"].tolist()
    assert np.allclose(a["share"], b["share"])
