"""Checks and balances: harmlessness, helpfulness and honesty critics on one shared model.

Harmlessness pulls toward caution, helpfulness penalises needless refusals, and honesty
penalises comforting falsehoods; no one of them decides alone. Each critic judges both orders
(position swap) under one principle sampled per item (CAI-style): a 289-pair run on the 135M
default model takes about 12 minutes on two CPU cores (2.5 judgments/s). Set PRINCIPLES to
"all" for every principle; shared prefixes then make each judgment about 3x cheaper.

Run:  oversight judge --panel checks_and_balances --data PAIRS.jsonl --out runs/NAME
"""

from oversight import Critic, Panel, TransformersBackend, load_constitution

PRINCIPLES = 1  # principles sampled per item and critic, or "all"

backend = TransformersBackend()  # the embedded SmolLM2-135M-Instruct; any HF id or path works

panel = Panel(
    [
        # A built-in constitution by name; give a path to use your own .toml copy instead.
        Critic(load_constitution(name), backend, principles=PRINCIPLES, swap=True, seed=0)
        for name in ("harmlessness", "helpfulness", "honesty")
    ],
    name="checks_and_balances",
)
