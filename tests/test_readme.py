"""The README runs as written: every Python block and shell block, in order, from a folder
outside the checkout, in small mode.

Small mode is one setting, OVERSIGHT_DEFAULT_MODEL: the default model (`TransformersBackend()`,
`--policy default`, `default_model_path()`) becomes a tiny random Llama saved in a temp dir,
so the blocks are the real user-facing code but take seconds. The examples themselves are
CPU-sized (a few pairs, one training step). .ci/wheel_check.sh runs the ten-line example with
the real SmolLM2 against the installed wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from readme_blocks import INERT, RUNNABLE, blocks

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def test_every_block_is_runnable_or_marked():
    found = blocks(README)
    for b in found:
        assert b.lang in RUNNABLE + INERT, (
            f"README.md line {b.line}: code block language {b.lang!r}; use one of "
            f"{RUNNABLE + INERT} so the README test knows whether to run it")
        if b.skip is not None:
            assert b.lang in RUNNABLE and len(b.skip) > 8, f"line {b.line}: say why it is skipped"
    runnable = [b for b in found if b.lang in RUNNABLE and b.skip is None]
    assert sum(b.lang == "python" for b in runnable) >= 5
    assert sum(b.lang == "bash" for b in runnable) >= 2
    text = README.read_text()
    assert "../shared" not in "".join(b.code for b in found)  # no paths into a dev checkout
    assert "constitutions/" not in "".join(b.code for b in runnable)
    assert "HuggingFaceTB/" not in "".join(b.code for b in runnable)  # no hub downloads
    assert "effective_panel_size(corr)" in text


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_llama):
    model, tok = tiny_llama
    path = tmp_path_factory.mktemp("tiny-default-model")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_readme_runs_as_written(tmp_path, tiny_model_dir):
    work = tmp_path / "user"  # outside the checkout: nothing relative to the repository works
    work.mkdir()
    assert REPO not in work.resolve().parents
    env = {**os.environ,
           "OVERSIGHT_DEFAULT_MODEL": str(tiny_model_dir),
           "OVERSIGHT_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")])),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           "OVERSIGHT_CACHE": str(tmp_path / "cache")}  # proves nothing comes from a cache
    driver = (f"import sys; sys.path.insert(0, {str(REPO / 'tests')!r})\n"
              "from pathlib import Path\n"
              "from readme_blocks import RUNNABLE, blocks, run\n"
              f"todo = [b for b in blocks({str(README)!r}) "
              "if b.lang in RUNNABLE and b.skip is None]\n"
              "run(todo, Path.cwd())\n"
              "print('README blocks run:', len(todo))\n")
    proc = subprocess.run([sys.executable, "-c", driver], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    n = int(proc.stdout.rsplit("README blocks run:", 1)[1])
    assert n == len([b for b in blocks(README) if b.lang in RUNNABLE and b.skip is None])
    # What the blocks leave behind is what they say they make.
    assert (work / "runs" / "cli" / "report.html").stat().st_size > 10_000
    assert (work / "prefs.parquet").exists() and (work / "queue.jsonl").exists()
    assert (work / "revised" / "revisions.jsonl").read_text().count("\n") == 2
    assert (work / "out" / "dpo").exists() and (work / "out" / "grpo").exists()
