"""One owner for a run directory: run.json, critics by fingerprint, human labels as evidence."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from typer.testing import CliRunner

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.cli import app
from oversight.constitution import builtin
from oversight.errors import OversightError
from oversight.panel import open_run
from oversight.report import Analysis, import_labels
from oversight.store import JudgmentStore
from oversight.train import load_run, preference_frame

runner = CliRunner()


def lean(ctx):
    """Prefers the first response a little on 'even' prompts, the second on 'odd' ones."""
    p = 0.7 if ctx.item.prompt.startswith("even") else 0.3
    return p if ctx.shown[0] == 0 else 1 - p


def contrary(ctx):
    p = 0.3 if ctx.item.prompt.startswith("even") else 0.6
    return p if ctx.shown[0] == 0 else 1 - p


def items():
    return [Comparison(f"{'even' if i % 2 == 0 else 'odd'} question {i}",
                       (f"answer a{i}", f"answer b{i}"), reference=i % 2) for i in range(6)]


def one_critic_panel():
    return Panel([Critic(builtin("helpfulness"), FunctionBackend(lean, name="lean"),
                         name="lean", principles=1)])


def _finals(agg):
    return {r.item_id: r.final for r in agg.decisions.itertuples()}


def _decisions_every_way(run_dir):
    """Panel decisions from every reader of a run directory."""
    out = {"open_run": _finals(open_run(run_dir).aggregate()),
           "load_run": _finals(load_run(run_dir).aggregate()),
           "report": {r.item_id: r.final for r in
                      Analysis.from_run(run_dir, n_boot=0).decisions.itertuples()}}
    prefs = preference_frame(run_dir)
    out["export"] = {i: int(c) for i, c in zip(prefs["item_id"], prefs["chosen_index"])}
    return out


def test_human_labels_never_vote_in_any_reader(tmp_path):
    run = tmp_path / "run"
    its = items()
    one_critic_panel().judge(its, store=run)
    before = _decisions_every_way(run)
    decided = {i: v for i, v in before["open_run"].items() if isinstance(v, int)}
    assert len(decided) == 6 and before["export"] == decided
    # Reviewers contradict the only critic on every item: counted as a vote, each item would
    # become a 1-1 tie and leave the export.
    queue = tmp_path / "labels.jsonl"
    queue.write_text("".join(json.dumps({"item_id": it.id, "label": "AB"[1 - decided[it.id]]})
                             + "\n" for it in its))
    import_labels(run, queue)
    after = _decisions_every_way(run)
    assert after == before
    r = runner.invoke(app, ["aggregate", str(run)])
    assert r.exit_code == 0, r.output
    assert "decided=6" in r.output and "1 critics" in r.output
    # the human labels still show as a reference: reviewers agree with the critic on 0 of 6
    a = Analysis.from_run(run, n_boot=0)
    ag = a.reference_agreement("human").set_index("critic")
    assert ag.at["lean", "n"] == 6 and ag.at["lean", "agreement"] == 0.0
    out = tmp_path / "ds"
    r = runner.invoke(app, ["export", str(run), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 6 preference rows" in r.output


def test_export_uses_the_panels_aggregator_and_rules(tmp_path):
    run = tmp_path / "run"
    panel = Panel([Critic(builtin("helpfulness"), FunctionBackend(f, name=f.__name__),
                          name=f.__name__, principles=1) for f in (lean, contrary)],
                  method="conservative", method_options={"lam": 0.5})
    panel.judge(items(), store=run)
    info = json.loads((run / "run.json").read_text())
    assert info["format_version"] == 1 and info["aggregator"] == {
        "method": "conservative", "options": {"lam": 0.5}}
    assert [c["name"] for c in info["critics"]] == ["lean", "contrary"]
    cons = panel.judge(items()).aggregate()
    assert open_run(run).aggregate().decisions["final"].tolist() == \
        cons.decisions["final"].tolist()
    prefs = preference_frame(run)
    assert set(prefs["method"]) == {"conservative"}
    r = runner.invoke(app, ["aggregate", str(run)])
    assert r.exit_code == 0 and r.output.startswith("conservative:"), r.output


def test_a_reused_directory_reads_only_the_last_runs_critics(tmp_path):
    run = tmp_path / "run"
    one_critic_panel().judge(items(), store=run)
    # Another panel, a different critic under the same name (score mode: new fingerprint).
    other = Panel([Critic(builtin("helpfulness"), FunctionBackend(lambda ctx: "7", name="s"),
                          name="lean", mode="score", principles=1)])
    res = other.judge(items()[:3], store=run)
    with JudgmentStore(run) as db:
        assert len({c["fingerprint"] for c in db.critics()}) == 2
    r = open_run(run)
    assert len(r.judgments) == len(res.judgments) == 3 * 2
    assert set(r.judgments["mode"]) == {"score"} and len(r.items) == 3
    # Without run.json nothing says which `lean` is the run's: a clear error, never a merge.
    (run / "run.json").unlink()
    with pytest.raises(OversightError, match="2 different critics named 'lean'"):
        open_run(run)


def test_run_and_store_versions_are_checked(tmp_path):
    run = tmp_path / "run"
    one_critic_panel().judge(items()[:2], store=run)
    info = json.loads((run / "run.json").read_text())
    info["format_version"] = 99
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(OversightError, match="run format version 99"):
        open_run(run)
    r = runner.invoke(app, ["aggregate", str(run)])
    assert r.exit_code == 2 and "run format version 99" in r.output
    db = sqlite3.connect(run / "judgments.sqlite")
    db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(OversightError, match="store schema version 7.*reads version 1"):
        JudgmentStore(run)


def test_legacy_run_json_is_read_through_its_critics(tmp_path):
    run = tmp_path / "run"
    res = one_critic_panel().judge(items()[:2], store=run)
    (run / "run.json").write_text(json.dumps({"panel": "p.py", "critics": res.critics}))
    r = open_run(run)
    assert r.critic_names == ["lean"] and r.method == "vote" and len(r.judgments) == 4


def test_report_on_a_run_matches_aggregate(tmp_path):
    run = tmp_path / "run"
    one_critic_panel().judge(items(), store=run)
    a = Analysis.from_run(run, n_boot=0)
    ref = a.reference_agreement().set_index("critic")
    # lean prefers response 0 on even prompts (reference 0) and 1 on odd ones (reference 1)
    assert ref.at["lean", "agreement"] == 1.0 and ref.at["panel:vote", "n"] == 6
    assert isinstance(pd.DataFrame(a.decisions), pd.DataFrame)


PANEL_WITH_AGGREGATOR = '''
import pandas as pd
from oversight import Critic, FunctionBackend, Panel
from oversight.aggregate import critic_p0, register_aggregator
from oversight.constitution import builtin


@register_aggregator("median", replace=True)
def median(judgments, context, *, floor=0.0):
    """Median of the critics' P(response 0); undecided within `floor` of 0.5."""
    med = critic_p0(judgments).groupby("item_id")["p0"].median()
    label = [("undecided" if abs(m - 0.5) <= floor else 0 if m > 0.5 else 1) for m in med]
    return pd.DataFrame({"label": label, "p0": med, "margin": (2 * med - 1).abs()},
                        index=med.index)


