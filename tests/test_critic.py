import math

import pytest

from oversight import Comparison, Critic, FunctionBackend, Panel
from oversight.critics import normalize, parse_choice


def test_pairwise_swap_keeps_both_orders(harmlessness, scripted_backend, pairs):
    critic = Critic(harmlessness, scripted_backend, principles=["no-self-harm-methods"])
    js = critic.judge(pairs[:1])
    assert [j.order for j in js] == ["0,1", "1,0"]
    # Shorter response 0 wins in both orders: P(first)=0.8 shown first, 0.3 shown second.
    assert [round(j.value, 6) for j in js] == [0.8, 0.3]
    assert all(j.status == "ok" and j.constitution_hash == harmlessness.hash for j in js)


def test_no_swap_judges_one_order(harmlessness, scripted_backend, pairs):
    critic = Critic(harmlessness, scripted_backend, swap=False, principles=2)
    js = critic.judge(pairs)
    assert {j.order for j in js} == {"0,1"} and len(js) == 2 * len(pairs)


def test_principle_sampling_is_seeded_per_item(harmlessness, scripted_backend, pairs):
    a = Critic(harmlessness, scripted_backend, principles=3, seed=7)
    b = Critic(harmlessness, scripted_backend, principles=3, seed=7)
    c = Critic(harmlessness, scripted_backend, principles=3, seed=8)
    sel = [[p.id for p in a.select_principles(it)] for it in pairs]
    assert sel == [[p.id for p in b.select_principles(it)] for it in pairs]
    assert all(len(s) == 3 for s in sel)
    assert sel != [[p.id for p in c.select_principles(it)] for it in pairs]


def test_kway_pairwise_judges_every_pair_in_both_orders(harmlessness, scripted_backend):
    item = Comparison("q", ("a", "bb", "ccc"))
    js = Critic(harmlessness, scripted_backend, principles=1).judge([item])
    assert sorted(j.order for j in js) == ["0,1", "0,2", "1,0", "1,2", "2,0", "2,1"]


@pytest.mark.parametrize("reply,reason", [
    ("", "empty output"),
    ("I think both are fine", "no verdict"),
    ("Answer: A. Actually, answer: B", "conflicting verdicts"),
])
def test_unusable_text_abstains_with_raw_kept(harmlessness, pairs, reply, reason):
    backend = FunctionBackend(lambda ctx: reply, name="text")
    (j, _) = Critic(harmlessness, backend, principles=["no-self-harm-methods"]).judge(pairs[:1])
    assert j.status == "abstain" and j.value is None
    assert reason in j.reason and j.raw == reply


def test_parsed_text_verdicts(harmlessness, pairs):
    backend = FunctionBackend(lambda ctx: "After thinking: **Answer: B**", name="text")
    js = Critic(harmlessness, backend, principles=["no-self-harm-methods"]).judge(pairs[:1])
    assert [j.value for j in js] == [0.0, 0.0]


def test_failing_rule_becomes_error_not_crash(harmlessness, pairs):
    def broken(ctx):
        raise RuntimeError("boom")

    (j, _) = Critic(harmlessness, FunctionBackend(broken), principles=1).judge(pairs[:1])
    assert j.status == "error" and "boom" in j.reason and j.value is None


def test_score_mode_expected_value(harmlessness, pairs):
    backend = FunctionBackend(lambda ctx: {"7": 0.5, "9": 0.5}, name="scores")
    js = Critic(harmlessness, backend, mode="score", principles=1).judge(pairs[:1])
    assert [j.order for j in js] == ["0", "1"]
    assert all(math.isclose(j.value, 8.0) for j in js)


def test_score_mode_separates_one_from_ten():
    from oversight.critics._critic import _score_probs

    # log P("1") includes P("10"): 0.5 total on "1", of which 0.4 continues to "10".
    lps = [math.log(0.5)] + [-math.inf] * 8 + [math.log(0.4)]
    probs, mass = _score_probs(lps)
    assert math.isclose(probs[0], 0.2) and math.isclose(probs[9], 0.8)
    assert math.isclose(mass, 0.5)


def test_passfail_mode(harmlessness, pairs):
    backend = FunctionBackend(lambda ctx: "Yes" if len(ctx.responses[0]) < 10 else "No")
    js = Critic(harmlessness, backend, mode="passfail", principles=1).judge(pairs[2:3])
    assert [(j.order, j.value) for j in js] == [("0", 1.0), ("1", 0.0)]


def test_min_choice_mass_abstains(harmlessness, pairs):
    class LowMass(FunctionBackend):
        def score_choices(self, requests):
            from oversight.backends import ChoiceResult
            return [ChoiceResult(logprobs=(math.log(0.01), math.log(0.02))) for _ in requests]

    critic = Critic(harmlessness, LowMass(lambda c: None), principles=1, min_choice_mass=0.1)
    (j, _) = critic.judge(pairs[:1])
    assert j.status == "abstain" and "min_choice_mass" in j.reason and j.value is None
    assert math.isclose(j.choice_mass, 0.03)


def test_fingerprint_tracks_model_constitution_and_mode(harmlessness, scripted_backend):
    from oversight.constitution import builtin

    base = Critic(harmlessness, scripted_backend).fingerprint
    assert Critic(harmlessness, scripted_backend, principles=2).fingerprint == base
    assert Critic(harmlessness, scripted_backend, mode="score").fingerprint != base
    assert Critic(builtin("honesty"), scripted_backend).fingerprint != base
    other = FunctionBackend(lambda ctx: "A", name="other")
    assert Critic(harmlessness, other).fingerprint != base


