import json
import subprocess
import sys

import pandas as pd
from typer.testing import CliRunner

from oversight.cli import app

runner = CliRunner()

PANEL = '''
from oversight import Critic, FunctionBackend, Panel
from oversight.constitution import builtin

def shorter(ctx):
    a, b = ctx.responses
    return "A" if len(a) <= len(b) else "B"

panel = Panel([Critic(builtin(n), FunctionBackend(shorter, name="shorter"), principles=1)
               for n in ("harmlessness", "helpfulness")])
'''


def test_constitution_validate_and_show():
    r = runner.invoke(app, ["constitution", "validate", "constitutions/harmlessness.toml",
                            "constitutions/privacy.toml"])
    assert r.exit_code == 0 and r.output.count("ok ") == 2
    r = runner.invoke(app, ["constitution", "show", "constitutions/honesty.toml"])
    assert r.exit_code == 0 and "honesty" in r.output


def test_constitution_validate_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[constitution]\nname='bad'\n")
    proc = subprocess.run([sys.executable, "-m", "oversight.cli", "constitution", "validate",
                           str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "bad.toml" in proc.stderr and "field 'version'" in proc.stderr


def test_judge_writes_run_and_resumes(tmp_path):
    (tmp_path / "panel.py").write_text(PANEL)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "ok" * (i + 1),
                                        "rejected": "nope"}) + "\n" for i in range(6)))
    args = ["judge", "--panel", str(tmp_path / "panel.py"), "--data", str(data), "--out",
            str(tmp_path / "run")]
    r = runner.invoke(app, args + ["--limit", "4"])
    assert r.exit_code == 0, r.output
    assert len(pd.read_parquet(tmp_path / "run" / "judgments.parquet")) == 4 * 2 * 2
    assert "Agreement with reference labels" in r.output
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["computed"] == 2 * 2 * 2  # only the two new items
    assert len(pd.read_parquet(tmp_path / "run" / "judgments.parquet")) == 6 * 2 * 2
    summary = pd.read_parquet(tmp_path / "run" / "summary.parquet")
    assert len(summary) == 6


def test_judge_bad_row_and_skip_bad(tmp_path):
    (tmp_path / "panel.py").write_text(PANEL)
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "q", "response_a": "a", "response_b": "b"}\n'
                    '{"prompt": "q", "response_a": "a"}\n')
    args = ["judge", "--panel", str(tmp_path / "panel.py"), "--data", str(data), "--out",
            str(tmp_path / "run")]
    proc = subprocess.run([sys.executable, "-m", "oversight.cli", *args], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "row 2" in proc.stderr and "field 'response_b'" in proc.stderr
    r = runner.invoke(app, args + ["--skip-bad"])
    assert r.exit_code == 0 and "1 bad rows skipped" in r.output


def test_bad_panel_files(tmp_path):
    cases = {"syntax.py": "panel = (", "none.py": "x = 1", "wrong.py": "panel = 3",
             "raises.py": "import json\nraise RuntimeError('no GPU here')"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        proc = subprocess.run([sys.executable, "-m", "oversight.cli", "judge", "--panel",
                               str(tmp_path / name), "--data", "x.jsonl", "--out",
                               str(tmp_path / "o")], capture_output=True, text=True)
        assert proc.returncode == 2, name
        assert "Traceback" not in proc.stderr and name in proc.stderr, proc.stderr
    assert "line 2" in proc.stderr and "no GPU here" in proc.stderr


def test_judge_help_warns_that_panel_files_run_code():
    r = runner.invoke(app, ["judge", "--help"])
    assert "RUNS" in r.output


def test_aggregate_command_writes_trl_preferences(tmp_path):
    (tmp_path / "panel.py").write_text(PANEL)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "ok",
                                        "rejected": "no no no no"}) + "\n" for i in range(5)))
    r = runner.invoke(app, ["judge", "--panel", str(tmp_path / "panel.py"), "--data", str(data),
                            "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    for method in ("vote", "majority", "conservative"):
        out = tmp_path / f"prefs_{method}.parquet"
        r = runner.invoke(app, ["aggregate", str(tmp_path / "run"), "--method", method,
                                "--out", str(out)])
        assert r.exit_code == 0, r.output
        prefs = pd.read_parquet(out)
        # Both critics prefer the shorter response, which is the human `chosen` here.
        assert len(prefs) == 5 and (prefs["chosen"] == "ok").all()
        assert {"prompt", "chosen", "rejected", "margin", "soft_label", "critics",
                "constitutions", "split"} <= set(prefs.columns)
        assert "agreement with reference labels: 1.000" in r.output
    r = runner.invoke(app, ["aggregate", str(tmp_path / "run"), "--drop-flags", "bogus"])
    assert r.exit_code == 2 and "valid:" in r.output
    r = runner.invoke(app, ["aggregate", str(tmp_path / "nowhere")])
    assert r.exit_code == 2
