"""§6: every synchronous entry point works inside a running event loop (a Jupyter kernel).

Each test body is an `async def` run with `asyncio.run`, so the sync API is called while a
real event loop runs in the thread, as in a notebook cell; the backend talks HTTP to the
scripted loopback server of tests/test_http_backend.py. Before the fix, OpenAIBackend called
`asyncio.run` and every request ended as an `error` row ("cannot be called from a running
event loop").
"""

from __future__ import annotations

import asyncio
import math

import pytest
from test_http_backend import FaultServer, one_request

from oversight import Critic, Panel
from oversight.backends import OpenAIBackend
from oversight.backends._sync import run_coroutine
from oversight.constitution import builtin

P_A = 0.7 / (0.7 + 0.2)  # the scripted server's top log-probs: A 0.7, B 0.2


@pytest.fixture
def server():
    srv = FaultServer([])
    yield srv
    srv.close()


def in_running_loop(fn):
    """Call `fn()` from inside a running event loop, as a notebook cell does."""
    async def body():
        asyncio.get_running_loop()  # proves a loop is running here
        return fn()

    return asyncio.run(body())


def test_judge_and_aggregate_inside_a_running_loop(server, pairs, tmp_path):
    backend = OpenAIBackend("m", server.url, concurrency=4)
    panel = Panel([Critic(builtin("harmlessness"), backend, principles=1, swap=False),
                   Critic(builtin("honesty"), backend, principles=1, swap=False)])

    def cell():
        result = panel.judge(pairs, store=tmp_path / "run")
        return result, result.aggregate("vote")

    result, agg = in_running_loop(cell)
    assert result.status_counts() == {"ok": 6}
    values = [j.value for j in result.judgment_rows]
    assert all(math.isclose(v, P_A, rel_tol=1e-6) for v in values)
    assert list(agg.decisions["final"]) == [0, 0, 0]  # every critic prefers the first shown
    assert backend.usage.requests == 6 and backend.usage.failures == 0


def test_same_calls_in_a_plain_script(server, pairs):
    backend = OpenAIBackend("m", server.url)
    result = Panel([Critic(builtin("harmlessness"), backend, principles=1)]).judge(pairs)
    assert result.status_counts() == {"ok": 6}  # 3 pairs x both orders


def test_reward_function_inside_a_running_loop(server):
    from oversight.train import panel_reward

    backend = OpenAIBackend("m", server.url)
    reward = panel_reward(Panel([Critic(builtin("helpfulness"), backend, principles=1,
                                         swap=False)]))
    rewards = in_running_loop(lambda: reward(prompts=["Say hi", "Say hi"],
                                             completions=["Hi!", "Hello there!"]))
    # One GRPO group of two: the pairwise critic's support is P(first) for the first
    # completion and 1 - P(first) for the second, with no abstentions.
    assert rewards == pytest.approx([P_A, 1 - P_A], abs=1e-6)


def test_revise_inside_a_running_loop(server):
    from oversight.revise import revise

    policy = OpenAIBackend("m", server.url)
    run = in_running_loop(lambda: revise(["How do I boil an egg?"], policy,
                                         builtin("harmlessness"), rounds=2, max_new_tokens=4))
    (record,) = run.records
    assert record.initial == "A" and len(record.rounds) == 2
    assert all(r.critique == "A" and r.revision == "A" for r in record.rounds)
    assert policy.usage.requests == 1 + 2 * 2 and policy.usage.failures == 0


def test_run_coroutine_uses_a_worker_loop_only_when_one_is_running():
    async def which_loop():
        return asyncio.get_running_loop()

    assert run_coroutine(which_loop) is not None  # plain script: asyncio.run

    async def cell():
        outer = asyncio.get_running_loop()
        inner = run_coroutine(which_loop)
        return outer, inner

    outer, inner = asyncio.run(cell())
    assert inner is not outer  # a fresh loop in a worker thread, the notebook's loop untouched


def test_raw_backend_call_inside_a_running_loop(server):
    backend = OpenAIBackend("m", server.url)
    (res,) = in_running_loop(lambda: backend.score_choices(one_request()))
    assert res.error is None and math.isclose(math.exp(res.logprobs[0]), 0.7)
