"""The transformers backend's batching and prefix-grouping rules, on plain lists (no model)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from oversight.backends._batching import (
    choice_sequences,
    length_batches,
    pack_groups,
    pack_layout,
    prefix_groups,
)


def test_length_batches_bucket_by_length_and_respect_budgets():
    lengths = [5, 300, 6, 290, 7, 310]
    batches = length_batches(lengths, tokens=4096, max_batch=16)
    assert batches == [[0, 2, 4], [3, 1, 5]]  # short with short, long with long, ascending
    # The token budget: 3 rows of 300 = 900 > 800, so the long rows split 2 + 1.
    assert length_batches([300, 300, 300], tokens=800, max_batch=16) == [[0, 1], [2]]
    assert length_batches([10] * 5, tokens=10_000, max_batch=2) == [[0, 1], [2, 3], [4]]
    # Slack (0, 0): any longer row starts a new batch, so no row is ever padded.
    assert length_batches([4, 5, 4, 5], tokens=100, max_batch=8, slack=(0.0, 0)) == [
        [0, 2], [1, 3]]
    # The context budget counts each row's prefix plus its own tokens: (100 + 4) * 2 > 200.
    assert length_batches([4, 4, 4], tokens=100, max_batch=8, context=[100] * 3,
                          context_tokens=200) == [[0], [1], [2]]
    assert length_batches([], tokens=10, max_batch=1) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 200), max_size=40), st.integers(1, 1000), st.integers(1, 8))
def test_length_batches_partition_and_never_exceed_budgets(lengths, tokens, max_batch):
    batches = length_batches(lengths, tokens=tokens, max_batch=max_batch)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= max_batch
        # a batch over the token budget holds one row only (a row is never split)
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= tokens
        shortest = min(lengths[i] for i in b)
        assert max(lengths[i] for i in b) <= 1.2 * shortest + 4


def test_prefix_groups_share_the_common_prefix_but_never_a_read_position():
    head = list(range(100, 140))  # 40 shared tokens
    seqs = [head + [1, 2, 3], head + [4, 5], [7] * 50, head + [1, 9, 9, 9]]
    positions = [[len(s) - 1] for s in seqs]
    groups = prefix_groups(seqs, positions, min_prefix=32)
    # Sorted, 0 and 3 share 41 tokens (head + [1]); 1 joins at 40 (>= 90% of 41).
    assert groups == [(0, [2]), (40, [0, 3, 1])]  # in sorted order: [7] * 50 first
    # A read position caps the prefix: sequence 0's logits are read at token 20.
    groups = prefix_groups(seqs, [[20], [41], [49], [43]], min_prefix=16)
    assert next(g for g in groups if g[0])[0] == 20
    # 1 shares only 40 tokens, below min_prefix=41: it stays alone; at 42 nothing is shared.
    assert prefix_groups(seqs, positions, min_prefix=41) == [(0, [2]), (41, [0, 3]), (0, [1])]
    assert all(p == 0 for p, _ in prefix_groups(seqs, positions, min_prefix=42))


def test_prefix_groups_close_when_the_prefix_would_shrink_by_over_ten_percent():
    a = list(range(100))
    seqs = [a + [1], a + [2], a[:80] + [200] * 30]  # the third shares only 80 of 100 tokens
    groups = prefix_groups(seqs, [[len(s) - 1] for s in seqs], min_prefix=32)
    assert groups == [(100, [0, 1]), (0, [2])]
    # With a slightly longer shared part (92 >= 90) it joins, and the prefix shrinks to 92.
    seqs[2] = a[:92] + [200] * 30
    assert prefix_groups(seqs, [[len(s) - 1] for s in seqs], min_prefix=32) == [
        (92, [0, 1, 2])]


def test_pack_groups_fill_a_budget_and_give_a_large_group_its_own_pack():
    assert pack_groups([30, 30, 50, 200, 10], budget=100) == [[0, 1], [2], [3], [4]]
    assert pack_groups([10, 10, 10], budget=100) == [[0, 1, 2]]


def test_pack_layout_puts_prefixes_first_and_positions_continue_each_prefix():
    seqs = [[1, 2, 3, 10, 11], [1, 2, 3, 12], [5, 6, 20, 21, 22], [5, 6, 23]]
    positions = [[4], [3], [3, 4], [2]]
    plan = pack_layout(seqs, positions, [(3, [0, 1]), (2, [2, 3])])
    assert plan.ids == [1, 2, 3, 5, 6, 10, 11, 12, 20, 21, 22, 23]
    assert plan.pos == [0, 1, 2, 0, 1, 3, 4, 3, 2, 3, 4, 2]
    assert plan.suffixes == 5
    assert plan.spans == [(0, 3, 5, 8), (3, 5, 8, 12)]
    assert plan.starts == [5, 7, 8, 11] and plan.lengths == [2, 1, 3, 1]
    assert plan.members == [0, 1, 2, 3]
    # Each read position lands on the same token it read in the unpacked sequence.
    for m, w in zip(plan.members, plan.wanted):
        assert [plan.ids[i] for i in w] == [seqs[m][q] for q in positions[m]]
        assert [plan.pos[i] for i in w] == positions[m]


def test_choice_sequences_share_a_sequence_for_choices_with_a_common_first_token():
    base = [7, 7]
    # "1" = [1], "10" = [1, 0], "2" = [2], "12" = [1, 2]
    groups = choice_sequences(base, [[1], [1, 0], [2], [1, 2]])
    # "1", "10" and "2" need only the prompt ("10" adds its first token), "12" diverges
    # from "10" after the shared first token, so it reuses [7, 7, 1] too.
    assert groups == [([7, 7, 1], [0, 1, 2, 3])]
    groups = choice_sequences(base, [[3, 4, 5], [3, 6, 5], [9]])
    assert groups == [([7, 7, 3, 4], [0, 2]), ([7, 7, 3, 6], [1])]
