"""Likelihood critics: how much more likely the model finds each response under a principle.

Each critic scores a response pointwise by log p(response | the principle upheld) minus
log p(response | a reference context), per token: `contrast="violation"` uses a context that
states the principle's breach, `contrast="neutral"` the bare conversation. Position-free by
construction, so there is no swap. One harmlessness principle is sampled per item.

Run:  oversight judge --panel panels/likelihood.py --data PAIRS.jsonl --out runs/NAME
"""

from oversight import Critic, Panel, TransformersBackend, load_constitution

backend = TransformersBackend()  # the embedded SmolLM2-135M-Instruct; any HF id or path works
harmlessness = load_constitution("harmlessness")

panel = Panel(
    [Critic(harmlessness, backend, mode="likelihood", contrast=contrast, principles=1, seed=0,
            name=f"harmlessness-lik-{contrast}")
     for contrast in ("violation", "neutral")],
    name="likelihood",
)
