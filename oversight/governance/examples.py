"""A scripted judge for worked examples and smoke tests of the gate, where a real model is too
slow: `--model function:oversight.governance.examples:prefers_shorter`.

It is the trivial "shorter" baseline written as a critic, so its gate figures say how the
decision procedure changed (vetoes, ties), never how good a judge is."""

from __future__ import annotations

from typing import Any


def prefers_shorter(ctx: Any) -> dict[str, float]:
    """P(A) = 0.8 when the response shown first is shorter, 0.2 when longer, 0.5 if equal."""
    a, b = ctx.responses[0], ctx.responses[1]
    if len(a) == len(b):
        return {"A": 0.5, "B": 0.5}
    return {"A": 0.8, "B": 0.2} if len(a) < len(b) else {"A": 0.2, "B": 0.8}
