"""The real transformers code path, on a tiny random Llama with the SmolLM2 tokenizer."""

import math

import pytest
import torch

from oversight import ChatPrompt, Critic, Panel
from oversight.backends import ChoiceRequest
from oversight.constitution import builtin


def prompts():
    return [ChatPrompt(({"role": "user", "content": "Which is better? " + "x " * n},))
            for n in (1, 7, 30, 3)]


def manual_logprob(model, ids, choice_ids):
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids + choice_ids])).logits[0]
    lp = torch.log_softmax(logits.float(), -1)
    return sum(float(lp[len(ids) - 1 + t, tok]) for t, tok in enumerate(choice_ids))


def test_batched_choice_logprobs_match_unpadded_forward(tiny_backend, tiny_llama):
    model, tok = tiny_llama
    reqs = [ChoiceRequest(p, ("A", "B")) for p in prompts()]
    batched = tiny_backend.score_choices(reqs)
    for req, res in zip(reqs, batched):
        ids = tiny_backend.render(req.prompt)
        for choice, lp in zip(req.choices, res.logprobs):
            want = manual_logprob(model, ids, tok.encode(choice, add_special_tokens=False))
            assert abs(lp - want) < 1e-4
        assert res.tokens == len(ids) and res.top


def test_multi_token_choices_sum_token_logprobs(tiny_backend, tiny_llama):
    model, tok = tiny_llama
    choices = tuple(str(i) for i in range(1, 11))
    (res,) = tiny_backend.score_choices([ChoiceRequest(prompts()[0], choices)])
    ids = tiny_backend.render(prompts()[0])
    for choice, lp in zip(choices, res.logprobs):
        want = manual_logprob(model, ids, tok.encode(choice, add_special_tokens=False))
        assert abs(lp - want) < 1e-4, choice
    assert res.logprobs[9] < res.logprobs[0]  # P("10") < P("1" ...)


def test_batching_buckets_by_length(tiny_backend):
    batches = tiny_backend._batches([5, 300, 6, 290, 7, 310])
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:  # short and long prompts are not padded together
        lengths = [[5, 300, 6, 290, 7, 310][i] for i in b]
        assert max(lengths) - min(lengths) < 50


def test_render_applies_chat_template(tiny_backend):
    text = tiny_backend.tokenizer.decode(tiny_backend.render(
        ChatPrompt(({"role": "user", "content": "hi"},), assistant_prefix="Answer:")))
    assert text.endswith("<|im_start|>assistant\nAnswer:")


def test_generate_is_deterministic_at_temperature_zero(tiny_backend):
    ps = prompts()[:2]
    a = tiny_backend.generate(ps, max_new_tokens=5)
    b = tiny_backend.generate(ps, max_new_tokens=5)
    assert [g.text for g in a] == [g.text for g in b]
    assert all(0 < g.completion_tokens <= 5 for g in a)


def test_critic_panel_on_tiny_model(tiny_backend, pairs, tmp_path):
    panel = Panel([Critic(builtin("harmlessness"), tiny_backend, principles=2),
                   Critic(builtin("honesty"), tiny_backend, mode="score", principles=1),
                   Critic(builtin("privacy"), tiny_backend, mode="passfail", principles=1,
                          rationale=True, rationale_tokens=4)])
    result = panel.judge(pairs, store=tmp_path)
    df = result.judgments
    assert (df["status"] == "ok").all()
    pair = df[df["mode"] == "pairwise"]
    assert pair["value"].between(0, 1).all() and len(pair) == 3 * 2 * 2
    score = df[df["mode"] == "score"]
    assert score["value"].between(1, 10).all() and len(score) == 3 * 2
    pf = df[df["mode"] == "passfail"]
    assert pf["rationale"].notna().all() and pf["value"].between(0, 1).all()
    assert df["choice_mass"].between(0, 1).all()
    assert (df["model"] == "tiny-random-llama").all()


def test_trust_remote_code_is_off_by_default():
    from oversight import TransformersBackend

    assert TransformersBackend("some/model").trust_remote_code is False


@pytest.mark.slow
def test_default_smollm2_judges_a_pair():
    """The real embedded model: fetched and converted on first use, then loaded from cache."""
    from oversight import Comparison, TransformersBackend

    backend = TransformersBackend()
    critic = Critic(builtin("helpfulness"), backend, principles=["no-needless-refusal"])
    item = Comparison("How do I boil an egg?",
                      ("Put it in boiling water for 9 minutes, then cool it.",
                       "I'm sorry, I can't help with cooking."))
    js = critic.judge([item])
    assert [j.status for j in js] == ["ok", "ok"]
    assert all(0 < j.value < 1 for j in js)
    assert all(j.choice_mass > 0.01 for j in js)
    assert backend.model_id == "SmolLM2-135M-Instruct-Q4_1"
    # Probabilities are normalised over A/B and reproducible on a second backend instance.
    again = Critic(builtin("helpfulness"), TransformersBackend(),
                   principles=["no-needless-refusal"]).judge([item])
    assert all(math.isclose(a.value, b.value, abs_tol=1e-5) for a, b in zip(js, again))


@pytest.mark.parametrize("attention,suffix_batch", [("sdpa", 64), ("eager", 5)])
def test_prefix_sharing_matches_naive_path(tiny_llama, pairs, attention, suffix_batch):
    """Shared-prefix KV reuse gives the naive path's probabilities within 1e-4.

    Both attention kernels (boolean mask for sdpa, additive float mask for eager), and suffix
    batches small enough that groups are split across several batches and share them.
    """
    from oversight import TransformersBackend

    model, tok = tiny_llama
    model.set_attn_implementation(attention)
    shared = TransformersBackend(model_obj=model, tokenizer=tok, model_id="tiny",
                                 prefix_sharing=True, min_prefix=8,
                                 suffix_max_batch=suffix_batch)
    naive = TransformersBackend(model_obj=model, tokenizer=tok, model_id="tiny",
                                prefix_sharing=False)
    critics = [Critic(builtin(n), shared, principles="all")
               for n in ("harmlessness", "honesty")]
    requests = []
    for c in critics:
        for t in c.tasks(pairs):
            requests.append(ChoiceRequest(c._prompt(t, None), ("A", "B")))
    requests.append(ChoiceRequest(prompts()[0], tuple(str(i) for i in range(1, 11))))
    seqs = [shared.render(r.prompt) for r in requests]
    groups = shared._prefix_groups(seqs, [[len(s) - 1] for s in seqs])
    assert sum(len(m) for p, m in groups if p > 0) >= len(requests) - 2  # sharing happened
    assert len([g for g in groups if g[0] > 0]) <= 2 * len(pairs) + 1
    a = shared.score_choices(requests)
    b = naive.score_choices(requests)
    worst = 0.0
    for x, y in zip(a, b):
        pa = [math.exp(v) for v in x.logprobs]
        pb = [math.exp(v) for v in y.logprobs]
        worst = max(worst, max(abs(u - v) for u, v in zip(pa, pb)))
    model.set_attn_implementation("sdpa")
    assert worst < 1e-4
