"""RewardModelBackend as a pointwise critic, and distilling a panel into it."""

from __future__ import annotations

import math

import pytest

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.backends import RewardModelBackend
from oversight.constitution import builtin

TOKENIZER = "tests/fixtures/smollm2_tokenizer"


def _tiny_rm(path):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=512, pad_token_id=tok.pad_token_id,
                         bos_token_id=1, eos_token_id=tok.eos_token_id, num_labels=1)
    LlamaForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _items(n: int = 12) -> list[Comparison]:
    return [Comparison(f"Question {i}: how?", (f"Short {i}.", f"A much longer answer {i} " * 3),
                       reference=0) for i in range(n)]


def _direct_reward(backend, item, response):
    import torch

    ids = torch.tensor([backend.encode(item, response)])
    with torch.inference_mode():
        return float(backend.model(input_ids=ids).logits[0, 0])


def test_reward_model_critic_values_are_sigmoids_of_rewards(tmp_path):
    be = RewardModelBackend(_tiny_rm(tmp_path / "rm"))
    items = _items(3)
    pf = Critic(builtin("helpfulness"), be, mode="passfail", principles=1, name="rm-pf")
    for j in pf.judge(items):
        item = next(it for it in items if it.id == j.item_id)
        r = _direct_reward(be, item, item.responses[int(j.order)])
        assert j.value == pytest.approx(1 / (1 + math.exp(-r)), abs=1e-5)
        assert "reward:response" in j.raw
    pw = Critic(builtin("helpfulness"), be, mode="pairwise", principles=1, name="rm-pw")
    js = pw.judge(items)
    for it in items:
        r0, r1 = (_direct_reward(be, it, resp) for resp in it.responses)
        fwd = next(j for j in js if j.item_id == it.id and j.order == "0,1")
        rev = next(j for j in js if j.item_id == it.id and j.order == "1,0")
        assert fwd.value == pytest.approx(1 / (1 + math.exp(-(r0 - r1))), abs=1e-5)
        assert fwd.value + rev.value == pytest.approx(1.0, abs=1e-6)  # position-free
    with pytest.raises(NotImplementedError, match="does not generate"):
        be.generate([])
    bad = Critic(builtin("helpfulness"), be, mode="score", principles=1).judge(items[:1])
    assert bad[0].status == "error" and "not 'score'" in bad[0].reason


def test_distil_a_panel_into_a_reward_model_critic(tmp_path):
    """judge with a panel -> export -> train reward -> the RM as a critic on a panel."""
    from oversight.train import TrainOptions, preference_dataset, train_reward

    def shorter(ctx):
        a, b = ctx.responses
        return 0.9 if len(a) < len(b) else 0.1

    items = _items(12)
    teacher = Panel([Critic(builtin("helpfulness"), FunctionBackend(shorter, name="short"),
                            name="short", principles=1)]).judge(items)
    ds = preference_dataset(teacher)
    assert len(ds) == 12
    init = _tiny_rm(tmp_path / "init")
    before = Panel([Critic(builtin("helpfulness"), RewardModelBackend(init), name="rm",
                           mode="pairwise", swap=False, principles=1)]).judge(items)
    out = tmp_path / "rm"
    train_reward(str(init), ds, TrainOptions(output_dir=out, max_steps=30, learning_rate=3e-3,
                                             batch_size=4, max_length=128))
    student = Panel([Critic(builtin("helpfulness"), RewardModelBackend(out), name="rm",
                            mode="pairwise", swap=False, principles=1)]).judge(items)
    panel_final = teacher.aggregation.decisions.set_index("item_id")["final"]

    def agreement(res):
        f = res.aggregation.decisions.set_index("item_id")["final"]
        return float((f == panel_final.reindex(f.index)).mean())

    def margin(res):
        return sum(j.value for j in res.judgment_rows) / len(res.judgment_rows)

    assert agreement(student) == 1.0  # it learned the panel's verdicts on its training items
    assert margin(student) > margin(before) + 0.2  # ... by training, not by chance
