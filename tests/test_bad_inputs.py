"""The corpus of bad inputs in tests/bad_inputs, each through the real CLI.

Every file must give exit code 2 and one `error:` line that names the file and the row,
principle, field or line at fault (the substrings in expected.json), and never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oversight.cli import app

CORPUS = Path(__file__).parent / "bad_inputs"
EXPECTED: dict[str, list[str]] = json.loads((CORPUS / "expected.json").read_text())
runner = CliRunner()

GOOD_PANEL = '''
from oversight import Critic, FunctionBackend, Panel
from oversight.constitution import builtin

panel = Panel([Critic(builtin("honesty"), FunctionBackend(lambda ctx: "A", name="first"),
                      principles=1)])
'''
GOOD_DATA = '{"prompt": "q", "response_a": "a", "response_b": "b"}\n'


def _cases(kind: str) -> list[str]:
    return sorted(k for k in EXPECTED if k.startswith(f"{kind}/"))


def _check(result, path: Path, expected: list[str]) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no other exception reached the user
    out = result.output
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    assert str(path) in errors[0], errors[0]
    for sub in expected:
        assert sub in errors[0], (sub, errors[0])


def test_every_corpus_file_is_listed_and_every_listing_exists():
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
             if p.is_file() and p.name != "expected.json"}
    assert files == set(EXPECTED)
    assert len(_cases("constitutions")) >= 20 and len(_cases("data")) >= 20 \
        and len(_cases("panels")) >= 12


@pytest.mark.parametrize("name", _cases("constitutions"))
def test_bad_constitution(name):
    path = CORPUS / name
    _check(runner.invoke(app, ["constitution", "validate", str(path)]), path, EXPECTED[name])


@pytest.mark.parametrize("name", _cases("data"))
def test_bad_data(name, tmp_path):
    (tmp_path / "panel.py").write_text(GOOD_PANEL)
    path = CORPUS / name
    r = runner.invoke(app, ["judge", "--panel", str(tmp_path / "panel.py"), "--data", str(path),
                            "--out", str(tmp_path / "run")])
    _check(r, path, EXPECTED[name])


@pytest.mark.parametrize("name", _cases("panels"))
def test_bad_panel(name, tmp_path):
    (tmp_path / "d.jsonl").write_text(GOOD_DATA)
    path = CORPUS / name
    r = runner.invoke(app, ["judge", "--panel", str(path), "--data", str(tmp_path / "d.jsonl"),
                            "--out", str(tmp_path / "run")])
    _check(r, path, EXPECTED[name])


def test_real_processes_print_one_line_per_bad_file(tmp_path):
    """The installed entry point, as a user runs it: all bad constitutions in one call, and a
    few data and panel files through `oversight judge`."""
    names = _cases("constitutions")
    proc = subprocess.run([sys.executable, "-m", "oversight.cli", "constitution", "validate",
                           *[str(CORPUS / n) for n in names]], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(names)
    for n, line in zip(names, lines):
        assert line.startswith(f"error: {CORPUS / n}")
    (tmp_path / "panel.py").write_text(GOOD_PANEL)
    (tmp_path / "d.jsonl").write_text(GOOD_DATA)
    for panel, data in ((tmp_path / "panel.py", CORPUS / "data/not_utf8.jsonl"),
                        (CORPUS / "panels/exits.py", tmp_path / "d.jsonl")):
        proc = subprocess.run([sys.executable, "-m", "oversight.cli", "judge", "--panel",
                               str(panel), "--data", str(data), "--out", str(tmp_path / "o")],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


def test_out_path_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "panel.py").write_text(GOOD_PANEL)
    (tmp_path / "d.jsonl").write_text(GOOD_DATA)
    (tmp_path / "taken").write_text("a file")
    r = runner.invoke(app, ["judge", "--panel", str(tmp_path / "panel.py"), "--data",
                            str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "taken")])
    _check(r, tmp_path / "taken", ["exists"])
