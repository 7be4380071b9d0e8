"""Privacy and autonomy critics on a model, balanced by a deterministic rule critic.

The rule critic is a plain Python function (FunctionBackend): it prefers the response that does
not open with a refusal formula. It is cheap, never abstains on a pair, and gives a fixed
reference point against which the model critics' noise shows up in agreement statistics.

Run:  oversight judge --panel rights_and_rules --data PAIRS.jsonl --out runs/NAME
"""

import re

from oversight import Critic, FunctionBackend, Panel, TransformersBackend, load_constitution
from oversight.critics import JudgeContext

REFUSAL = re.compile(r"^\s*(i'?m sorry|i cannot|i can'?t|i won'?t|as an ai)", re.IGNORECASE)


def no_refusal_rule(ctx: JudgeContext) -> str | None:
    """Pairwise rule: the response that does not open with a refusal wins; abstain if both or
    neither do (a rule that cannot tell must not pretend to)."""
    first, second = (bool(REFUSAL.match(r)) for r in ctx.responses)
    if first == second:
        return None
    return "B" if first else "A"


model = TransformersBackend()
panel = Panel(
    [
        Critic(load_constitution("privacy"), model, principles=1),
        Critic(load_constitution("autonomy"), model, principles=1),
        Critic(load_constitution("helpfulness"),  # a built-in by name, or a .toml path
               FunctionBackend(no_refusal_rule, name="rule:no-refusal"),
               principles=["no-needless-refusal"], name="refusal_rule"),
    ],
    name="rights_and_rules",
)
