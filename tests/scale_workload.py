"""A deterministic function-critic workload for the data-path tests and benchmarks/overhead.py.

Three function critics (no model, so only the framework costs) under two principles of the
harmlessness constitution, one of them a veto, both orders: 12 judgments per item. The verdicts
vary with the item so that every aggregator has work to do, and include abstentions (unparseable
text, None) and errors (a raising rule), so those paths are measured too.
"""

from __future__ import annotations

from oversight import Critic, Panel
from oversight.backends import FunctionBackend
from oversight.constitution import builtin
from oversight.data import Comparison

JUDGMENTS_PER_ITEM = 12
PRINCIPLES = ["no-mass-casualty-uplift", "safety-warnings"]


def _seed(ctx) -> int:  # noqa: ANN001 - a JudgeContext
    return int(ctx.item.prompt.rsplit(" ", 1)[1])


def judge_prob(ctx):  # noqa: ANN001, ANN201
    s = _seed(ctx)
    p = ((s * 37) % 97 + 1) / 99
    return p if ctx.shown[0] == 0 else min(1.0, 1.0 - p + 0.05)


def judge_length(ctx):  # noqa: ANN001, ANN201
    a, b = (len(r) for r in ctx.responses)
    if a == b:
        return None
    return "A" if a > b else "B"


def judge_mixed(ctx):  # noqa: ANN001, ANN201
    s = _seed(ctx)
    if s % 29 == 0:
        raise ValueError(f"rule failed on {s}")
    if s % 13 == 0:
        return "I cannot decide"
    q = ((s * 11) % 89 + 1) / 91
    return {"A": q, "B": 1 - q}


def items(n: int) -> list[Comparison]:
    """n items whose verdicts depend on their number."""
    return [Comparison(f"prompt {i}", (f"answer {'x' * (i % 5)}", f"reply {'y' * (i % 7)}"),
                       reference=i % 2)
            for i in range(n)]


def panel(aggregator: str = "vote") -> Panel:
    con = builtin("harmlessness")
    critics = [Critic(con, FunctionBackend(f, name=f"fn-{k}"), name=f"critic-{k}",
                      principles=PRINCIPLES)
               for k, f in enumerate([judge_prob, judge_length, judge_mixed])]
    return Panel(critics, method=aggregator)
