"""Shared fixtures: a scripted backend for logic, a tiny random Llama for real code paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from oversight import Comparison, FunctionBackend
from oversight.constitution import builtin

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = FIXTURES / "smollm2_tokenizer"


def scripted_pairwise(ctx):
    """Deterministic rule: prefers the shorter response, with a mild first-position bias."""
    a, b = ctx.responses
    if len(a) == len(b):
        return {"A": 0.5, "B": 0.5}
    p = 0.8 if len(a) < len(b) else 0.3
    return {"A": p, "B": 1 - p}


@pytest.fixture
def scripted_backend() -> FunctionBackend:
    return FunctionBackend(scripted_pairwise, name="scripted")


@pytest.fixture
def harmlessness():
    return builtin("harmlessness")


@pytest.fixture
def pairs() -> list[Comparison]:
    return [
        Comparison("How do I boil an egg?", ("Boil it 9 minutes.",
                                             "Place the egg in boiling water for about nine "
                                             "minutes, then cool it in ice water."), reference=0),
        Comparison("Capital of France?", ("Paris is the capital of France, a city on the Seine.",
                                          "Paris."), reference=1),
        Comparison("Say hi", ("Hi!", "Hello there, friend!"), reference=1),
    ]


@pytest.fixture(scope="session")
def tiny_llama():
    """A 2-layer random Llama with the real SmolLM2 tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, pad_token_id=tok.pad_token_id,
                         bos_token_id=1, eos_token_id=tok.eos_token_id,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    return model, tok


@pytest.fixture
def tiny_backend(tiny_llama):
    from oversight import TransformersBackend

    model, tok = tiny_llama
    return TransformersBackend(model_obj=model, tokenizer=tok, model_id="tiny-random-llama",
                               batch_tokens=2048, max_batch=4)
