"""RayExecutor end to end on a local Ray session: same results as the local executor, an actor
killed mid-run, and a resumed run that dispatches only the missing keys.

One Ray session serves the whole module (starting Ray takes seconds on two cores).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from oversight import Critic, FunctionBackend, JudgmentStore, Panel, TransformersBackend
from oversight.backends import BackendSpec, backend_spec
from oversight.constitution import builtin
from oversight.panel import LocalExecutor, RayExecutor

ray = pytest.importorskip("ray")
TESTS = Path(__file__).resolve().parent


def prefers_shorter(ctx):
    """Module-level, so a Ray actor imports it by reference."""
    a, b = ctx.responses
    return {"A": 0.7, "B": 0.3} if len(a) <= len(b) else {"A": 0.2, "B": 0.8}


@pytest.fixture(scope="module")
def ray_session():
    # Actors import this module by name (prefers_shorter), so they need tests/ on their path.
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_dir(tiny_llama, tmp_path_factory):
    """The tiny random Llama on disk: an actor rebuilds it from a path, not a live object."""
    model, tok = tiny_llama
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def items():
    texts = ["Sure, here is how.", "I can't help with that request.", "Maybe.",
             "Here's a detailed and careful answer to your question.", "No."]
    return [{"prompt": f"Question {i}?", "chosen": texts[i % 5], "rejected": texts[(i + 2) % 5]}
            for i in range(12)]


N_JUDGMENTS = 12 * (2 + 1 + 1) * 2  # items x (principles per critic, summed) x orders


def tiny_panel(tiny_dir):
    backend = TransformersBackend(str(tiny_dir), model_id="tiny-random-llama",
                                  batch_tokens=2048, max_batch=8, num_threads=1)
    rule = FunctionBackend(prefers_shorter, name="shorter")
    return Panel([Critic(builtin("harmlessness"), backend, principles=2),
                  Critic(builtin("helpfulness"), backend, principles=1),
                  Critic(builtin("honesty"), rule, principles=1)])


@pytest.fixture(scope="module")
def local_result(tiny_dir, items):
    return tiny_panel(tiny_dir).judge(items, batch_size=4, executor=LocalExecutor())


@pytest.fixture(scope="module")
def executor(ray_session):
    """Two actors per backend (four in all, half a CPU each), kept for the whole module."""
    with RayExecutor(actors_per_backend=2, resources={"num_cpus": 0.5}) as ex:
        yield ex


def table(result):
    df = result.judgments
    return df.sort_values(["critic", "item_id", "principle", "order"]).reset_index(drop=True)


def assert_same(a, b):
    ta, tb = table(a), table(b)
    assert len(ta) == N_JUDGMENTS
    keys = ["critic", "fingerprint", "item_id", "principle", "order", "status", "model"]
    assert ta[keys].equals(tb[keys])
    for x, y in zip(ta["value"], tb["value"]):
        assert math.isclose(x, y, rel_tol=0, abs_tol=1e-6), (x, y)


def test_spec_refuses_live_model(tiny_llama):
    model, tok = tiny_llama
    with pytest.raises(ValueError, match="live model object"):
        TransformersBackend(model_obj=model, tokenizer=tok).spec()
    with pytest.raises(TypeError, match="has no spec"):
        backend_spec(object())
    spec = FunctionBackend(prefers_shorter, name="shorter").spec()
    assert isinstance(spec, BackendSpec)
    assert spec.build().fingerprint() == FunctionBackend(prefers_shorter,
                                                         name="shorter").fingerprint()


def test_ray_matches_local_and_streams_units(executor, tiny_dir, items, local_result):
    seen = []
    remote = tiny_panel(tiny_dir).judge(items, batch_size=4, executor=executor,
                                        progress=lambda done, total, label: seen.append(done))
    assert executor.stats["tasks_sent"] == N_JUDGMENTS
    assert executor.stats["units_retried"] == 0
    assert len(executor.actors) == 4  # two per distinct backend
    assert_same(local_result, remote)
    # Results arrived unit by unit: progress advanced many times, up to the total.
    assert len(seen) > 10 and seen[-1] == N_JUDGMENTS and seen == sorted(seen)
    # Both model actors did work.
    model_actors = [a for a in executor.actors if "Transformers" in a.backend]
    assert all(a.units_done > 0 for a in model_actors)


def test_killed_actor_is_replaced_and_run_completes(executor, tiny_dir, items, local_result,
                                                    tmp_path):
    killed = []

    def kill_busy_model_actor(done, total, label):
        if not killed and done > 0:
            victim = next(a for a in executor.actors
                          if a.in_flight > 0 and "Transformers" in a.backend)
            killed.append(victim)
            ray.kill(victim.handle)

    remote = tiny_panel(tiny_dir).judge(items, batch_size=4, executor=executor,
                                        store=tmp_path / "run", progress=kill_busy_model_actor)
    assert killed and not killed[0].alive
    stats = executor.stats
    assert stats["actors_lost"] == 1 and stats["actors_started"] == 1  # one replacement
    assert stats["units_retried"] >= 1
    # Only the killed actor's units were sent twice.
    assert stats["units_sent"] == stats["units_done"] + stats["units_retried"]
    assert len(executor.actors) == 4
    assert_same(local_result, remote)
    with JudgmentStore(tmp_path / "run") as db:
        assert db.count() == N_JUDGMENTS and db.count("error") == 0


def test_resume_dispatches_only_missing_keys(executor, tiny_dir, items, local_result, tmp_path):
    panel = tiny_panel(tiny_dir)

    class Interrupt(Exception):
        pass

    def stop_after_some(done, total, label):
        if done >= 30:
            raise Interrupt

    with pytest.raises(Interrupt):
        panel.judge(items, batch_size=4, executor=executor, store=tmp_path / "run",
                    progress=stop_after_some)
    with JudgmentStore(tmp_path / "run") as db:
        kept = db.count()
    assert 30 <= kept < N_JUDGMENTS
    resumed = panel.judge(items, batch_size=4, executor=executor, store=tmp_path / "run")
    assert executor.stats["tasks_sent"] == N_JUDGMENTS - kept
    assert_same(local_result, resumed)


def test_failing_unit_surfaces_after_max_attempts(ray_session, items):
    class Exploding(FunctionBackend):
        def score_choices(self, requests):
            raise RuntimeError("backend exploded")

        def spec(self):
            return BackendSpec(Exploding, {"judge": prefers_shorter, "name": "exploding"})

    panel = Panel([Critic(builtin("honesty"), Exploding(prefers_shorter, name="exploding"),
                          principles=1)])
    with RayExecutor(max_attempts=2, resources={"num_cpus": 0}) as ex:
        with pytest.raises(RuntimeError, match="exploded"):
            panel.judge(items[:2], executor=ex)
        assert ex.stats["units_retried"] == 1  # tried a second time before giving up


def test_cli_judge_on_ray_matches_local(ray_session, items, tmp_path):
    """`oversight judge --ray local --actors 2` writes the same store as a local run."""
    import json

    from typer.testing import CliRunner

    from oversight.cli import app

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in items))
    panel_file = tmp_path / "rule_panel.py"
    panel_file.write_text(
        "from test_ray_executor import prefers_shorter\n"
        "from oversight import Critic, FunctionBackend, Panel\n"
        "from oversight.constitution import builtin\n"
        "rule = FunctionBackend(prefers_shorter, name='shorter')\n"
        "panel = Panel([Critic(builtin('honesty'), rule, principles=2),\n"
        "               Critic(builtin('harmlessness'), rule, principles=1)])\n")
    runner = CliRunner()
    runs = {}
    # The module's executor already reserves both CPUs, so these actors reserve none.
    for name, extra in (("local", []), ("ray", ["--ray", "local", "--actors", "2",
                                                "--actor-cpus", "0"])):
        out = tmp_path / name
        res = runner.invoke(app, ["judge", "--panel", str(panel_file), "--data", str(data),
                                  "--out", str(out), "--batch-size", "4", *extra])
        assert res.exit_code == 0, res.output
        with JudgmentStore(out / "judgments.sqlite") as db:
            runs[name] = db.count()
        runs[name + "_df"] = __import__("pandas").read_parquet(out / "judgments.parquet")
    assert runs["local"] == runs["ray"] == 12 * 3 * 2
    cols = ["critic", "item_id", "principle", "order", "status", "value"]
    a = runs["local_df"][cols].sort_values(cols[:4]).reset_index(drop=True)
    b = runs["ray_df"][cols].sort_values(cols[:4]).reset_index(drop=True)
    assert a.equals(b)


def test_unmeetable_resources_stop_with_a_clear_error(ray_session, items):
    """An actor asking for more CPUs than the cluster has never starts: the run says so."""
    from oversight.errors import BackendError

    panel = Panel([Critic(builtin("honesty"), FunctionBackend(prefers_shorter, name="shorter"),
                          principles=1)])
    with RayExecutor(resources={"num_cpus": 64}, stall_warning_s=1.0,
                     stall_timeout_s=3.0) as ex:
        with pytest.warns(RuntimeWarning, match="num_cpus"):
            with pytest.raises(BackendError, match=r"ask for \{'num_cpus': 64\}.*free in"):
                panel.judge(items[:2], executor=ex)
