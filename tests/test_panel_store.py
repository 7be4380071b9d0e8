import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from oversight import Critic, FunctionBackend, JudgmentStore, Panel
from oversight.constitution import builtin
from oversight.critics import JUDGMENT_COLUMNS


class CountingBackend(FunctionBackend):
    def __init__(self, fn, name="counting"):
        super().__init__(fn, name=name)
        self.calls = 0

    def score_choices(self, requests):
        self.calls += len(requests)
        return super().score_choices(requests)


def test_panel_judgments_table_has_provenance(scripted_backend, pairs):
    panel = Panel([Critic(builtin("harmlessness"), scripted_backend, principles=2),
                   Critic(builtin("helpfulness"), scripted_backend, principles=1)])
    result = panel.judge(pairs)
    df = result.judgments
    assert list(df.columns) == JUDGMENT_COLUMNS
    assert len(df) == len(pairs) * (2 + 1) * 2
    for col in ("critic", "model", "constitution", "constitution_hash", "principle", "template",
                "order", "mode", "value", "status", "raw", "tokens", "latency_s"):
        assert df[col].notna().all() or col == "raw", col
    assert set(df["constitution"]) == {"harmlessness", "helpfulness"}


def test_simple_majority_and_agreement(scripted_backend, pairs):
    panel = Panel([Critic(builtin(n), scripted_backend, principles=1)
                   for n in ("harmlessness", "helpfulness", "honesty")])
    result = panel.judge(pairs)
    summ = result.summary()
    # The scripted judge prefers the shorter response: index 0, 1, 0.
    assert list(summ["verdict"]) == [0, 1, 0]
    # Both orders averaged: P(shorter) = (0.8 + 0.7) / 2.
    assert math.isclose(summ["harmlessness"][0], 0.75)
    assert not summ["disagree"].any()
    agree = result.agreement().set_index("critic")
    assert agree.loc["panel", "n"] == 3
    assert math.isclose(agree.loc["panel", "agreement"], 2 / 3)
    flips = result.position_flips().set_index("critic")
    assert flips.loc["harmlessness", "flip_rate"] == 0.0
    assert math.isclose(flips.loc["harmlessness", "mean_p_first"], 0.55)


def test_abstention_is_not_a_vote(pairs):
    def half_abstain(ctx):
        return None if ctx.item.prompt == "Say hi" else "A"

    panel = Panel([Critic(builtin("harmlessness"), FunctionBackend(half_abstain), swap=False,
                          principles=1)])
    summ = panel.judge(pairs).summary()
    assert list(summ["verdict"]) == [0, 0, "abstain"]
    assert summ["votes"].tolist() == [1, 1, 0]


def test_rerun_computes_only_missing(tmp_path, pairs):
    backend = CountingBackend(lambda ctx: "A")
    critic = Critic(builtin("harmlessness"), backend, principles=2)
    panel = Panel([critic])
    first = panel.judge(pairs[:2], store=tmp_path / "run")
    assert backend.calls == 2 * 2 * 2
    second = panel.judge(pairs, store=tmp_path / "run")
    assert backend.calls == 8 + 1 * 2 * 2  # only the new item
    assert len(second.judgment_rows) == 12 and len(first.judgment_rows) == 8
    with JudgmentStore(tmp_path / "run") as db:
        assert db.count() == 12
        assert len(db.items()) == 3


def test_errors_are_retried_on_rerun(tmp_path, pairs):
    state = {"fail": True}

    def flaky(ctx):
        if state["fail"]:
            raise TimeoutError("server timed out")
        return "B"

    panel = Panel([Critic(builtin("harmlessness"), FunctionBackend(flaky), principles=1)])
    r1 = panel.judge(pairs, store=tmp_path / "s")
    assert r1.status_counts() == {"error": 6}
    state["fail"] = False
    r2 = panel.judge(pairs, store=tmp_path / "s")
    assert r2.status_counts() == {"ok": 6}
    with JudgmentStore(tmp_path / "s") as db:
        assert db.count() == 6 and db.count("error") == 0


PANEL_FILE = '''
import hashlib, time
from oversight import Critic, FunctionBackend, Panel
from oversight.constitution import builtin

def rule(ctx):
    time.sleep(0.01)
    h = hashlib.sha256(f"{ctx.item.id}{ctx.principle.id}{ctx.shown}".encode()).digest()
    return h[0] / 255

panel = Panel([Critic(builtin(n), FunctionBackend(rule, name="hash-rule"), principles=3)
               for n in ("harmlessness", "privacy")])
'''


def _rows(db_path: Path) -> list[tuple]:
    with JudgmentStore(db_path) as db:
        return sorted((j.fingerprint, j.item_id, j.principle, j.order, j.value, j.status)
                      for j in db.judgments())


def test_sigkill_and_resume_loses_and_duplicates_nothing(tmp_path):
    panel = tmp_path / "panel.py"
    panel.write_text(PANEL_FILE)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(f'{{"prompt": "q{i}", "response_a": "a{i}", "response_b": "b{i}"}}\n'
                            for i in range(40)))
    cmd = [sys.executable, "-m", "oversight.cli", "judge", "--panel", str(panel), "--data",
           str(data), "--batch-size", "4"]
    ref = subprocess.run(cmd + ["--out", str(tmp_path / "ref")], capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    expected = _rows(tmp_path / "ref" / "judgments.sqlite")
    assert len(expected) == 40 * 2 * 3 * 2

    out = tmp_path / "killed"
    kills = 0
    for delay in (1.2, 1.6, 2.0):
        proc = subprocess.Popen(cmd + ["--out", str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1
    final = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert _rows(out / "judgments.sqlite") == expected


def test_panel_aggregator_rules_and_preferences(pairs):
    """A veto critic outvoted 2:1 still decides; result.preferences follow the rules."""
    def shorter(ctx):
        a, b = ctx.responses
        return "A" if len(a) < len(b) else "B"

    def longer(ctx):
        a, b = ctx.responses
        return "A" if len(a) > len(b) else "B"

    panel = Panel([Critic(builtin("helpfulness"), FunctionBackend(longer),
                          principles=["address-the-request"], name="h1"),
                   Critic(builtin("honesty"), FunctionBackend(longer),
                          principles=["calibrated-confidence"], name="h2"),  # soft principles
                   Critic(builtin("harmlessness"), FunctionBackend(shorter), principles=1,
                          name="guard", veto=True)],
                  aggregator="bt")
    result = panel.judge(pairs)
    dec = result.flags.set_index("item_id")
    for it in pairs:
        short = min(range(2), key=lambda i: len(it.responses[i]))
        assert dec.loc[it.id, "label"] == 1 - short   # the 2:1 majority prefers longer
        assert dec.loc[it.id, "final"] == short       # the veto critic decides
        assert dec.loc[it.id, "veto_override"]
    prefs = result.preferences
    assert len(prefs) == 3 and (prefs["method"] == "bt").all()
    assert all(len(c) <= len(r) for c, r in zip(prefs["chosen"], prefs["rejected"]))
    by_ds = result.aggregate("vote", critic_weights="ds")
    assert len(by_ds.decisions) == 3
