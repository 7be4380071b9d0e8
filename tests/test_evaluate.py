"""`evaluate`: agreement, baselines, position consistency and length control, with numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.aggregate._quality import (
    agreement,
    baseline_verdicts,
    length_control,
    logistic_fit,
    wilson_interval,
)
from oversight.constitution import builtin
from oversight.report import Analysis, evaluate


def _items(n: int = 60, seed: int = 1) -> list[Comparison]:
    """Reference position random; the chosen response is the longer one in 2/3 of items."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ref = int(rng.integers(0, 2))
        good, bad = f"good answer {i}", f"bad answer {i}"
        if i % 3:
            good += " with more detail" * int(rng.integers(1, 4))
        else:
            bad += " padded out" * int(rng.integers(2, 5))
        responses = (good, bad) if ref == 0 else (bad, good)
        out.append(Comparison(f"question {i}", responses, reference=ref,
                              meta={"topic": "even" if i % 2 == 0 else "odd"}))
    return out


def _longer(ctx):
    a, b = ctx.responses
    return 0.9 if len(a) > len(b) else 0.1


def _oracle(ctx):  # a test-only cheat: reads the reference the critic is never shown
    return 0.8 if ctx.shown[0] == ctx.item.reference else 0.2


def _first(ctx):
    return 0.7


def _run(items):
    c = builtin("harmlessness")
    panel = Panel([Critic(c, FunctionBackend(f, name=n), name=n, principles=1)
                   for n, f in (("length_judge", _longer), ("oracle", _oracle), ("first", _first))])
    return panel.judge(items)


def test_pure_functions_against_hand_numbers():
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # Wilson (1927), z = 1.96
    a = agreement([0, 1, -1, np.nan, 0], [0, 0, 1, 1, 0])
    assert a["n"] == 4 and a["agreement"] == pytest.approx(2.5 / 4)
    base = baseline_verdicts([10, 3, 5], [4, 8, 5])
    assert base["longer"].tolist() == [0, 1, -1] and base["shorter"].tolist() == [1, 0, -1]
    assert base["first shown"].tolist() == [0, 0, 0]


def test_logistic_fit_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = (rng.random(500) < 1 / (1 + np.exp(-(0.3 + 1.5 * x)))).astype(float)
    b0, b1 = logistic_fit(y, x, l2=0.0)
    ref = LogisticRegression(C=1e9, max_iter=1000).fit(x[:, None], y)
    assert b0 == pytest.approx(ref.intercept_[0], abs=1e-3)
    assert b1 == pytest.approx(ref.coef_[0, 0], abs=1e-3)


def test_length_control_removes_length_from_a_length_judge():
    rng = np.random.default_rng(3)
    n = 4000
    len0, len1 = rng.integers(10, 200, n), rng.integers(10, 200, n)
    ref = rng.integers(0, 2, n).astype(float)
    # a judge that is right 70% of the time when lengths are equal and otherwise follows
    # length: agreement rises with chosen-longer; at dlen = 0 it is 0.70
    d_ch = np.where(ref == 0, len0 - len1, len1 - len0)
    sigma = float(np.std(len0 - len1))
    p_right = 1 / (1 + np.exp(-(np.log(0.7 / 0.3) + 2.0 * np.tanh(d_ch / sigma))))
    right = rng.random(n) < p_right
    verdict = np.where(right, ref, 1 - ref)
    lc = length_control(verdict, ref, len0, len1)
    assert lc["lc_agreement"] == pytest.approx(0.70, abs=0.03)
    assert lc["length_coef"] > 1.0
    raw = agreement(verdict, ref)["agreement"]
    assert abs(raw - 0.70) > 0.01 or lc["length_share"] > 0.6


def test_evaluate_run_table_and_bench_line():
    items = _items()
    res = _run(items)
    ev = evaluate(Analysis.from_result(res))
    t = ev.overall.set_index("name")
    ref = np.array([it.reference for it in items])
    len0 = np.array([len(it.responses[0]) for it in items])
    len1 = np.array([len(it.responses[1]) for it in items])
    chosen_longer = np.where(ref == 0, len0 > len1, len1 > len0)
    # baselines on the same items, computed by hand
    assert t.at["longer", "agreement"] == pytest.approx(chosen_longer.mean())
    assert t.at["shorter", "agreement"] == pytest.approx(1 - chosen_longer.mean())
    assert t.at["first shown", "agreement"] == pytest.approx((ref == 0).mean())
    # the length critic equals the longer baseline, follows length fully, and is marked
    crit = ev.overall[ev.overall["kind"] == "critic"].set_index("name")
    assert crit.at["length_judge", "agreement"] == pytest.approx(chosen_longer.mean())
    assert crit.at["length_judge", "length_share"] == pytest.approx(1.0)
    assert crit.at["length_judge", "length_coef"] > 1.0
    assert not crit.at["length_judge", "clears_baseline"]
    assert crit.at["length_judge", "position_consistency"] == pytest.approx(1.0)
    # the oracle agrees fully and clears the baseline; length control keeps it near 1
    assert crit.at["oracle", "agreement"] == 1.0 and crit.at["oracle", "clears_baseline"]
    assert crit.at["oracle", "lc_agreement"] > 0.95
    # the position-only critic: P(first) 0.7, never consistent, ties after the swap
    assert crit.at["first", "mean_p_first"] == pytest.approx(0.7)
    assert crit.at["first", "position_consistency"] == 0.0
    assert crit.at["first", "agreement"] == pytest.approx(0.5)
    # subsets: topic values and the RewardBench split
    subsets = set(ev.table["subset"])
    assert {"all", "topic=even", "topic=odd", "chosen longer", "chosen shorter"} <= subsets
    cl = ev.table[(ev.table["subset"] == "chosen longer") & (ev.table["name"] == "length_judge")]
    assert cl["agreement"].iloc[0] == 1.0 and cl["n"].iloc[0] == chosen_longer.sum()
    line = ev.bench_line()
    assert line.startswith("BENCH workload=evaluate ")
    for key in ("best_critic=oracle:1.000", "panel=", "best_baseline=longer:", "lc_panel="):
        assert key in line
    h = ev.headline()
    assert not math.isnan(h["lc_panel"])


