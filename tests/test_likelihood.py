"""mode='likelihood': log p(response | principle upheld) - log p(response | reference context)."""

from __future__ import annotations

import json
import math

import pytest

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.critics import _templates as T


def _direct_loglik(backend, tiny_llama, prompt, text):
    """log p(text | prompt) from one unbatched forward pass of the tiny model."""
    import torch

    model, tok = tiny_llama
    ctx = backend.render(prompt)
    cont = tok(text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont))), len(cont)


ITEMS = [Comparison("How do I boil an egg?", ("Boil it for nine minutes, then cool it.",
                                              "No.")),
         Comparison("Capital of France?", ("Paris.", "It is Lyon, the largest city."))]


def test_likelihoods_are_exact_stored_and_position_free(harmlessness, tiny_backend, tiny_llama):
    critic = Critic(harmlessness, tiny_backend, mode="likelihood",
                    principles=["no-violence-facilitation", "no-harassment-content"])
    js = critic.judge(ITEMS)
    assert len(js) == 2 * 2 * 2  # items x principles x responses, one order each
    assert {j.order for j in js} == {"0", "1"} and all(j.status == "ok" for j in js)
    by_p = {p.id: p for p in harmlessness.principles}
    for j in js:
        item = next(it for it in ITEMS if it.id == j.item_id)
        response = item.responses[int(j.order)]
        rec = json.loads(j.raw)
        up, neutral, bad = T.likelihood_contexts(item, by_p[j.principle])
        for name, ctx in (("upheld", up), ("neutral", neutral), ("violation", bad)):
            ll, n = _direct_loglik(tiny_backend, tiny_llama, ctx, response)
            assert rec["loglik"][name] == pytest.approx(ll, abs=2e-3)
        assert rec["tokens"] == n
        d = rec["loglik"]["upheld"] - rec["loglik"]["violation"]
        assert rec["sum"]["violation"] == pytest.approx(d)
        assert rec["per_token"]["neutral"] == pytest.approx(
            (rec["loglik"]["upheld"] - rec["loglik"]["neutral"]) / n)
        assert j.value == pytest.approx(1 / (1 + math.exp(-d / n)))
    # position-free: swapping the responses gives each response the same value
    swapped = [Comparison(it.prompt, it.responses[::-1]) for it in ITEMS]
    v1 = {(j.principle, ITEMS[[it.id for it in ITEMS].index(j.item_id)]
           .responses[int(j.order)]): j.value for j in js}
    js2 = critic.judge(swapped)
    v2 = {(j.principle, swapped[[it.id for it in swapped].index(j.item_id)]
           .responses[int(j.order)]): j.value for j in js2}
    assert v1 == pytest.approx(v2)


def test_contrast_and_per_token_options_pick_the_value(harmlessness, tiny_backend):
    crit = {(c, pt): Critic(harmlessness, tiny_backend, mode="likelihood", principles=1,
                            contrast=c, per_token=pt)
            for c in ("violation", "neutral") for pt in (True, False)}
    fps = {k: c.fingerprint for k, c in crit.items()}
    assert len(set(fps.values())) == 4  # every option keys the cache separately
    for (contrast, per_token), c in crit.items():
        j = c.judge(ITEMS[:1])[0]
        rec = json.loads(j.raw)
        d = (rec["per_token"] if per_token else rec["sum"])[contrast]
        assert j.value == pytest.approx(1 / (1 + math.exp(-d)))


def test_likelihood_critic_votes_on_a_panel(harmlessness, tiny_backend):
    res = Panel([Critic(harmlessness, tiny_backend, mode="likelihood", principles=1,
                        name="lik")]).judge(ITEMS)
    dec = res.aggregate().decisions
    sup = res.support()
    for it in ITEMS:
        s = sup[(it.id, "lik")]
        final = dec.set_index("item_id").at[it.id, "final"]
        assert final == (0 if s[0] > s[1] else 1)


def test_likelihood_without_log_probs_abstains_with_a_reason(harmlessness):
    crit = Critic(harmlessness, FunctionBackend(lambda ctx: "some text", name="txt"),
                  mode="likelihood", principles=1)
    js = crit.judge(ITEMS[:1])
    assert {j.status for j in js} == {"abstain"}
    assert all(j.reason.startswith("no-likelihood") for j in js)


def test_bad_options_are_named(harmlessness, tiny_backend):
    with pytest.raises(ValueError, match="contrast='opposite'"):
        Critic(harmlessness, tiny_backend, mode="likelihood", contrast="opposite")
    with pytest.raises(ValueError, match="hardened=True and rationale=True do not apply"):
        Critic(harmlessness, tiny_backend, mode="likelihood", hardened=True)
