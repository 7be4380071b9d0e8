"""Intra-op thread choice on shared cores (`oversight.backends._threads`), and its wiring into
the transformers backend's forward passes."""

from __future__ import annotations

import types

import pytest

from oversight.backends import _threads
from oversight.backends._threads import (
    ThreadTuner,
    available_cpus,
    cgroup_cpu_limit,
    thread_candidates,
)


def test_cgroup_cpu_limit_parses_quota_and_unlimited() -> None:
    assert cgroup_cpu_limit("200000 100000\n") == 2
    assert cgroup_cpu_limit("150000 100000") == 2  # 1.5 CPUs rounds up
    assert cgroup_cpu_limit("50000 100000") == 1
    assert cgroup_cpu_limit("max 100000") is None
    assert cgroup_cpu_limit("garbage") is None


def test_available_cpus_uses_affinity_and_quota_not_cpu_count(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    quota = tmp_path / "cpu.max"
    assert available_cpus(tmp_path / "absent") == 4  # pinned to 4 of 64 CPUs
    quota.write_text("300000 100000\n")
    assert available_cpus(quota) == 3  # a container limited to 3 CPUs
    quota.write_text("max 100000\n")
    assert available_cpus(quota) == 4


def test_thread_candidates_halve_down_to_one() -> None:
    assert thread_candidates(1) == (1,)
    assert thread_candidates(2) == (2, 1)
    assert thread_candidates(16) == (16, 8, 4, 2, 1)
    assert thread_candidates(6) == (6, 3, 1)


def run(tuner: ThreadTuner, cost: dict[int, float], passes: int) -> list[int]:
    """`passes` forward passes of 100 tokens where `threads` threads take cost[threads] s."""
    used = []
    for _ in range(passes):
        t = tuner.choose()
        used.append(t)
        tuner.record(t, 100, cost[t])
    return used


def test_tuner_does_not_measure_the_first_pass() -> None:
    tuner = ThreadTuner((2, 1))
    tuner.record(tuner.choose(), 100, 50.0)  # first forward: one-time costs, 50x slower
    assert tuner.rate == {}
    assert run(tuner, {2: 1.0, 1: 1.8}, 20)[:2] == [2, 1]
    assert tuner.best() == 2


def test_tuner_moves_to_one_thread_when_two_are_slower_and_back_when_the_load_goes() -> None:
    tuner = ThreadTuner((2, 1), warmup=0)
    quiet = {2: 1.0, 1: 1.8}       # a quiet machine: 2 threads 1.8x faster
    contended = {2: 4.6, 1: 2.0}   # cores shared: 2 threads stall at every barrier

    used = run(tuner, quiet, 200)
    assert used[:2] == [2, 1]              # each count measured once, largest first
    assert tuner.best() == 2
    slow = used[2:].count(1)
    assert 1 <= slow <= 4                  # probes after 16, 32, 64, 128 passes
    overhead = (sum(quiet[t] for t in used) - 200 * quiet[2]) / (200 * quiet[2])
    assert overhead < 0.02                 # probing costs under 2% on a quiet machine

    used = run(tuner, contended, 200)
    switch = used.index(1)
    assert switch <= 2                     # the slowdown of 2 threads triggers a probe at once
    assert tuner.best() == 1
    assert used[switch:].count(2) <= 200 // 128 + 5  # then 2 threads only as rare probes

    used = run(tuner, quiet, 200)
    assert tuner.best() == 2
    assert used.index(2) <= 128            # the load left: noticed at a probe
    assert used[-50:].count(2) >= 48


def test_tuner_ignores_empty_passes_and_unknown_counts() -> None:
    tuner = ThreadTuner((2, 1), warmup=0)
    tuner.record(2, 0, 1.0)
    tuner.record(3, 100, 1.0)
    tuner.record(1, 100, 0.0)
    assert tuner.rate == {}
    assert tuner.choose() == 2


def test_tuner_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="candidates"):
        ThreadTuner(())
    with pytest.raises(ValueError, match="probe_every"):
        ThreadTuner((2, 1), probe_every=100, max_probe_every=64)


def test_backend_forward_passes_use_the_faster_thread_count(tiny_llama, monkeypatch) -> None:
    """With num_threads=None the backend's CPU forwards follow the tuner: under a clock on
    which 2 threads are 2.5x slower per pass (shared cores), nearly all packed passes run on 1
    thread, and torch's own setting is left as it was."""
    import torch

    from oversight import Comparison, Critic, TransformersBackend
    from oversight.backends import _transformers
    from oversight.constitution import builtin

    model, tok = tiny_llama
    monkeypatch.setattr(_transformers, "available_cpus", lambda: 2)
    now = [0.0]

    def perf_counter() -> float:  # every reading advances by the cost of the current count
        now[0] += {1: 1.0, 2: 2.5}[torch.get_num_threads()]
        return now[0]

    monkeypatch.setattr(_transformers, "time", types.SimpleNamespace(perf_counter=perf_counter))
    backend = TransformersBackend(model_obj=model, tokenizer=tok, model_id="tiny",
                                  suffix_batch_tokens=256)
    pairs = [Comparison(f"Question {i}: how do I boil an egg?",
                        (f"Boil it {i} minutes.", "Place it in boiling water.")) for i in range(6)]
    critic = Critic(builtin("harmlessness"), backend, principles=2, swap=True)
    requests = critic.prepare(critic.tasks(pairs)).requests
    torch.set_num_threads(2)
    for _ in range(6):
        backend.score_choices(requests)
    assert torch.get_num_threads() == 2          # restored after every pass
    tuner = backend.thread_tuners["packed"]
    assert tuner.candidates == (2, 1)
    assert tuner.passes >= 10
    assert tuner.best() == 1
    assert tuner.rate[2] == pytest.approx(2.5 * tuner.rate[1], rel=0.2)
    # 2 threads only for the first try and the probes (after 16, 32, 64 passes)
    assert tuner.uses[2] <= 5
    assert tuner.uses[1] >= tuner.passes - 6
    pinned = TransformersBackend(model_obj=model, tokenizer=tok, model_id="tiny", num_threads=2)
    pinned.score_choices(requests)
    assert pinned.thread_tuners == {}            # a pinned count is never changed