def test_evaluate_without_labels_names_the_fix():
    items = [Comparison(it.prompt, it.responses) for it in _items(6)]
    from oversight.errors import OversightError

    with pytest.raises(OversightError, match="no reference labels"):
        evaluate(Analysis.from_result(_run(items)))


def test_demo_pairs_are_labelled_and_length_balanced():
    from oversight.data import demo_pairs_path, load_comparisons

    items = list(load_comparisons(demo_pairs_path()))
    assert len(items) == 24 and all(it.reference is not None for it in items)
    better_shorter = sum(len(it.responses[it.reference]) < len(it.responses[1 - it.reference])
                         for it in items)
    assert better_shorter == 12
    assert sum(it.reference == 0 for it in items) == 12


def test_demo_prints_agreement_baselines_and_a_verdict():
    from rich.console import Console

    from oversight.cli._demo import _print_quality
    from oversight.data import demo_pairs_path, load_comparisons

    items = list(load_comparisons(demo_pairs_path()))

    def shorter(ctx):
        a, b = ctx.responses
        return 0.9 if len(a) < len(b) else 0.1

    panel = Panel([Critic(builtin("harmlessness"), FunctionBackend(shorter, name="s"),
                          name="shorty", principles=1)])
    console = Console(record=True, width=300)
    _print_quality(console, panel.judge(items))
    text = console.export_text()
    assert "shorty 0.50 (" in text and "prefer shorter 0.50" in text
    assert "Verdict: the panel does not beat the best length baseline" in text


def test_report_has_the_quality_section_with_marks():
    from oversight.report import render_html

    page = render_html(Analysis.from_result(_run(_items(30))), contested=2)
    assert "Judge quality against reference labels" in page
    assert "BENCH workload=evaluate" in page
    assert "DOES NOT CLEAR" in page and ">clears<" in page  # length judge vs oracle


def test_cli_evaluate_prints_table_marks_and_bench_line(tmp_path):
    from typer.testing import CliRunner

    from oversight.cli._app import app

    items = _items(30)
    c = builtin("harmlessness")
    Panel([Critic(c, FunctionBackend(f, name=n), name=n, principles=1)
           for n, f in (("length_judge", _longer), ("oracle", _oracle))]).judge(
        items, store=tmp_path / "judgments.sqlite")
    out = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--out",
                                   str(tmp_path / "q.csv")])
    assert out.exit_code == 0, out.output
    assert "does not clear" in out.output and "baseline: shorter" in out.output
    last = out.output.strip().splitlines()[-1]
    assert last.startswith("BENCH workload=evaluate n=30 best_critic=oracle:1.000 ")
    import pandas as pd

    assert set(pd.read_csv(tmp_path / "q.csv")["subset"]) >= {"all", "chosen longer"}
    empty = tmp_path / "nolabels"
    Panel([Critic(c, FunctionBackend(_first, name="f"), name="f", principles=1)]).judge(
        [Comparison(it.prompt, it.responses) for it in items[:3]],
        store=empty / "judgments.sqlite")
    bad = CliRunner().invoke(app, ["evaluate", str(empty)])
    assert bad.exit_code == 2 and "no reference labels in this run" in bad.output


def test_partial_run_decisions_stay_indices_and_yield_preferences():
    from oversight.aggregate import aggregate

    items = _items(6)
    oracle = Critic(builtin("harmlessness"), FunctionBackend(_oracle, name="o"), name="o",
                    principles=1)
    res = Panel([oracle]).judge(items[:4])  # two items never judged: a run stopped early
    agg = aggregate(res.judgments, items)
    finals = agg.decisions.set_index("item_id")["final"]
    assert [finals[it.id] for it in items[:4]] == [it.reference for it in items[:4]]
    assert all(isinstance(finals[it.id], (int, np.integer)) for it in items[:4])
    assert len(agg.preferences(items)) == 4
