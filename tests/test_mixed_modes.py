"""Pairwise, score and pass/fail critics side by side, end to end (issue 13 §6), and a property
test over random judgment tables through the Python API, the CLI and the exports."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.aggregate import METHODS, PanelRules, aggregate, agreement_summary
from oversight.cli import app
from oversight.constitution import builtin
from oversight.critics import Judgment
from oversight.panel import open_run, write_run
from oversight.report import Analysis, write_report
from oversight.store import JudgmentStore
from oversight.train import preference_frame

runner = CliRunner()


def shorter(ctx):
    a, b = ctx.responses
    return 0.8 if len(a) < len(b) else 0.3


def score_len(ctx):
    return {"8": 1.0} if len(ctx.responses[0]) < 12 else {"3": 1.0}


def passes_short(ctx):
    return "Yes" if len(ctx.responses[0]) < 12 else "No"


def items():
    return [Comparison(f"q{i}", ("short", "a much longer answer" + "!" * i), reference=0)
            for i in range(4)] + [Comparison("q-rev", ("a much longer answer", "short"),
                                             reference=1)]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    run = tmp_path_factory.mktemp("mixed")
    panel = Panel([
        Critic(builtin("helpfulness"), FunctionBackend(shorter, name="pw"), name="pw",
               principles=1),
        Critic(builtin("honesty"), FunctionBackend(score_len, name="sc"), name="sc",
               mode="score", principles=1),
        Critic(builtin("harmlessness"), FunctionBackend(passes_short, name="pf"), name="pf",
               mode="passfail", principles=1),
    ])
    return run, panel.judge(items(), store=run)


def test_summary_mean_p_a_is_a_probability(mixed):
    _, res = mixed
    s = res.summary()
    assert s["mean_p_a"].between(0, 1).all()
    assert s["mean_p_a"].tolist() == pytest.approx([0.75] * 4 + [0.25])  # pairwise only
    assert set(s.attrs["mean_p_a_left_out"]) == {"sc", "pf"}
    assert s["verdict"].tolist() == [0, 0, 0, 0, 1]  # all three critics vote


def test_agreement_and_position_statistics_cover_every_mode(mixed):
    _, res = mixed
    assert agreement_summary(res.judgments)["n_critics"] == 3
    ag = res.agreement().set_index("critic")
    assert ag["n"].tolist() == [5, 5, 5, 5] and ag["agreement"].tolist() == [1.0] * 4
    pf = res.position_flips().set_index("critic")
    assert pf.at["pw", "n_pairs"] == 5 and pf.at["pw", "flip_rate"] == 0.0
    assert math.isnan(pf.at["sc", "flip_rate"]) and pf.at["sc", "left_out"].startswith("score")
    assert pf.at["pf", "left_out"].startswith("passfail")


def test_report_calibration_and_every_method_on_a_mixed_panel(mixed, tmp_path):
    run, res = mixed
    a = Analysis.from_run(run, n_boot=5)
    cal = a.calibration()
    assert set(cal) == {"pw", "panel:vote"} and cal["pw"][2] == 5
    assert set(a.calibration_left_out) == {"sc", "pf"}
    assert a.position_bias.set_index("critic").at["sc", "left_out"] != ""
    assert write_report(a, tmp_path / "report.html").stat().st_size > 1000
    for method in METHODS:
        agg = res.aggregate(method)
        finals = agg.decisions["final"].tolist()
        assert finals == [0, 0, 0, 0, 1], (method, finals)
        prefs = agg.preferences(res.items)
        assert prefs["soft_label"].between(0, 1).all(), method
        if method == "bt":
            assert set(agg.left_out) == {"sc", "pf"}
        else:
            assert agg.left_out == {}
    assert len(preference_frame(run, method="ds")) == 5


# -- property: random tables ---------------------------------------------------------------
@st.composite
def tables(draw):
    n_items = draw(st.integers(1, 4))
    critics = ["c0", "c1", "c2"]
    rows = []
    its = []
    for i in range(n_items):
        k = draw(st.sampled_from([2, 2, 3]))
        its.append(Comparison(f"p{i}", tuple(f"r{i}-{r}" for r in range(k))))
        for c in critics:
            kind = "veto" if c == "c2" and draw(st.booleans()) else "soft"
            for a in range(k):
                for b in range(k):
                    if a == b or not draw(st.booleans()):
                        continue
                    status = draw(st.sampled_from(["ok", "ok", "ok", "abstain"]))
                    v = draw(st.sampled_from([0.0, 0.2, 0.5, 0.5, 0.7, 1.0]))
                    rows.append(Judgment(
                        item_id=its[-1].id, critic=c, fingerprint=f"fp-{c}", model="m",
                        constitution="k", constitution_hash="h", principle="p",
                        principle_kind=kind, principle_weight=1.0, template="t",
                        order=f"{a},{b}", mode="pairwise",
                        value=v if status == "ok" else None, status=status))
    return its, rows


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=tables(), method=st.sampled_from(METHODS))
def test_random_tables_decide_only_with_evidence_the_same_everywhere(tmp_path_factory, data,
                                                                     method):
    its, rows = data
    frame = pd.DataFrame([j.to_dict() for j in rows], columns=list(Judgment.__annotations__))
    rules = PanelRules(veto_critics=())
    agg = aggregate(frame, its, method=method, rules=rules,
                    **({"prior": 0.1} if method == "bt" else {}))
    ok_items = set(frame.loc[frame["status"] == "ok", "item_id"]) if len(frame) else set()
    for d in agg.decisions.itertuples():
        if isinstance(d.final, (int, np.integer)):
            assert d.item_id in ok_items or d.vetoed, d
        if d.item_id not in ok_items:
            assert d.undecided and not isinstance(d.final, (int, np.integer)) or d.vetoed
    prefs = agg.preferences(its)
    assert prefs["soft_label"].dropna().between(0, 1).all()
    decided = {d.item_id: int(d.final) for d in agg.decisions.itertuples()
               if isinstance(d.final, (int, np.integer)) and not d.veto_conflict}
    assert {i: int(c) for i, c in zip(prefs["item_id"], prefs["chosen_index"])} == decided
    # the same through a run directory: the CLI and the export read it back
    run = tmp_path_factory.mktemp("prop")
    with JudgmentStore(run) as db:
        db.put_items(its)
        for c in ("c0", "c1", "c2"):
            db.put_critic({"name": c, "fingerprint": f"fp-{c}", "weight": 1.0})
        db.put(rows)
    if not rows:
        return
    write_run(run, critics=[{"name": c, "fingerprint": f"fp-{c}"} for c in ("c0", "c1", "c2")],
              method=method, method_options={"prior": 0.1} if method == "bt" else {},
              rules=rules)
    try:
        open_run(run)
    except Exception as exc:  # only when no critic judged anything at all
        assert "no judgments" in str(exc)
        return
    out = run / "prefs.parquet"
    r = runner.invoke(app, ["aggregate", str(run), "--out", str(out)])
    assert r.exit_code == 0, r.output
    cli = pd.read_parquet(out)
    exp = preference_frame(run)
    for frame_ in (cli, exp):
        assert sorted(zip(frame_["item_id"], frame_["chosen_index"],
                          frame_["rejected_index"])) == sorted(
            zip(prefs["item_id"], prefs["chosen_index"], prefs["rejected_index"]))
