"""Cascade attention: prefixes and the suffixes that continue them, packed in one sequence.

One item and order judged under many principles is one shared prefix (chat header,
conversation, responses) followed by many short suffixes (the principle questions). Here a
whole group -- its prefix, then all its suffixes -- and several groups side by side form ONE
packed sequence with no padding, so the linear layers (most of the cost) see one large
matrix and every unique token passes through the model exactly once. No KV cache is kept:
within each layer the suffixes read their prefix's keys and values straight from the same
forward.

Attention per group, in each layer:
- prefix tokens: causal self-attention over the prefix;
- suffix tokens: two parts that softmax separately and are merged exactly,
  1. over the group's prefix keys; the query heads sharing one key/value head are folded
     into the query length, so one fused call covers all of the group's suffix tokens;
  2. over the suffix's own keys, causally, on short right-padded rows gathered for this part.
  torch's fused CPU flash kernel returns each part's output with the log-sum-exp of its
  scores, and out = o1 * s + o2 * (1 - s), s = sigmoid(lse1 - lse2).

The function is registered with transformers' AttentionInterface under `NAME`. The backend
switches a model to it for the duration of a packed forward and hands it the layout through
the forward's keyword arguments, which transformers passes on to every attention layer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

NAME = "oversight_cascade"
SWITCH = threading.Lock()  # held while a model's attention is switched to NAME


@dataclass
class Packed:
    """Where each token of a packed sequence belongs.

    The sequence holds every group's prefix first, then every suffix, so that the suffix
    tokens form one block starting at `suffixes` (their merge then works on views).
    groups: (prefix_start, prefix_end, suffix_start, suffix_end) per group; its suffixes'
            tokens are contiguous.
    gather: (rows, n) packed index of each suffix's j-th token (padding repeats a real index).
    real:   (rows, n) which entries of `gather` are real tokens; their row-major order is the
            packed order of the suffix block.
    """

    groups: list[tuple[int, int, int, int]]
    suffixes: int
    gather: Any
    real: Any


def cascade_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                      scaling: float | None = None, dropout: float = 0.0,
                      oversight_packed: Packed | None = None, **kwargs: Any
                      ) -> tuple[Any, None]:
    """Attention for a packed sequence of (prefix, suffixes) groups.

    Shapes follow transformers: query (1, heads, T, d), key and value (1, kv_heads, T, d);
    returns (1, T, heads, d). `attention_mask` is ignored: the layout says everything.
    """
    import torch

    if oversight_packed is None:  # an ordinary forward while the model is switched over
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    layout = oversight_packed
    _, heads, total, d = query.shape
    kv_heads = key.shape[1]
    per_kv = heads // kv_heads
    q, k, v = query[0], key[0], value[0]

    out = q.new_empty((heads, total, d))
    first = layout.suffixes
    lse1 = torch.empty((heads, total - first), dtype=torch.float32)
    for start, mid, s_start, s_end in layout.groups:
        pk, pv = k[:, start:mid], v[:, start:mid]
        # The prefix: causal self-attention (it is short next to the suffixes, so repeating
        # its keys for grouped-query heads costs little).
        rk, rv = pk, pv
        if per_kv > 1:
            rk = pk.repeat_interleave(per_kv, dim=0)
            rv = pv.repeat_interleave(per_kv, dim=0)
        o, _ = flash(q[None, :, start:mid], rk[None], rv[None], 0.0, True, scale=scaling)
        out[:, start:mid] = o[0]
        # Part 1 of the suffixes: every suffix token of the group against the prefix.
        t = s_end - s_start
        folded = q[:, s_start:s_end].reshape(kv_heads, per_kv * t, d)
        o, lse = flash(folded[None], pk[None], pv[None], 0.0, False, scale=scaling)
        out[:, s_start:s_end] = o[0].reshape(heads, t, d)
        lse1[:, s_start - first:s_end - first] = lse[0].reshape(heads, t)

    # Part 2: each suffix against its own tokens, causally, on right-padded rows (padding
    # sits after every real token, so causality alone keeps it out of real tokens' view).
    rows_q = q[:, layout.gather].transpose(0, 1)                  # (rows, heads, n, d)
    rows_k = k[:, layout.gather].transpose(0, 1)                  # (rows, kv_heads, n, d)
    rows_v = v[:, layout.gather].transpose(0, 1)
    if per_kv > 1:
        rows_k = rows_k.repeat_interleave(per_kv, dim=1)
        rows_v = rows_v.repeat_interleave(per_kv, dim=1)
    o2, lse2 = flash(rows_q, rows_k, rows_v, 0.0, True, scale=scaling)
    o2 = o2.transpose(0, 1)[:, layout.real]                       # (heads, suffix tokens, d)
    lse2 = lse2.transpose(0, 1)[:, layout.real]
    share = torch.sigmoid(lse1 - lse2).unsqueeze(-1).to(out.dtype)
    block = out[:, first:]
    block.copy_(torch.lerp(o2, block, share))
    return out.transpose(0, 1)[None], None


def register() -> None:
    """Make `NAME` a known attention implementation (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, cascade_attention)


def supported(model: Any, device: str) -> bool:
    """Whether `model` routes attention through transformers' AttentionInterface on CPU."""
    import torch

    config = model.config
    return (str(device).startswith("cpu")
            and bool(getattr(model, "_supports_attention_backend", False))
            # plain softmax attention over every earlier token, nothing this module ignores
            and not getattr(config, "sliding_window", None)
            and not getattr(config, "attn_logit_softcapping", None)
            and all(t == "full_attention" for t in (getattr(config, "layer_types", None) or []))
            and getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
            and hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")
            and model.dtype in (torch.float32, torch.bfloat16))
