"""Reports and the human-review loop, on a synthetic run with planted critic behaviour.

Three scripted critics judge 24 pairs in both orders:
- `fair` prefers the reference response with P = 0.8 in either order (order-blind);
- `contrarian` agrees with `fair` except on the 8 "hard" items, where it prefers the other;
- `biased` always says P(first shown is better) = 0.9 (pure position bias: a tie once swapped).
So kappa(fair, contrarian) = (2/3 - 1/2) / (1/2) = 1/3 (balanced labels), only the hard items
are `split`, and the numbers below follow from the construction.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.cli import app
from oversight.constitution import builtin
from oversight.errors import OversightError
from oversight.report import Analysis, export_queue, import_labels, write_report
from oversight.report import expected_calibration_error as ece_of
from oversight.store import JudgmentStore

N, HARD = 24, 8


def _items() -> list[Comparison]:
    out = []
    for i in range(N):
        hard = i >= N - HARD
        ref = i % 2
        good, bad = f"good answer {i}", f"poor answer {i}"
        responses = (good, bad) if ref == 0 else (bad, good)
        out.append(Comparison(f"{'hard ' if hard else ''}question {i}", responses,
                              reference=ref))
    return out


def _prefers_good(ctx, p: float) -> float:
    first, _ = ctx.responses
    return p if first.startswith("good") else 1 - p


def fair(ctx):
    return _prefers_good(ctx, 0.8)


def contrarian(ctx):
    p = _prefers_good(ctx, 0.8)
    return 1 - p if ctx.item.prompt.startswith("hard") else p


def biased(ctx):
    return 0.9


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    cons = builtin("helpfulness")  # soft principles only: no veto flags in the planted run
    panel = Panel([Critic(cons, FunctionBackend(f, name=f.__name__), name=f.__name__,
                          principles=2, seed=k) for k, f in enumerate((fair, contrarian,
                                                                       biased))])
    panel.judge(_items(), store=path)
    return path


@pytest.fixture(scope="module")
def analysis(run_dir):
    return Analysis.from_run(run_dir, n_boot=20)


def test_ece_golden_and_extremes():
    # conf 0.9 right, 0.8 wrong, 0.6 right, 0.6 wrong -> 1/4*.1 + 1/4*.8 + 2/4*.1 = 0.275
    ece, bins = ece_of([0.9, 0.8, 0.6, 0.4], [0, 1, 0, 0])
    assert ece == pytest.approx(0.275)
    assert bins["n"].sum() == 4 and bins.loc[2, "accuracy"] == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = np.where(rng.uniform(0, 1, p.size) < p, 0, 1)  # P(response 0 better) = p exactly
    assert ece_of(p, y)[0] < 0.02
    overconfident = np.where(p > 0.5, 0.99, 0.01)
    assert ece_of(overconfident, y)[0] > 0.2
    with pytest.raises(ValueError, match="reference must be 0 or 1"):
        ece_of([0.5], [2])


def test_planted_statistics(analysis):
    kappa, n = analysis.kappa
    assert kappa.at["fair", "contrarian"] == pytest.approx(1 / 3)
    assert n.at["fair", "contrarian"] == N
    assert n.at["fair", "biased"] == 0 and math.isnan(kappa.at["fair", "biased"])
    pb = analysis.position_bias.set_index("critic")
    assert pb.at["biased", "bias"] == pytest.approx(0.4)
    assert pb.at["biased", "flip_rate"] == pytest.approx(1.0)
    assert pb.at["fair", "bias"] == pytest.approx(0.0, abs=1e-9)
    assert pb.at["fair", "flip_rate"] == 0.0
    assert pb.at["fair", "p_first_forward"] == pytest.approx(0.5)
    agree = analysis.reference_agreement().set_index("critic")
    assert agree.at["fair", "agreement"] == 1.0 and agree.at["fair", "n"] == N
    assert agree.at["contrarian", "agreement"] == pytest.approx(16 / 24)
    assert agree.at["biased", "agreement"] == pytest.approx(0.5)  # all ties: half credit
    cal = analysis.calibration()
    assert cal["fair"][0] == pytest.approx(0.2)  # always P = 0.8, always right
    assert analysis.flag_counts["split"] == HARD
    top = analysis.contested(HARD + 2)
    assert top["split"].head(HARD).all() and not top["split"].iloc[HARD]
    dis = analysis.principle_disagreement
    fair_rows = dis[dis["critic"] == "fair"]
    # fair vs contrarian differ on the 8 hard items; biased casts no vote (tie)
    assert fair_rows["disagree"].sum() / fair_rows["n"].sum() == pytest.approx(HARD / N)
    s, why = analysis.strengths
    assert s is None and "two responses" in why


def test_plots_are_figures(run_dir, analysis):
    from oversight.report import Plots

    plots = Plots(analysis)
    for name in ("agreement", "principles", "position_bias", "strengths", "reliability",
                 "conflicts", "margins", "reference_agreement", "calibration"):
        fig = getattr(plots, name)()
        assert isinstance(fig, Figure) and fig.axes, name
    heat = plots.agreement().axes[0]
    assert [t.get_text() for t in heat.get_yticklabels()] == ["fair", "contrarian", "biased"]


def test_panel_result_plot_accessor(scripted_backend, pairs, harmlessness):
    result = Panel([Critic(harmlessness, scripted_backend, name="a", principles=1),
                    Critic(harmlessness, scripted_backend, name="b", principles=1, seed=3)]
                   ).judge(pairs)
    fig = result.plot.agreement()
    assert isinstance(fig, Figure)
    assert result.plot is result.plot  # computed once
    assert len(result.plot.analysis.items) == len(pairs)


def test_report_html_is_self_contained(tmp_path, analysis):
    path = write_report(analysis, tmp_path)
    html = path.read_text()
    assert path.name == "report.html"
    assert html.count('src="data:image/png;base64,') == 9  # 7 sections + agreement + calib
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "Content-Security-Policy" in html
    assert html.count('class="item"') == 10
    assert "hard question" in html  # a contested item's prompt is shown
    # The caption states the resamples actually drawn (the fixture's n_boot=20), not a constant.
    assert "CIs from 20 bootstrap resamples of items" in html and "200 bootstrap" not in html


def test_kway_and_global_strengths(scripted_backend, harmlessness):
    def longest(ctx):
        a, b = ctx.responses
        return 0.9 if len(a) > len(b) else 0.1

    items = [Comparison(f"q{i}", ("x", "xx" * (i + 1), "xxx" * (i + 1)),
                        meta={"models": ["small", "mid", "big"]}) for i in range(4)]
    panel = Panel([Critic(harmlessness, FunctionBackend(longest), name="len", principles=1)])
    res = panel.judge(items)
    s, why = Analysis.from_result(res, n_boot=0).strengths
    assert why.startswith("global")
    order = list(s.sort_values("log_strength", ascending=False)["entity"])
    assert order == ["big", "mid", "small"]
    assert (s["ci_low"] < s["log_strength"]).all() and (s["log_strength"] < s["ci_high"]).all()
    plain = [Comparison(it.prompt, it.responses) for it in items]
    s2, why2 = Analysis.from_result(panel.judge(plain), n_boot=0).strengths
    assert why2.startswith("per item") and len(s2) == 3 * len(items)


def test_review_roundtrip_jsonl(tmp_path, run_dir):
    run = tmp_path / "run"
    run.mkdir()
    (run / "judgments.sqlite").write_bytes((run_dir / "judgments.sqlite").read_bytes())
    a = Analysis.from_run(run, n_boot=0)
    queue, n = export_queue(a, tmp_path / "queue.jsonl", ["split", "veto_conflict"])
    recs = [json.loads(line) for line in queue.read_text().splitlines()]
    assert n == len(recs) == HARD
    by_id = {it.id: it for it in a.items}
    for r in recs:
        assert r["label"] is None and r["flags"] == ["split", "position_inconsistent"]
        assert {c["critic"] for c in r["critics"]} == {"fair", "contrarian", "biased"}
        assert all(len(c["judgments"]) == 4 for c in r["critics"])  # 2 principles x 2 orders
        r["label"] = "AB"[by_id[r["item_id"]].reference]  # the human agrees with the data
        r["reviewer"] = "ann"
    queue.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert import_labels(run, queue) == {"ann": HARD}

    b = Analysis.from_run(run, n_boot=0)
    assert len(b.human_labels) == HARD and "human" not in b.critic_names
    assert len(b.judgments) == len(a.judgments)  # the human never joins the panel
    human = b.reference_agreement("human").set_index("critic")
    assert human.at["fair", "agreement"] == 1.0 and human.at["fair", "n"] == HARD
    assert human.at["contrarian", "agreement"] == 0.0
    ref = b.reference_agreement().set_index("critic")
    assert ref.at["human", "agreement"] == 1.0 and ref.at["human", "n"] == HARD
    assert "human" in b.kappa[0].index
    res = CliRunner().invoke(app, ["aggregate", str(run)])  # humans never vote there either
    assert res.exit_code == 0 and f"{N} items, 3 critics" in res.output
    rel = b.reliability.set_index("critic")
    # semi-supervised Dawid-Skene: human gold on the hard items sides with `fair`
    assert rel.at["fair", "reliability_human"] > 0.9
    assert rel.at["contrarian", "reliability_human"] < 0.75

    # relabelling replaces the reviewer's earlier rows for that item
    first = recs[0]
    first["label"] = "tie"
    queue.write_text(json.dumps(first) + "\n")
    import_labels(run, queue)
    with JudgmentStore(run) as db:
        rows = [j for j in db.judgments(fingerprint="human:ann") if j.item_id == first["item_id"]]
    assert [(j.order, j.value) for j in rows] == [("0,1", 0.5)]
    assert first["item_id"] not in Analysis.from_run(run, n_boot=0).human_labels


def test_review_label_studio_roundtrip(tmp_path, run_dir):
    run = tmp_path / "run"
    run.mkdir()
    (run / "judgments.sqlite").write_bytes((run_dir / "judgments.sqlite").read_bytes())
    a = Analysis.from_run(run, n_boot=0)
    path, n = export_queue(a, tmp_path / "tasks.json", ["split"], fmt="label-studio",
                           blind=True)
    tasks = json.loads(path.read_text())
    config = (tmp_path / "tasks.label_config.xml").read_text()
    assert n == len(tasks) == HARD and "$response_B" in config and "critics" not in config
    assert set(tasks[0]["data"]) == {"item_id", "prompt", "flags", "response_A", "response_B"}
    by_id = {it.id: it for it in a.items}
    for k, t in enumerate(tasks):  # what a Label Studio JSON export looks like
        choice = "AB"[1 - by_id[t["data"]["item_id"]].reference]  # disagrees with the data
        t["annotations"] = [{"completed_by": 7, "was_cancelled": False, "result": [
            {"from_name": "preference", "to_name": "prompt", "type": "choices",
             "value": {"choices": [choice]}},
            {"from_name": "note", "to_name": "prompt", "type": "textarea",
             "value": {"text": [f"note {k}"]}}]},
            {"completed_by": 8, "was_cancelled": True, "result": []}]
    path.write_text(json.dumps(tasks))
    assert import_labels(run, path) == {"7": HARD}
    b = Analysis.from_run(run, n_boot=0)
    assert b.reference_agreement().set_index("critic").at["human", "agreement"] == 0.0
    notes = {j["rationale"] for v in b.critic_views(tasks[0]["data"]["item_id"])
             if v["critic"] == "human" for j in v["judgments"]}
    assert notes == {"note 0"}


def test_review_import_errors_name_file_row_field(tmp_path, run_dir):
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"item_id": "nope", "label": "A"}\n')
    with pytest.raises(OversightError, match=r"labels.jsonl: row 1: field 'item_id'"):
        import_labels(run_dir, bad)
    item = Analysis.from_run(run_dir, n_boot=0).items[0].id
    bad.write_text("\n" + json.dumps({"item_id": item, "label": "C"}) + "\n")
    with pytest.raises(OversightError, match=r"row 2: field 'label': must be one of A, B"):
        import_labels(run_dir, bad)
    res = CliRunner().invoke(app, ["review", "import", str(run_dir), str(bad)])
    assert res.exit_code == 2 and "row 2: field 'label'" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(app, ["review", "export", str(run_dir), "--out",
                                   str(tmp_path / "q.jsonl"), "--flags", "splitt"])
    assert res.exit_code == 2 and "unknown" in res.output and "veto_conflict" in res.output


def test_report_cli(tmp_path, run_dir):
    res = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").exists()
    for text in ("Cohen's kappa", "Position bias", "Dawid-Skene", "Agreement with reference",
                 "Most contested"):
        assert text in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no judgments.sqlite" in res.output
