"""Tests aimed at the survivors of the sampled mutation run in issue 13 §9: each asserts a number
or a label that a plausible fault (inverted labels, swapped orders, a flag that fires where it
should not, a function returning nothing) would change."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.aggregate import Conservative, Vote, aggregate, conservative_scores
from oversight.constitution import builtin
from oversight.critics import JUDGMENT_COLUMNS
from oversight.panel import open_run


def row(item, critic, order, value, mode="pairwise", kind="soft"):
    d = dict.fromkeys(JUDGMENT_COLUMNS)
    d.update(item_id=item, critic=critic, fingerprint=critic, model="m", constitution=critic,
             constitution_hash="h", principle="p", principle_kind=kind, principle_weight=1.0,
             template="v1", order=order, mode=mode, value=value, status="ok", tokens=0,
             latency_s=0.0)
    return d


def table(rows):
    return pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)


def test_conservative_labels_the_best_response_and_ties_only_when_equal():
    j = table([row("x", "a", "0,1", 0.9), row("x", "b", "0,1", 0.7),
               row("y", "a", "0,1", 0.2), row("y", "b", "0,1", 0.4),
               row("z", "a", "0,1", 0.5), row("z", "b", "0,1", 0.5)])
    res = Conservative(lam=1.0).fit(j).results_.set_index("item_id")
    assert res.loc["x", "label"] == 0 and res.loc["y", "label"] == 1
    assert res.loc["z", "label"] == "tie"
    # x: supports of response 0 are 0.9, 0.7 -> mean 0.8 - var 0.01 = 0.79; response 1: 0.2
    assert res.loc["x", "p0"] == pytest.approx(0.79)
    assert res.loc["x", "margin"] == pytest.approx(0.79 - (0.2 - 0.01))


def test_conservative_scores_numbers():
    v = np.array([[0.9, 0.2], [0.7, np.nan]])
    assert conservative_scores(v, lam=1.0).tolist() == pytest.approx([0.8 - 0.01, 0.2])
    assert conservative_scores(v, kind="min").tolist() == pytest.approx([0.7, 0.2])
    with pytest.raises(ValueError, match="kind='max'"):
        conservative_scores(v, kind="max")


def test_kway_vote_counts_each_response():
    rows = []
    for c, best in (("a", 2), ("b", 2), ("c", 1)):
        for lo, hi in ((0, 1), (0, 2), (1, 2)):
            rows.append(row("x", c, f"{lo},{hi}", 0.1 if best in (lo, hi) and best == hi
                            else 0.9 if best == lo else 0.5))
    res = Vote(weighted=False).fit(table(rows)).results_.iloc[0]
    assert res["label"] == 2 and res["votes_2"] == 2 and res["votes_1"] == 1
    assert res["share"] == pytest.approx(2 / 3)


def test_aggregate_without_items_decides_every_judged_item():
    j = table([row("x", "a", "0,1", 0.8), row("y", "a", "0,1", 0.3)])
    d = aggregate(j).decisions.set_index("item_id")
    assert d["final"].to_dict() == {"x": 0, "y": 1}
    assert d["p0"].tolist() == pytest.approx([0.8, 0.3])


def test_support_from_score_and_passfail_and_orders():
    items = [Comparison("q", ("short", "a much longer answer"))]

    def first_wins(ctx):
        return 0.9  # always prefers whatever is shown first

    panel = Panel([
        Critic(builtin("helpfulness"), FunctionBackend(first_wins, name="fw"), name="fw",
               principles=1),
        Critic(builtin("honesty"), FunctionBackend(lambda c: {"8": 1.0} if
                                                   len(c.responses[0]) < 10 else {"3": 1.0},
                                                   name="sc"), name="sc", mode="score",
               principles=1),
        Critic(builtin("harmlessness"), FunctionBackend(lambda c: "Yes" if
                                                        len(c.responses[0]) < 10 else "No",
                                                        name="pf"), name="pf", mode="passfail",
               principles=1)])
    res = panel.judge(items)
    key = lambda c: (items[0].id, c)  # noqa: E731
    sup = res.support()
    assert sup[key("sc")] == pytest.approx([8.0, 3.0])
    assert sup[key("pf")] == pytest.approx([1.0, 0.0])
    assert sup[key("fw")] == pytest.approx([0.5, 0.5])  # 0.9 first, 0.1 swapped
    first, swapped = res.support("forward"), res.support("reverse")
    assert first[key("fw")] == pytest.approx([0.9, 0.1])
    assert swapped[key("fw")] == pytest.approx([0.1, 0.9])
    assert key("sc") not in first  # a score judgment has no shown order
    flips = res.position_flips().set_index("critic")
    assert flips.at["fw", "flip_rate"] == 1.0


def test_cycle_flag_fires_only_on_intransitive_items():
    rows = [row("cyc", "a", "0,1", 0.9), row("cyc", "a", "1,2", 0.9),
            row("cyc", "a", "0,2", 0.1),  # 0 > 1 > 2 > 0
            row("lin", "a", "0,1", 0.9), row("lin", "a", "1,2", 0.9),
            row("lin", "a", "0,2", 0.9)]
    d = aggregate(table(rows)).decisions.set_index("item_id")
    assert bool(d.at["cyc", "cycle"]) and not bool(d.at["lin", "cycle"])


def test_split_flag_needs_confident_critics_on_both_sides():
    j = table([row("s", "a", "0,1", 0.9), row("s", "b", "0,1", 0.1),
               row("n", "a", "0,1", 0.9), row("n", "b", "0,1", 0.45)])
    d = aggregate(j).decisions.set_index("item_id")
    assert bool(d.at["s", "split"]) and not bool(d.at["n", "split"])


def test_open_run_keeps_which_critics_are_vetoes(tmp_path):
    def yes(ctx):
        return 0.8

    panel = Panel([Critic(builtin("helpfulness"), FunctionBackend(yes, name="a"), name="soft",
                          principles=1),
                   Critic(builtin("harmlessness"), FunctionBackend(yes, name="b"), name="hard",
                          principles=1, veto=True)])
    panel.judge([Comparison("q", ("a", "b"))], store=tmp_path / "run")
    run = open_run(tmp_path / "run")
    assert run.rules.veto_critics == ("hard",)
    assert [c["veto"] for c in run.critics] == [False, True]
    assert not math.isnan(run.aggregate().decisions["p0"].iloc[0])


def test_ds_never_labels_a_response_an_item_does_not_have():
    """Found by the property test: Dawid-Skene's classes span the largest item, so a
    two-response item beside three-response items got label 2 and the export crashed."""
    from oversight import Comparison

    two = Comparison("p0", ("a", "b"))
    k1, k2 = Comparison("p1", ("a", "b", "c")), Comparison("p2", ("x", "y", "z"))
    j = table([
        row(two.id, "c0", "1,0", 0.0),
        row(two.id, "c1", "1,0", 0.5),
        row(two.id, "c2", "0,1", 0.0),
        row(two.id, "c2", "1,0", 1.0),
        row(k1.id, "c0", "0,1", 0.7),
        row(k1.id, "c0", "0,2", 0.0),
        row(k1.id, "c0", "1,0", 0.0),
        row(k1.id, "c0", "2,1", 0.2),
        row(k1.id, "c1", "2,0", 0.0),
        row(k1.id, "c2", "0,1", 0.0),
        row(k1.id, "c2", "1,2", 1.0),
        row(k2.id, "c0", "0,1", 0.0),
        row(k2.id, "c0", "0,2", 0.0),
        row(k2.id, "c0", "1,0", 1.0),
        row(k2.id, "c1", "0,1", 0.0),
        row(k2.id, "c1", "0,2", 0.0),
        row(k2.id, "c1", "1,0", 0.7),
        row(k2.id, "c1", "2,0", 0.0),
        row(k2.id, "c2", "0,1", 0.7),
        row(k2.id, "c2", "0,2", 0.0),
        row(k2.id, "c2", "1,2", 0.0),
        row(k2.id, "c2", "2,0", 0.0),
        row(k2.id, "c2", "2,1", 0.0),
    ])
    agg = aggregate(j, [two, k1, k2], method="ds")
    final = agg.decisions.set_index("item_id")["final"]
    assert final[two.id] in (0, 1, "tie", "undecided", "abstain")
    prefs = agg.preferences([two, k1, k2])
    assert set(prefs["chosen"]) <= {"a", "b", "c", "x", "y", "z"}
