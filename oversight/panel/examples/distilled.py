"""A reward model distilled from a panel, used as a cheap critic on a panel of its own.

The distillation path (after Constitutional Classifiers, Anthropic 2025):

    oversight judge --panel panels/checks_and_balances.py --data PAIRS.jsonl --out runs/teacher
    oversight export runs/teacher --format preference --out runs/teacher_prefs
    oversight train reward --data runs/teacher_prefs --out runs/teacher_rm --max-steps 50
    OVERSIGHT_RM=runs/teacher_rm oversight judge --panel panels/distilled.py \\
        --data PAIRS.jsonl --out runs/student
    oversight evaluate runs/student            # against the data's reference labels

The reward model scores each response once (r); its pairwise verdict is
sigmoid(r_first - r_second), position-free, so one order is enough (swap=False).
"""

import os

from oversight import Critic, Panel, load_constitution
from oversight.backends import RewardModelBackend

backend = RewardModelBackend(os.environ.get("OVERSIGHT_RM", "runs/teacher_rm"))

panel = Panel(
    [Critic(load_constitution("harmlessness"), backend, mode="pairwise",
            swap=False, principles=1, name="distilled")],
    name="distilled",
)