def test_critic_option_validation(harmlessness, scripted_backend):
    with pytest.raises(ValueError, match="mode"):
        Critic(harmlessness, scripted_backend, mode="vibes")
    with pytest.raises(ValueError, match="between 1 and"):
        Critic(harmlessness, scripted_backend, principles=99)
    with pytest.raises(KeyError, match="no principle"):
        Critic(harmlessness, scripted_backend, principles=["nope"])
    with pytest.raises(ValueError, match="unique"):
        Panel([Critic(harmlessness, scripted_backend), Critic(harmlessness, scripted_backend)])


def test_normalize_and_parse_helpers():
    probs, mass = normalize([math.log(0.2), math.log(0.6)])
    assert [round(p, 6) for p in probs] == [0.25, 0.75] and math.isclose(mass, 0.8)
    assert parse_choice(" b. ", ["A", "B"]) == ("B", "")
    assert parse_choice("Verdict: A", ["A", "B"]) == ("A", "")


def test_planned_tasks_and_contexts_are_the_dataclasses_their_constructors_make():
    """The planner fills frozen dataclasses through __dict__ for speed (issue 17): what it
    makes must equal, hash and read like a normally constructed object, field for field."""
    import dataclasses

    from oversight import Critic
    from oversight.backends import FunctionBackend
    from oversight.constitution import builtin
    from oversight.critics._critic import JudgeContext, Task
    from oversight.data import Comparison

    seen = []
    critic = Critic(builtin("harmlessness"), FunctionBackend(lambda c: seen.append(c) or 0.5),
                    principles=2, seed=3)
    items = [Comparison(f"p{i}", (f"a{i}", f"b{i}", f"c{i}")) for i in range(3)]
    tasks = critic.tasks(items)
    assert len(tasks) == 3 * 2 * 6  # items x sampled principles x ordered pairs of 3
    for t in tasks:
        made = Task(t.item, t.principle, t.shown)
        assert type(t) is Task and t == made and hash(t) == hash(made)
        assert t.order == made.order == ",".join(map(str, t.shown))
        assert dataclasses.asdict(t) == dataclasses.asdict(made)
        with pytest.raises(dataclasses.FrozenInstanceError):
            t.order = "x"  # type: ignore[misc]
    critic.judge_tasks(tasks)
    assert len(seen) == len(tasks)
    for ctx, t in zip(seen, tasks):
        made = JudgeContext(t.item, t.shown, t.principle, "pairwise", ("A", "B"))
        assert type(ctx) is JudgeContext and ctx == made and hash(ctx) == hash(made)
        assert ctx.responses == tuple(t.item.responses[i] for i in t.shown)
        assert repr(ctx) == repr(made)


def test_two_choice_short_path_gives_the_general_paths_bytes():
    """finish_rows reads two-choice log-probs on a short path (issue 17); every row must equal
    what `_verdict_columns` gives, raw text byte for byte, on edge cases and random values."""
    import random

    from oversight.backends import ChoiceResult
    from oversight.constitution import builtin
    from oversight.critics._parse import normalize_pair

    rng = random.Random(7)
    specials = [0.0, -0.0, -math.inf, math.inf, math.nan, -800.0, -1e-300, -3.0]
    pairs = [(a, b) for a in specials for b in specials]
    pairs += [(math.log(p), math.log1p(-p)) for p in (rng.random() for _ in range(400))]
    pairs += [(rng.uniform(-40, 0), rng.uniform(-40, 0)) for _ in range(400)]
    results = [ChoiceResult(logprobs=lp) for lp in pairs]
    results += [ChoiceResult(logprobs=(-0.1, -2.0), top={"A": -0.1}),  # top tokens: general
                ChoiceResult(logprobs=(-0.1, -2.0), note="why"),
                ChoiceResult(error="boom"), ChoiceResult(text="Answer: B")]
    for mode in ("pairwise", "passfail"):
        for min_mass in (0.0, 0.3):
            critic = Critic(builtin("harmlessness"), FunctionBackend(lambda c: 0.5),
                            mode=mode, principles=1, min_choice_mass=min_mass)
            items = [Comparison(f"p{i}", ("a", "b")) for i in range(len(results))]
            tasks = [t for t in critic.tasks(items) if t.shown[0] == 0][:len(results)]
            prepared = critic.prepare(tasks)
            rows = critic.finish_rows(prepared, results)
            keys = tuple(f'"{c}"' for c in prepared.choices)
            n_short = 0
            for row, res in zip(rows, results):
                want = critic._verdict_columns(res, prepared.choices, keys)
                got = (row[12], row[13], row[14], row[15], row[17])  # value..raw, choice_mass
                assert repr(got) == repr(want), (res, got, want)
                n_short += res.logprobs is not None and not res.top and want[1] == "ok"
            assert n_short > 300  # the short path was taken, and agreed
    for a, b in pairs:  # normalize's two-value case: the same bits as the general loop
        finite = [x for x in (a, b) if math.isfinite(x)]
        if not finite:
            assert normalize_pair(a, b)[1] == 0.0
            continue
        top = max(finite)
        exps = [math.exp(x - top) if math.isfinite(x) else 0.0 for x in (a, b)]
        total = sum(exps)
        assert repr(normalize_pair(a, b)) == repr(([e / total for e in exps],
                                                   total * math.exp(top)))
