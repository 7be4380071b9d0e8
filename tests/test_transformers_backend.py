"""The real transformers code path, on a tiny random Llama with the SmolLM2 tokenizer."""

import math

import pytest
import torch

from oversight import ChatPrompt, Critic, Panel
from oversight.backends import ChoiceRequest
from oversight.constitution import builtin
from oversight.critics._parse import normalize


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


def panel_requests(backend, pairs):
    """Every principle of two critics on each pair, and one 10-way score prompt."""
    critics = [Critic(builtin(n), backend, principles="all")
               for n in ("harmlessness", "honesty")]
    requests = [ChoiceRequest(c._prompt(t, None), ("A", "B"))
                for c in critics for t in c.tasks(pairs)]
    requests.append(ChoiceRequest(prompts()[0], tuple(str(i) for i in range(1, 11))))
    return requests


def choice_probs(results):
    """Each request's probabilities normalised over its choices, as a critic reads them."""
    return [normalize(r.logprobs)[0] for r in results]


def logprob_gap(a, b):
    """Largest difference in a choice's raw log-probability between two result lists."""
    return max(abs(u - v) for x, y in zip(a, b) for u, v in zip(x.logprobs, y.logprobs))


@pytest.mark.parametrize("attention,cascade,options", [
    ("sdpa", True, {}),
    ("eager", True, {"suffix_batch_tokens": 400}),
    ("sdpa", False, {"suffix_max_batch": 5, "suffix_slack": (0.2, 4)}),
    ("eager", False, {})])
def test_prefix_sharing_matches_naive_path(tiny_llama, pairs, attention, cascade, options,
                                           monkeypatch):
    """Shared-prefix KV reuse gives the naive path's probabilities within 1e-4.

    Both paths: groups (prefix, then its suffixes) packed through cascade attention, several
    to a forward or one each; and suffix rows with a copy of the prefix KV each, in
    exact-length buckets or left-padded ones, in batches small enough that one group's
    suffixes are split across several. Both model attention settings (sdpa's boolean mask,
    eager's float mask).
    """
    from oversight import TransformersBackend
    from oversight.backends import _cascade

    model, tok = tiny_llama
    model.set_attn_implementation(attention)
    shared = TransformersBackend(model_obj=model, tokenizer=tok, model_id="tiny",
                                 prefix_sharing=True, min_prefix=8, cascade=cascade, **options)
    packs: list[list[tuple[int, ...]]] = []        # the group spans of each packed forward
    padded: list[bool] = []                        # per suffix-row batch, whether it pads

    layout = _cascade.Packed
    monkeypatch.setattr(_cascade, "Packed",
                        lambda **kw: packs.append(kw["groups"]) or layout(**kw))
    real = shared._suffix_cached

    def cached(suffix, spos, own, *rest):
        padded.append(bool((~own[:, -1]).any()))  # some row's last token misses a column
        return real(suffix, spos, own, *rest)

    monkeypatch.setattr(shared, "_suffix_cached", cached)
    naive = TransformersBackend(model_obj=model, tokenizer=tok, model_id="tiny",
                                prefix_sharing=False)
    requests = panel_requests(shared, pairs)
    seqs = [shared.render(r.prompt) for r in requests]
    groups = shared._prefix_groups(seqs, [[len(s) - 1] for s in seqs])
    assert sum(len(m) for p, m in groups if p > 0) >= len(requests) - 2  # sharing happened
    assert len([g for g in groups if g[0] > 0]) <= 2 * len(pairs) + 1
    a = shared.score_choices(requests)
    b = naive.score_choices(requests)
    worst = max(abs(u - v) for x, y in zip(choice_probs(a), choice_probs(b))
                for u, v in zip(x, y))
    assert logprob_gap(a, b) < 1e-4  # raw log-probs too, not only their normalised ratio
    model.set_attn_implementation("sdpa")
    assert model.config._attn_implementation == "sdpa"  # the cascade switch is undone
    if cascade:
        assert packs and not padded
        if options:  # a budget below any group's size: one group per pack
            assert [len(spans) for spans in packs] == [1] * len([g for g in groups if g[0]])
        else:
            assert any(len(spans) > 1 for spans in packs)  # a pack holds several groups
    else:
        assert padded and not packs
        assert any(padded) == ("suffix_slack" in options)  # exact-length buckets never pad
    assert worst < 1e-4


def test_cascade_attention_in_bf16_agrees_with_the_cached_path(tiny_llama, pairs):
    """In bf16 the two suffix paths round differently, but stay close to each other and to
    fp32; the probabilities spread widely, so a suffix read against the wrong prefix shows."""
    import copy

    from oversight import TransformersBackend

    model, tok = tiny_llama
    half = copy.deepcopy(model).to(torch.bfloat16)

    def make(m, **kw):
        return TransformersBackend(model_obj=m, tokenizer=tok, model_id="tiny", min_prefix=8,
                                   **kw)

    requests = panel_requests(make(half), pairs)
    cascade = make(half).score_choices(requests)
    cached = make(half, cascade=False).score_choices(requests)
    fp32 = make(model, prefix_sharing=False).score_choices(requests)
    assert logprob_gap(cascade, cached) < 0.02
    gap = max(abs(x[0] - y[0]) for x, y in zip(choice_probs(cascade), choice_probs(fp32)))
    assert gap < 0.01
    first = [p[0] for p in choice_probs(fp32)[:-1]]  # the A/B requests
    assert max(first) - min(first) > 10 * gap


def test_tuned_allocator_reuses_activation_memory_instead_of_faulting_it_in():
    """After `tune_cpu_allocator()` freed 20 MB buffers stay in the heap and are reused, so
    allocating them again faults in no pages. Untuned glibc trims them back to the kernel in
    some processes and not others (it depends on where the heap can grow), so four fresh
    processes are probed; a tuning that did nothing fails with probability 1 - 1/16 here."""
    import subprocess
    import sys

    probe = """
import resource, torch
from oversight.backends._allocator import tune_cpu_allocator
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        held = [torch.empty(5 << 20).fill_(1) for _ in range(4)]  # 4 x 20 MB, then freed
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
torch.empty(30 << 18).fill_(1)  # a 30 MB buffer moves glibc's dynamic mmap threshold there
assert tune_cpu_allocator()
faults()
print(faults())
"""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt is Linux-only")
    for _ in range(4):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             check=True).stdout
        assert int(out) < 400  # of the 200,000 pages touched
