"""Cascade attention over packed suffixes that continue shared, cached prefixes (CPU).

The suffixes (one per principle question) of many items run as ONE packed sequence: every
token of every suffix side by side, with no padding, so the linear layers, which are most of
the cost, see one large matrix. Attention is then computed per token in two parts that
softmax separately, and merged exactly:

- over its group's prefix keys, read where the prefix forward left them (no copy, no mask):
  all suffix tokens of one group form one contiguous span, and the query heads that share a
  key/value head are folded into the query length, so one fused call covers a whole group;
- over its own suffix's keys, causally: the suffixes are gathered into short right-padded rows
  for this part only (they are ~60 tokens, so this part is small).

torch's fused CPU flash kernel returns each part's output with the log-sum-exp of its scores,
and out = o_prefix * s + o_suffix * (1 - s), s = sigmoid(lse_prefix - lse_suffix).

The function is registered with transformers' AttentionInterface under `NAME`. The backend
switches a model to it for the duration of a suffix forward and hands it the layout through
the forward's keyword arguments, which transformers passes on to every attention layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAME = "oversight_cascade"


@dataclass
class PackedSuffixes:
    """Where each packed suffix token belongs.

    layers: per decoder layer, per group, the prefix (keys, values), each (kv_heads, p, d).
    spans:  (start, end, group): contiguous token spans of the packed sequence whose tokens
            all continue that group's prefix.
    gather: (rows, n) packed index of each suffix's j-th token (padding repeats a real index).
    real:   (rows, n) which entries of `gather` are real tokens; row-major order over the real
            entries is the packed order.
    """

    layers: list[list[tuple[Any, Any]]]
    spans: list[tuple[int, int, int]]
    gather: Any
    real: Any


def cascade_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                      scaling: float | None = None, dropout: float = 0.0,
                      oversight_suffixes: PackedSuffixes | None = None, **kwargs: Any
                      ) -> tuple[Any, None]:
    """Attention of packed suffix tokens over (own group's prefix, own suffix).

    Shapes follow transformers: query (1, heads, T, d), key and value (1, kv_heads, T, d);
    returns (1, T, heads, d). `attention_mask` is ignored: the layout says everything.
    """
    import torch

    if oversight_suffixes is None:  # an ordinary forward while the model is switched over
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    layout = oversight_suffixes
    _, heads, total, d = query.shape
    kv_heads = key.shape[1]
    per_kv = heads // kv_heads
    q = query[0]

    # Part 1: each group's span of query tokens against that group's prefix, in place.
    out1 = q.new_empty((heads, total, d))
    lse1 = torch.empty((heads, total), dtype=torch.float32)
    prefix = layout.layers[module.layer_idx]
    for start, end, group in layout.spans:
        t = end - start
        pk, pv = prefix[group]
        folded = q[:, start:end].reshape(kv_heads, per_kv * t, d)
        o, lse = flash(folded[None], pk[None], pv[None], 0.0, False, scale=scaling)
        out1[:, start:end] = o[0].reshape(heads, t, d)
        lse1[:, start:end] = lse[0].reshape(heads, t)

    # Part 2: each suffix against its own tokens, causally, on right-padded rows (padding
    # sits after every real token, so causality alone keeps it out of real tokens' view).
    rows_q = q[:, layout.gather].transpose(0, 1)                  # (rows, heads, n, d)
    rows_k = key[0][:, layout.gather].transpose(0, 1)             # (rows, kv_heads, n, d)
    rows_v = value[0][:, layout.gather].transpose(0, 1)
    if per_kv > 1:
        rows_k = rows_k.repeat_interleave(per_kv, dim=1)
        rows_v = rows_v.repeat_interleave(per_kv, dim=1)
    o2, lse2 = flash(rows_q, rows_k, rows_v, 0.0, True, scale=scaling)
    out2 = o2.transpose(0, 1)[:, layout.real]                     # (heads, T, d), packed order
    lse2 = lse2.transpose(0, 1)[:, layout.real]

    share = torch.sigmoid(lse1 - lse2).unsqueeze(-1).to(out1.dtype)
    return torch.lerp(out2, out1, share).transpose(0, 1)[None], None


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
