import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from oversight import Comparison, Critic, FunctionBackend, JudgmentStore, Panel
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


PANEL_FILE = """
import hashlib, os, time
from oversight import Critic, FunctionBackend, Panel
from oversight.constitution import builtin

DELAY = float(os.environ.get("TEST_JUDGE_DELAY", "0.005"))

def rule(ctx):
    time.sleep(DELAY)
    h = hashlib.sha256(f"{ctx.item.id}{ctx.principle.id}{ctx.shown}".encode()).digest()
    return h[0] / 255

panel = Panel([Critic(builtin(n), FunctionBackend(rule, name="hash-rule"), principles=2)
               for n in ("harmlessness", "privacy")])
"""
N_ITEMS = 24
TOTAL = N_ITEMS * 2 * 2 * 2  # items x critics x principles x orders


def _rows(db_path: Path) -> list[tuple]:
    """Every stored judgment, all columns but latency (wall time differs between runs)."""
    with JudgmentStore(db_path) as db:
        return sorted(tuple(v for k, v in j.to_dict().items() if k != "latency_s")
                      for j in db.judgments())


def _count(db_path: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as con:
            return int(con.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _judge_setup(tmp_path: Path) -> list[str]:
    (tmp_path / "panel.py").write_text(PANEL_FILE)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(f'{{"prompt": "q{i}", "response_a": "a{i}", "response_b": "b{i}"}}\n'
                            for i in range(N_ITEMS)))
    return [sys.executable, "-m", "oversight.cli", "judge", "--panel", str(tmp_path / "panel.py"),
            "--data", str(data), "--batch-size", "4"]


def test_sigkill_at_20_random_points_and_resume_loses_and_duplicates_nothing(tmp_path):
    """SIGKILL `oversight judge` 20 times at seeded random points (a random committed-row
    count plus a random 0-40 ms, so kills land inside transactions too), resuming each time;
    the store must then equal an uninterrupted run's row for row."""
    import random

    from oversight.cli._panelfile import load_panel

    cmd = _judge_setup(tmp_path)
    # The uninterrupted reference, in this process (the same file, data and batch size).
    load_panel(tmp_path / "panel.py").judge(tmp_path / "data.jsonl", store=tmp_path / "ref",
                                            batch_size=4)
    expected = _rows(tmp_path / "ref" / "judgments.sqlite")
    assert len(expected) == TOTAL

    rng = random.Random(20)
    targets = sorted(rng.sample(range(1, TOTAL), 20))
    out = tmp_path / "killed"
    db = out / "judgments.sqlite"
    kills, counts = 0, []
    for target in targets:
        proc = subprocess.Popen(cmd + ["--out", str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while _count(db) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.04))
        assert proc.poll() is None, f"run finished before the kill at {target} rows"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        kills += 1
        counts.append(_count(db))
    assert kills == 20
    assert counts == sorted(counts) and targets[-1] <= counts[-1] <= TOTAL  # progress
    final = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    got = _rows(db)
    assert len(got) == len(set(got)) == TOTAL  # zero lost, zero duplicated
    assert got == expected  # same values, provenance, status, raw
    import sqlite3

    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM items").fetchone()[0] == N_ITEMS
    assert json.loads((out / "run.json").read_text())["computed"] == TOTAL - counts[-1]


def test_two_concurrent_runs_on_one_store_wait_and_do_not_duplicate_work(tmp_path):
    """Two real `oversight judge` processes on the same run directory: the second reports the
    first's pid, waits for its lock, then resumes and computes nothing."""
    cmd = _judge_setup(tmp_path)
    out = tmp_path / "shared"
    env = {**os.environ, "TEST_JUDGE_DELAY": "0.02"}
    first = subprocess.Popen(cmd + ["--out", str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while _count(out / "judgments.sqlite") == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first run ended before the second could start"
    second = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True,
                            env=env, timeout=120)
    first_out, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second.stderr
    assert f"another run (pid {first.pid}) is writing to this store; waiting" in second.stderr
    assert "Traceback" not in second.stderr
    assert "computed now: 0 " in second.stdout  # it waited, then found everything done
    assert "waiting" not in first_err
    rows = _rows(out / "judgments.sqlite")
    assert len(rows) == len(set(rows)) == TOTAL
    import sqlite3

    with sqlite3.connect(out / "judgments.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_run_lock_without_waiting_names_the_holder(tmp_path):
    import pytest

    from oversight.errors import StoreBusyError

    code = ("import sys, time\nfrom oversight.store import run_lock\n"
            f"with run_lock({str(tmp_path / 's.sqlite')!r}):\n"
            "    print('held', flush=True)\n    time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with JudgmentStore(tmp_path / "s.sqlite") as db:
            with pytest.raises(StoreBusyError, match=f"pid {holder.pid}"):
                with db.run_lock(wait=False):
                    pass
    finally:
        holder.kill()
        holder.wait()
    with JudgmentStore(tmp_path / "s.sqlite") as db:  # freed by the kernel on SIGKILL
        with db.run_lock(wait=False):
            with db.run_lock(wait=False):  # re-entrant within a process
                pass


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
                  method="bt")
    result = panel.judge(pairs)
    dec = result.flags.set_index("item_id")
    for it in pairs:
        short = min(range(2), key=lambda i: len(it.responses[i]))
        assert dec.loc[it.id, "label"] == 1 - short   # the 2:1 majority prefers longer
        assert dec.loc[it.id, "final"] == short       # the veto critic decides
        assert dec.loc[it.id, "veto_override"]
    prefs = result.preferences()
    assert len(prefs) == 3 and (prefs["method"] == "bt").all()
    assert all(len(c) <= len(r) for c, r in zip(prefs["chosen"], prefs["rejected"]))
    by_ds = result.aggregate("vote", critic_weights="ds")
    assert len(by_ds.decisions) == 3


def test_store_write_settings_and_an_old_page_size_store_still_resumes(tmp_path):
    """Issue 17's write-path settings: a new store gets 16 KiB pages, a 64 MiB page cache and
    a 64 MiB WAL between automatic checkpoints. A store made with SQLite's default 4 KiB pages
    (every store before) keeps its page size and resumes as before."""
    import sqlite3

    from oversight.store._store import CACHE_KIB, PAGE_SIZE, WAL_CHECKPOINT_BYTES

    with JudgmentStore(tmp_path / "new") as db:
        pragma = {p: db._db.execute(f"PRAGMA {p}").fetchone()[0]
                  for p in ("page_size", "cache_size", "wal_autocheckpoint", "journal_mode",
                            "synchronous")}
    assert pragma == {"page_size": 16384, "cache_size": -65536, "wal_autocheckpoint": 4096,
                      "journal_mode": "wal", "synchronous": 1}  # 1 = NORMAL
    assert (PAGE_SIZE, CACHE_KIB * 1024, WAL_CHECKPOINT_BYTES) == (16384, 64 << 20, 64 << 20)

    old = tmp_path / "old"
    old.mkdir()
    con = sqlite3.connect(old / "judgments.sqlite")
    con.execute("PRAGMA page_size = 4096")
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    items = [Comparison(f"q{i}", (f"a{i}", f"b{i}")) for i in range(30)]
    calls = []
    panel = Panel([Critic(builtin("harmlessness"),
                          FunctionBackend(lambda ctx: calls.append(1) or 0.25), principles=2)])
    first = panel.judge(items[:20], store=old)
    assert len(first) == len(calls) == 20 * 2 * 2
    second = panel.judge(items, store=old)
    assert len(second) == 30 * 2 * 2 and len(calls) == 30 * 2 * 2  # only the 10 new items
    with JudgmentStore(old) as db:
        assert db._db.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert db._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (64 << 20) // 4096
        assert db.count() == 120 and db.count("ok") == 120
        assert db._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_with_a_store_items_are_judged_in_key_order_and_the_rows_are_unchanged(tmp_path):
    """Issue 17: with a store, items are judged in item-id order (the key's order), so each
    critic's rows are inserted in ascending key order; the rows themselves, and the result
    read back, are those of a run without a store."""
    import sqlite3

    items = [Comparison(f"question {i}", (f"a{i}", f"b{i}")) for i in range(60)]
    seen = []
    panel = Panel([Critic(builtin("harmlessness"),
                          FunctionBackend(lambda ctx: seen.append(ctx.item.id) or 0.7,
                                          name="seven"), principles=2, name="one"),
                   Critic(builtin("privacy"), FunctionBackend(lambda ctx: "B", name="b"),
                          principles=1, name="two")])
    stored = panel.judge(items, store=tmp_path / "run", batch_size=8, chunk_items=16)
    assert seen == sorted(seen) and len(seen) == 60 * 2 * 2
    assert [it.id for it in items] != sorted(it.id for it in items)  # the input was not
    with sqlite3.connect(tmp_path / "run" / "judgments.sqlite") as con:
        inserted = con.execute("SELECT critic, item_id FROM judgments ORDER BY rowid").fetchall()
    for name in ("one", "two"):
        ids = [i for c, i in inserted if c == name]
        assert ids == sorted(ids) and len(set(ids)) == 60
    plain = panel.judge(items, batch_size=8)
    key = ["critic", "item_id", "principle", "order"]
    a = stored.judgments.drop(columns="latency_s").sort_values(key).reset_index(drop=True)
    b = plain.judgments.drop(columns="latency_s").sort_values(key).reset_index(drop=True)
    assert len(a) == 60 * 2 * 2 + 60 * 2 and a.equals(b)
    assert [it.id for it in stored.items] == [it.id for it in items]  # the items as given
