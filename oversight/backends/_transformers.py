"""TransformersBackend: verdicts from choice-token log-probs, batched on CPU or GPU.

Prompts that share a long token prefix (one item and order judged under many principles, by
every critic on this model) are grouped. On CPU whole groups (prefix, then all its suffixes)
run packed in one sequence through cascade attention (`_cascade.py`), so each unique token is
computed once; elsewhere the prefix runs once and its suffixes run as rows on copies of its KV
cache. Other prompts are sorted by length and packed into batches under a token budget (left
padding, explicit position ids), so that padding waste stays small.
Multi-token choices (e.g. "10") are read off the same sequence as their first token.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from oversight.backends import _batching
from oversight.backends._allocator import tune_cpu_allocator
from oversight.backends._base import (
    BackendSpec,
    ChatPrompt,
    ChoiceRequest,
    ChoiceResult,
    Generation,
)
from oversight.backends._default_model import (
    DEFAULT,
    DEFAULT_MODEL,
    default_model_override,
    is_default,
)
from oversight.backends._threads import ThreadTuner, available_cpus, thread_candidates


class TransformersBackend:
    """Any Hugging Face causal LM (id or local path); `model=None` or "default" is the embedded
    default model, `DEFAULT_MODEL` (SmolLM2-135M-Instruct, Q4_1 GGUF).

    `num_threads`: torch intra-op threads on CPU. None (the default) measures: each forward
    pass runs with all available CPUs or fewer, whichever has been fastest lately, so cores
    shared with other processes do not stall every parallel region (`_threads.py`); the
    counts tried and their speeds are in `thread_tuners`. An int pins the count.
    """

    def __init__(self, model: str | Path | None = None, *, dtype: str = "float32",
                 device: str = "cpu", batch_tokens: int = 4096, max_batch: int = 16,
                 trust_remote_code: bool = False, num_threads: int | None = None,
                 model_obj: Any = None, tokenizer: Any = None, model_id: str | None = None,
                 top_k_raw: int = 5, prefix_sharing: bool = True, min_prefix: int = 32,
                 suffix_batch_tokens: int = 4096, suffix_max_batch: int = 64,
                 suffix_kv_tokens: int = 16384, cascade: bool = True,
                 suffix_slack: tuple[float, int] = (0.0, 0), tune_malloc: bool = True) -> None:
        self._source = DEFAULT if is_default(model) else str(model)
        if self._source == DEFAULT:
            override = default_model_override()  # OVERSIGHT_DEFAULT_MODEL keys its own cache
            self.model_id = model_id or (str(override) if override is not None
                                         else DEFAULT_MODEL)
        else:
            self.model_id = model_id or self._source
        self.dtype = dtype
        self.device = device
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        self.trust_remote_code = trust_remote_code
        self.num_threads = num_threads
        self.top_k_raw = top_k_raw
        self.prefix_sharing = prefix_sharing
        self.min_prefix = min_prefix
        self.suffix_batch_tokens = suffix_batch_tokens
        self.suffix_max_batch = suffix_max_batch
        self.suffix_kv_tokens = suffix_kv_tokens
        self.cascade = cascade
        self.suffix_slack: tuple[float, int] = (float(suffix_slack[0]), int(suffix_slack[1]))
        self.tune_malloc = tune_malloc
        self._model = model_obj
        self._tok = tokenizer
        self._live = model_obj is not None or tokenizer is not None
        self.load_seconds: float | None = None
        self._signature_cache: dict[str, bool] = {}
        # one tuner per kind of forward pass ("packed", "batch", "prefix", "suffix"): their
        # seconds per token differ, so they are not compared with each other
        self.thread_tuners: dict[str, ThreadTuner] = {}

    # -- loading ---------------------------------------------------------------------------
    def fingerprint(self) -> str:
        return f"transformers:{self.model_id}:{self.dtype}"

    def spec(self) -> BackendSpec:
        """How to rebuild this backend on a Ray actor (model id or path, never the weights)."""
        if self._live:
            raise ValueError(f"TransformersBackend({self.model_id!r}) was built from a live "
                             "model object (model_obj=/tokenizer=), which cannot be shipped to"
                             " an actor; build it from a model id or path: "
                             "TransformersBackend('<id or path>')")
        return BackendSpec(TransformersBackend, dict(
            model=None if self._source == DEFAULT else self._source, dtype=self.dtype,
            device=self.device, batch_tokens=self.batch_tokens, max_batch=self.max_batch,
            trust_remote_code=self.trust_remote_code, num_threads=self.num_threads,
            model_id=self.model_id, top_k_raw=self.top_k_raw,
            prefix_sharing=self.prefix_sharing, min_prefix=self.min_prefix,
            suffix_batch_tokens=self.suffix_batch_tokens,
            suffix_max_batch=self.suffix_max_batch, suffix_kv_tokens=self.suffix_kv_tokens,
            cascade=self.cascade, suffix_slack=self.suffix_slack, tune_malloc=self.tune_malloc))

    def load(self) -> None:
        if self.tune_malloc and str(self.device).startswith("cpu"):
            tune_cpu_allocator()
        if self._model is not None and self._tok is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(self.num_threads or available_cpus())
        t0 = time.perf_counter()
        path: str = self._source
        if path == DEFAULT:
            from oversight.backends._default_model import default_model_path

            path = str(default_model_path())
        dtype = getattr(torch, self.dtype)
        self._tok = AutoTokenizer.from_pretrained(path, trust_remote_code=self.trust_remote_code)
        self._model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, trust_remote_code=self.trust_remote_code
        ).to(self.device)  # type: ignore[arg-type]
        self._model.eval()
        self.load_seconds = time.perf_counter() - t0

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tok

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    # -- prompts ---------------------------------------------------------------------------
    def render(self, prompt: ChatPrompt) -> list[int]:
        """Token ids of a chat prompt with the generation header and assistant prefix."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(list(prompt.messages), tokenize=False,
                                           add_generation_prompt=True)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in prompt.messages)
            text += "assistant: "
        ids: list[int] = tok(text, add_special_tokens=False)["input_ids"]
        if prompt.assistant_prefix:
            ids = ids + tok(prompt.assistant_prefix, add_special_tokens=False)["input_ids"]
        return ids

    def _pad_id(self) -> int:
        """The id that fills padded positions (never attended to, so any id would do)."""
        pad = self.tokenizer.pad_token_id
        return 0 if pad is None else pad

    def _choice_ids(self, choice: str) -> list[int]:
        ids: list[int] = self.tokenizer(choice, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"choice {choice!r} encodes to no tokens")
        return ids

    def _batches(self, lengths: Sequence[int], *, tokens: int | None = None,
                 max_batch: int | None = None, context: Sequence[int] | None = None,
                 context_tokens: int | None = None, slack: tuple[float, int] = (0.2, 4)
                 ) -> list[list[int]]:
        """`_batching.length_batches` under this backend's budgets unless given."""
        return _batching.length_batches(
            lengths, tokens=self.batch_tokens if tokens is None else tokens,
            max_batch=self.max_batch if max_batch is None else max_batch, context=context,
            context_tokens=context_tokens, slack=slack)

    def _forward_last(self, seqs: list[list[int]], positions: list[list[int]]) -> Any:
        """Log-softmax rows at the requested positions of each (left-padded) sequence."""
        import torch

        pad = self._pad_id()
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, width - len(s):] = torch.tensor(s)
            mask[r, width - len(s):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        wanted = [[width - len(s) + p for p in positions[r]] for r, s in enumerate(seqs)]
        keep, col = self._keep(wanted)
        with self._threads("batch", ids.numel()), torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                position_ids=pos.to(self.device), **keep).logits
        return [torch.log_softmax(logits[r, [col(p) for p in wanted[r]]].float(), dim=-1)
                for r in range(len(seqs))]

    def _keep(self, wanted: list[list[int]]) -> tuple[dict[str, Any], Any]:
        """`logits_to_keep` for only the positions that are read, and a position -> column map.

        The LM head over a 49k vocabulary costs about a quarter of a 135M model's forward
        pass per token; computing it only where a verdict is read removes that cost.
        """
        import torch

        if not self._accepts("logits_to_keep"):
            return {}, lambda p: p
        union = sorted({p for w in wanted for p in w})
        column = {p: c for c, p in enumerate(union)}
        return ({"logits_to_keep": torch.tensor(union, device=self.device)},
                lambda p: column[p])

    def _accepts(self, name: str) -> bool:
        if name not in self._signature_cache:
            params = inspect.signature(self.model.forward).parameters
            self._signature_cache[name] = name in params
        return self._signature_cache[name]

    @contextlib.contextmanager
    def _threads(self, kind: str, tokens: int) -> Iterator[None]:
        """Run one forward pass of `tokens` tokens with the thread count its tuner chooses
        (CPU, `num_threads=None`), record its time, and restore torch's previous count."""
        if self.num_threads is not None or not str(self.device).startswith("cpu"):
            yield
            return
        import torch

        tuner = self.thread_tuners.get(kind)
        if tuner is None:
            tuner = self.thread_tuners[kind] = ThreadTuner(thread_candidates(available_cpus()))
        threads = tuner.choose()
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            t0 = time.perf_counter()
            yield
            seconds = time.perf_counter() - t0
        finally:
            torch.set_num_threads(before)
        tuner.record(threads, tokens, seconds)

    # -- the two calls ---------------------------------------------------------------------
    def _rows(self, seqs: list[list[int]], positions: list[list[int]]) -> list[Any]:
        """Log-softmax rows for every sequence, sharing prefixes when enabled."""
        rows: list[Any] = [None] * len(seqs)
        singles = list(range(len(seqs)))
        if self.prefix_sharing:
            groups = self._prefix_groups(seqs, positions)
            singles = [m for p, members in groups if p == 0 for m in members]
            shared = [g for g in groups if g[0] > 0]
            if shared and self._cascade():
                for m, r in self._forward_packed(seqs, positions, shared).items():
                    rows[m] = r
            else:
                for batch in self._batches([p for p, _ in shared]):
                    rows_of = self._forward_shared(seqs, positions, [shared[b] for b in batch])
                    for m, r in rows_of.items():
                        rows[m] = r
        for batch in self._batches([len(seqs[i]) for i in singles]):
            idx = [singles[b] for b in batch]
            for m, r in zip(idx, self._forward_last([seqs[i] for i in idx],
                                                    [positions[i] for i in idx])):
                rows[m] = r
        return rows

    def _prefix_groups(self, seqs: list[list[int]], positions: list[list[int]]
                       ) -> list[tuple[int, list[int]]]:
        """`_batching.prefix_groups` with this backend's `min_prefix`."""
        return _batching.prefix_groups(seqs, positions, self.min_prefix)

    def _forward_shared(self, seqs: list[list[int]], positions: list[list[int]],
                        groups: list[tuple[int, list[int]]]) -> dict[int, Any]:
        """Prefixes of several groups in one forward, then all their suffixes on its KV cache.

        The path where cascade attention is not available (GPUs, other attention kernels):
        1. The groups' shared prefixes run as one left-padded batch with `use_cache`.
        2. Every suffix becomes a row, bucketed by length (one exact length per bucket by
           default: one principle's question has the same length under every item), with a
           copy of its group's prefix KV in a cache and a 4D mask (`_suffixes_cached`).
        Position ids of each suffix continue from its group's prefix length, so a suffix is
        computed exactly as if it followed its prefix alone; it attends to its group's real
        prefix tokens and to its own earlier tokens, never to padding or other suffixes.
        """
        import torch

        pad = self._pad_id()
        width = max(p for p, _ in groups)
        ids = torch.full((len(groups), width), pad, dtype=torch.long)
        seen = torch.zeros((len(groups), width), dtype=torch.bool)
        for g, (p, members) in enumerate(groups):
            ids[g, width - p:] = torch.tensor(seqs[members[0]][:p])
            seen[g, width - p:] = True
        pos = (seen.long().cumsum(-1) - 1).clamp(min=0)
        first = {"logits_to_keep": 1} if self._accepts("logits_to_keep") else {}
        with self._threads("prefix", ids.numel()), torch.inference_mode():
            out = self.model(input_ids=ids.to(self.device), attention_mask=seen.long().to(
                self.device), position_ids=pos.to(self.device), use_cache=True, **first)
        prefix_cache = getattr(out, "cache", None) or out.past_key_values
        kv = [(layer.keys, layer.values) for layer in prefix_cache.layers]
        del out, prefix_cache
        return self._suffixes_cached(seqs, positions, groups, kv, seen)

    def _cascade(self) -> bool:
        """Whether groups can run packed through cascade attention (see `_cascade.py`)."""
        from oversight.backends import _cascade

        return self.cascade and _cascade.supported(self.model, self.device)

    def _forward_packed(self, seqs: list[list[int]], positions: list[list[int]],
                        groups: list[tuple[int, list[int]]]) -> dict[int, Any]:
        """Whole groups (a prefix and all its suffixes) packed into one sequence per forward.

        Every unique token passes through the model once, with no padding and no KV cache;
        `_cascade.cascade_attention` lets each suffix attend to its group's prefix and to its
        own earlier tokens. A pack holds its groups' prefixes, then all their suffixes, up to
        `suffix_batch_tokens` tokens (a larger group gets a pack of its own). Position ids
        restart at 0 for each prefix and continue through each of its suffixes, so every
        suffix is computed exactly as if it followed its prefix alone.
        """
        import torch

        from oversight.backends import _cascade

        sizes = [p + sum(len(seqs[m]) - p for m in members) for p, members in groups]
        packs = _batching.pack_groups(sizes, self.suffix_batch_tokens)
        _cascade.register()
        config = self.model.config
        dev = self.device
        rows: dict[int, Any] = {}
        for pack in packs:
            # Every prefix of the pack first, then every suffix (one contiguous block).
            plan = _batching.pack_layout(seqs, positions, [groups[g] for g in pack])
            ids, pos, wanted = plan.ids, plan.pos, plan.wanted
            size = torch.tensor(plan.lengths)
            step = torch.arange(int(size.max()))
            real = step[None, :] < size[:, None]
            gather = (torch.tensor(plan.starts)[:, None]
                      + torch.minimum(step[None, :], size[:, None] - 1))
            layout = _cascade.Packed(groups=plan.spans, suffixes=plan.suffixes,
                                     gather=gather.to(dev), real=real.to(dev))
            keep, col = self._keep(wanted)
            with _cascade.SWITCH:  # one switched forward at a time (threads share models)
                before = config._attn_implementation
                config._attn_implementation = _cascade.NAME
                try:
                    with self._threads("packed", len(ids)), torch.inference_mode():
                        logits = self.model(
                            input_ids=torch.tensor([ids], device=dev),
                            position_ids=torch.tensor([pos], device=dev),
                            # a 4D mask is passed through untouched; the layout replaces it
                            attention_mask=torch.ones((1, 1, 1, 1), dtype=torch.bool,
                                                      device=dev),
                            use_cache=False, oversight_packed=layout, **keep).logits
                finally:
                    config._attn_implementation = before
            for m, w in zip(plan.members, wanted):
                rows[m] = torch.log_softmax(logits[0, [col(q) for q in w]].float(), dim=-1)
        return rows

    def _suffixes_cached(self, seqs: list[list[int]], positions: list[list[int]],
                         groups: list[tuple[int, list[int]]], kv: list[tuple[Any, Any]],
                         seen: Any) -> dict[int, Any]:
        """Suffix rows, bucketed by length, each on a cache holding its group's prefix KV."""
        import torch

        pad = self._pad_id()
        width = seen.shape[1]
        work = [(g, m) for g, (_, members) in enumerate(groups) for m in members]
        lengths = [len(seqs[m]) - groups[g][0] for g, m in work]
        rows: dict[int, Any] = {}
        for batch in self._batches(lengths, tokens=self.suffix_batch_tokens,
                                   max_batch=self.suffix_max_batch,
                                   context=[width] * len(work),
                                   context_tokens=self.suffix_kv_tokens, slack=self.suffix_slack):
            n = max(lengths[i] for i in batch)
            owner = torch.tensor([work[i][0] for i in batch])
            suffix = torch.full((len(batch), n), pad, dtype=torch.long)
            own = torch.zeros((len(batch), n, n), dtype=torch.bool)
            spos = torch.zeros((len(batch), n), dtype=torch.long)
            causal = torch.tril(torch.ones((n, n), dtype=torch.bool))
            wanted = []
            for r, i in enumerate(batch):
                g, m = work[i]
                p, off = groups[g][0], n - lengths[i]
                suffix[r, off:] = torch.tensor(seqs[m][p:])
                own[r, :, off:] = causal[:, off:]
                spos[r] = (p - off + torch.arange(n)).clamp(min=0)
                wanted.append([off + q - p for q in positions[m]])
            keep, col = self._keep(wanted)
            logits = self._suffix_cached(suffix, spos, own, owner, seen, kv, keep)
            for r, i in enumerate(batch):
                rows[work[i][1]] = torch.log_softmax(
                    logits[r, [col(q) for q in wanted[r]]].float(), dim=-1)
        return rows

    def _suffix_cached(self, suffix: Any, spos: Any, own: Any, owner: Any, seen: Any,
                       kv: list[tuple[Any, Any]], keep: dict[str, Any]) -> Any:
        """Suffix rows on a KV cache holding each row's copy of its group's prefix."""
        import torch
        from transformers.cache_utils import DynamicCache

        dev = self.device
        allow = torch.cat([seen[owner][:, None, :].expand(-1, own.shape[1], -1), own], dim=-1)
        mask = allow[:, None].to(dev)
        if getattr(self.model.config, "_attn_implementation", "sdpa") == "eager":
            # eager attention adds a float mask; sdpa takes the boolean one
            mask = torch.zeros(mask.shape, dtype=self.model.dtype, device=dev).masked_fill(
                ~mask, torch.finfo(self.model.dtype).min)
        cache = DynamicCache(ddp_cache_data=[
            (k.index_select(0, owner.to(k.device)), v.index_select(0, owner.to(v.device)))
            for k, v in kv])
        kv_arg = "cache" if self._accepts("cache") else "past_key_values"
        with self._threads("suffix", suffix.numel()), torch.inference_mode():
            return self.model(input_ids=suffix.to(dev), attention_mask=mask,
                              position_ids=spos.to(dev), use_cache=True, **{kv_arg: cache},
                              **keep).logits

    def next_token_logprobs(self, prompts: list[ChatPrompt]) -> list[Any]:
        """Log-softmax over the vocabulary for the token after each prompt."""
        seqs = [self.render(p) for p in prompts]
        return [r[0] for r in self._rows(seqs, [[len(s) - 1] for s in seqs])]

    def score_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        if not requests:
            return []
        t0 = time.perf_counter()
        prompts = [self.render(r.prompt) for r in requests]
        seqs: list[list[int]] = []
        positions: list[list[int]] = []
        spans = []
        for i, req in enumerate(requests):
            choice_ids = [self._choice_ids(c) for c in req.choices]
            # One sequence per request for choices sharing tokens (see choice_sequences).
            base = prompts[i]
            groups = _batching.choice_sequences(base, choice_ids)
            spans.append((i, choice_ids, groups, len(seqs)))
            for g_seq, _ in groups:
                seqs.append(g_seq)
                positions.append(list(range(len(base) - 1, len(g_seq))))
        rows = self._rows(seqs, positions)
        elapsed = time.perf_counter() - t0
        n_tok = sum(len(s) for s in seqs)
        results = []
        for i, choice_ids, groups, first in spans:
            lps = [0.0] * len(choice_ids)
            for g, (_, members) in enumerate(groups):
                row = rows[first + g]
                for c in members:
                    lps[c] = float(sum(row[t, tok] for t, tok in enumerate(choice_ids[c])))
            head = rows[first][0]
            top_vals, top_idx = head.topk(self.top_k_raw)
            top = {self.tokenizer.decode([int(t)]): round(math.exp(float(v)), 6)
                   for v, t in zip(top_vals, top_idx)}
            share = sum(len(g) for g, _ in groups) / max(n_tok, 1)
            results.append(ChoiceResult(logprobs=tuple(lps), tokens=len(prompts[i]),
                                        latency_s=elapsed * share, top=top,
                                        choice_tokens=tuple(len(c) for c in choice_ids)))
        return results

    def generate(self, prompts: list[ChatPrompt], *, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0) -> list[Generation]:
        import torch

        tok = self.tokenizer
        rendered = [self.render(p) for p in prompts]
        out: list[Generation | None] = [None] * len(prompts)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        for batch in self._batches([len(r) + max_new_tokens for r in rendered]):
            t0 = time.perf_counter()
            width = max(len(rendered[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, i in enumerate(batch):
                ids[r, width - len(rendered[i]):] = torch.tensor(rendered[i])
                mask[r, width - len(rendered[i]):] = 1
            kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad}
            if temperature > 0:
                torch.manual_seed(seed)
                kwargs.update(do_sample=True, temperature=temperature)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.inference_mode():
                gen = self.model.generate(input_ids=ids.to(self.device),
                                          attention_mask=mask.to(self.device), **kwargs)
            elapsed = time.perf_counter() - t0
            for r, i in enumerate(batch):
                new = gen[r, width:].tolist()
                if tok.eos_token_id in new:
                    new = new[:new.index(tok.eos_token_id)]
                out[i] = Generation(text=tok.decode(new, skip_special_tokens=True),
                                    prompt_tokens=len(rendered[i]), completion_tokens=len(new),
                                    latency_s=elapsed / len(batch))
        return [g for g in out if g is not None]
