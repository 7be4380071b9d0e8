"""A small local critic checked by a big served one.

Harmlessness runs on the embedded SmolLM2-135M in-process (or on Ray actors); helpfulness
runs on a big model behind any OpenAI-compatible server, e.g. vLLM serving a 70B model
tensor-parallel on a cluster:

    vllm serve meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size 4 \
        --enable-prefix-caching --max-logprobs 20        # on the GPU node(s)
    export OVERSIGHT_SERVED_URL=http://gpu-node:8000/v1
    export OVERSIGHT_SERVED_MODEL=meta-llama/Llama-3.1-70B-Instruct
    oversight judge --panel mixed_local_and_served --data PAIRS.jsonl --out runs/NAME

OVERSIGHT_SMALL_MODEL (optional) replaces the small model with any Hugging Face id or path.
The two critics use different backends, so with `RayExecutor` each gets its own actors: the
small model's actors hold the weights, the served critic's actors only hold HTTP clients.
"""

import os

from oversight import Critic, Panel, TransformersBackend, load_constitution
from oversight.backends import OpenAIBackend


def build_panel() -> Panel:
    url = os.environ.get("OVERSIGHT_SERVED_URL", "")
    model = os.environ.get("OVERSIGHT_SERVED_MODEL", "")
    unset = [name for name, value in (("OVERSIGHT_SERVED_URL", url),
                                      ("OVERSIGHT_SERVED_MODEL", model)) if not value]
    if unset:
        raise ValueError(f"set {' and '.join(unset)}: the served critic needs the server's "
                         "base URL (e.g. http://gpu-node:8000/v1) and the model name it serves")
    # The embedded SmolLM2-135M-Instruct, unless OVERSIGHT_SMALL_MODEL names an id or path.
    small = TransformersBackend(os.environ.get("OVERSIGHT_SMALL_MODEL") or None)
    assert url is not None and model is not None  # both checked just above
    big = OpenAIBackend(model, url, concurrency=32, timeout_s=120, max_retries=4)
    return Panel(
        [
            Critic(load_constitution("harmlessness"), small,
                   principles=1, swap=True, name="harmlessness_small"),
            Critic(load_constitution("helpfulness"), big,
                   principles="all", swap=True, name="helpfulness_big"),
        ],
        name="mixed_local_and_served",
    )
