"""Pure batching and prefix-grouping logic for the transformers backend: lists of token ids in,
index plans out. No model and no torch here, so every rule is tested on plain lists.

* `length_batches`: length bucketing under a token budget (bounded padding);
* `prefix_groups`: sequences with a long common token prefix, whose prefix runs once;
* `pack_groups` / `pack_layout`: whole groups (prefix, then its suffixes) packed into one
  sequence for cascade attention;
* `choice_sequences`: one sequence per request for multi-token choices that share tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Group = tuple[int, list[int]]  # (shared prefix length, member sequence indices)


def length_batches(lengths: Sequence[int], *, tokens: int, max_batch: int,
                   context: Sequence[int] | None = None, context_tokens: int | None = None,
                   slack: tuple[float, int] = (0.2, 4)) -> list[list[int]]:
    """Indices grouped by similar length under a token budget (length bucketing).

    A batch holds at most `max_batch` rows and `tokens` padded tokens (longest row x rows).
    `context` (per index) counts tokens each row attends to besides its own, such as a
    cached prefix; `context_tokens` caps their sum (plus the rows' own lengths) per batch (the
    KV memory a batch holds). `slack` = (fraction, tokens): a batch is cut when the next row is
    longer than its shortest row by more than that, which bounds the padding.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    held = 0
    for i in order:
        # Sorted ascending, so lengths[i] is the longest so far; cut the batch when a
        # budget is reached or when padding the shortest member would exceed the slack.
        extra = 0 if context is None else context[i] + lengths[i]
        if current and (lengths[i] * (len(current) + 1) > tokens
                        or len(current) >= max_batch
                        or lengths[i] > (1 + slack[0]) * lengths[current[0]] + slack[1]
                        or (context_tokens is not None and held + extra > context_tokens)):
            batches.append(current)
            current, held = [], 0
        current.append(i)
        held += extra
    if current:
        batches.append(current)
    return batches


def prefix_groups(seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]],
                  min_prefix: int) -> list[Group]:
    """Groups of sequences with a long common token prefix, and that prefix's length.

    Sorting the token sequences puts prompts that share a prefix (same item and order,
    different principle or critic) next to each other; a group closes when the next
    sequence would shorten its common prefix by more than 10%. The prefix never covers a
    position whose logits are read (`positions`), and is at least `min_prefix` tokens.
    Groups of one get prefix length 0 (no sharing). Every index is in exactly one group.
    """
    order = sorted(range(len(seqs)), key=lambda i: list(seqs[i]))
    groups: list[Group] = []
    for i in order:
        if groups:
            cur, members = groups[-1]
            first = seqs[members[0]]
            limit = min(len(first), len(seqs[i]))
            lcp = 0
            while lcp < limit and first[lcp] == seqs[i][lcp]:
                lcp += 1
            lcp = min(lcp, positions[i][0], cur if len(members) > 1 else lcp)
            if len(members) == 1:
                lcp = min(lcp, positions[members[0]][0])
            if lcp >= min_prefix and (len(members) == 1 or lcp >= 0.9 * cur):
                groups[-1] = (lcp, members + [i])
                continue
        groups.append((0, [i]))
    return [(p if len(m) > 1 else 0, m) for p, m in groups]


def pack_groups(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive groups packed under `budget` tokens each; a larger group gets its own pack."""
    packs: list[list[int]] = [[]]
    held = 0
    for g, size in enumerate(sizes):
        if packs[-1] and held + size > budget:
            packs.append([])
            held = 0
        packs[-1].append(g)
        held += size
    return packs


@dataclass
class PackLayout:
    """One packed sequence: every group's prefix first, then every suffix in one block.

    ids, pos:  token ids and position ids of the packed sequence (positions restart at 0 for
               each prefix and continue through each of its suffixes);
    suffixes:  index where the suffix block starts;
    spans:     (prefix_start, prefix_end, suffix_start, suffix_end) per group;
    starts, lengths: where each suffix starts in the sequence, and its length;
    wanted:    per suffix, the packed indices whose logits are read;
    members:   per suffix, the sequence index it came from.
    """

    ids: list[int]
    pos: list[int]
    suffixes: int
    spans: list[tuple[int, int, int, int]]
    starts: list[int]
    lengths: list[int]
    wanted: list[list[int]]
    members: list[int]


def pack_layout(seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]],
                groups: Sequence[Group]) -> PackLayout:
    """The packed sequence for `groups` (each with a prefix > 0 shared by all its members)."""
    ids: list[int] = []
    pos: list[int] = []
    for p, members in groups:
        ids += seqs[members[0]][:p]
        pos += range(p)
    first = len(ids)
    spans: list[tuple[int, int, int, int]] = []
    starts: list[int] = []
    lengths: list[int] = []
    wanted: list[list[int]] = []
    order: list[int] = []
    prefix_start = 0
    for p, members in groups:
        suffix_start = len(ids)
        for m in members:
            starts.append(len(ids))
            lengths.append(len(seqs[m]) - p)
            wanted.append([len(ids) + q - p for q in positions[m]])
            order.append(m)
            ids += seqs[m][p:]
            pos += range(p, len(seqs[m]))
        spans.append((prefix_start, prefix_start + p, suffix_start, len(ids)))
        prefix_start += p
    return PackLayout(ids, pos, first, spans, starts, lengths, wanted, order)


def choice_sequences(base: Sequence[int], choice_ids: Sequence[Sequence[int]]
                     ) -> list[tuple[list[int], list[int]]]:
    """(sequence, choice indices) read off one sequence: the prompt plus a choice's tokens but
    its last, so that multi-token choices sharing a first token ("1", "10") share a sequence.
    Choices that diverge after the first token get sequences of their own."""
    groups: list[tuple[list[int], list[int]]] = []
    for c, cids in enumerate(choice_ids):
        seq = list(base) + list(cids[:-1])
        for g_seq, members in groups:
            if g_seq[:len(seq)] == seq or seq[:len(g_seq)] == g_seq:
                if len(seq) > len(g_seq):
                    g_seq[:] = seq
                members.append(c)
                break
        else:
            groups.append((list(seq), [c]))
    return groups