def longer(ctx):
    a, b = ctx.responses
    return 0.9 if len(a) > len(b) else 0.1


panel = Panel([Critic(builtin("helpfulness"), FunctionBackend(longer, name="longer"),
                      name="longer", principles=1)], method="median",
              method_options={"floor": 0.05})
'''


def test_a_registered_aggregator_from_a_panel_file_runs_in_the_cli(tmp_path):
    panel = tmp_path / "panel.py"
    panel.write_text(PANEL_WITH_AGGREGATOR)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "long answer " * (i + 1),
                                        "rejected": "no"}) + "\n" for i in range(3)))
    run = tmp_path / "run"
    r = runner.invoke(app, ["judge", "--panel", str(panel), "--data", str(data), "--out",
                            str(run)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["aggregate", str(run), "--out", str(tmp_path / "p.parquet"),
                            "--panel", str(panel)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("median: 3 items") and "decided=3" in r.output
    prefs = pd.read_parquet(tmp_path / "p.parquet")
    assert set(prefs["method"]) == {"median"} and (prefs["chosen"].str.len() > 2).all()
    import typer

    # method names in the help come from the registry (built-ins: registered at import)
    cmd = typer.main.get_command(app).commands["aggregate"]  # type: ignore[attr-defined]
    helps = {p.name: p.help for p in cmd.params}
    assert helps["method"].startswith("vote | majority | conservative | bt | ds")
    (run / "run.json").write_text((run / "run.json").read_text())
    r = runner.invoke(app, ["aggregate", str(run), "--method", "borda"])
    assert r.exit_code == 2 and "pass --panel FILE" in r.output


def test_readers_build_no_judgment_object_per_row(tmp_path, monkeypatch):
    """open_run, its aggregation, the report, the CLI and the export read columns: a run of
    10^7 judgments at ~3 KB per object would not fit in memory (issue 17)."""
    from oversight.critics import Judgment

    run = tmp_path / "run"
    its = items()
    one_critic_panel().judge(its, store=run)
    queue = tmp_path / "labels.jsonl"
    queue.write_text("".join(json.dumps({"item_id": it.id, "label": "A"}) + "\n"
                             for it in its))
    import_labels(run, queue)
    made = []
    real_init = Judgment.__init__

    def counting_init(self, *args, **kwargs):
        made.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Judgment, "__init__", counting_init)
    decisions = _decisions_every_way(run)
    assert len(decisions["open_run"]) == 6
    r = open_run(run)
    assert len(r.judgments) == 12 and len(r.human_judgments) == 6  # 2 orders; 1 label each
    assert set(r.human_judgments["critic"]) == {"human"}
    assert r.working_table()["critic"].dtype == "category"
    a = Analysis.from_run(run, n_boot=0)
    assert a.reference_agreement("human").set_index("critic").at["lean", "n"] == 6
    assert [v["critic"] for v in a.critic_views(its[0].id)] == ["lean", "human"]
    assert runner.invoke(app, ["aggregate", str(run)]).exit_code == 0
    assert made == []
