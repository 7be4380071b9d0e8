"""TransformersBackend: verdicts from choice-token log-probs, batched on CPU or GPU.

Prompts are chat-templated, sorted by length and packed into batches under a token budget
(left padding, explicit position ids), so that padding waste stays small. Single-token choices
need one forward pass per prompt; multi-token choices (e.g. "10") get one extra pass.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from oversight.backends._base import ChatPrompt, ChoiceRequest, ChoiceResult, Generation

DEFAULT = "default"


class TransformersBackend:
    """Any Hugging Face causal LM (id or local path); `model=None` is the embedded SmolLM2."""

    def __init__(self, model: str | Path | None = None, *, dtype: str = "float32",
                 device: str = "cpu", batch_tokens: int = 4096, max_batch: int = 16,
                 trust_remote_code: bool = False, num_threads: int | None = None,
                 model_obj: Any = None, tokenizer: Any = None, model_id: str | None = None,
                 top_k_raw: int = 5) -> None:
        self._source = DEFAULT if model is None else str(model)
        if self._source == DEFAULT:
            self.model_id = model_id or "SmolLM2-135M-Instruct-Q4_1"
        else:
            self.model_id = model_id or self._source
        self.dtype = dtype
        self.device = device
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        self.trust_remote_code = trust_remote_code
        self.num_threads = num_threads
        self.top_k_raw = top_k_raw
        self._model = model_obj
        self._tok = tokenizer
        self.load_seconds: float | None = None

    # -- loading ---------------------------------------------------------------------------
    def fingerprint(self) -> str:
        return f"transformers:{self.model_id}:{self.dtype}"

    def load(self) -> None:
        if self._model is not None and self._tok is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(self.num_threads or os.cpu_count() or 1)
        t0 = time.perf_counter()
        path: str = self._source
        if path == DEFAULT:
            from oversight.backends._default_model import default_model_path

            path = str(default_model_path())
        dtype = getattr(torch, self.dtype)
        self._tok = AutoTokenizer.from_pretrained(path, trust_remote_code=self.trust_remote_code)
        self._model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, trust_remote_code=self.trust_remote_code).to(self.device)
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

    def _choice_ids(self, choice: str) -> list[int]:
        ids: list[int] = self.tokenizer(choice, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"choice {choice!r} encodes to no tokens")
        return ids

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped by similar length under the token budget (length bucketing)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            # Sorted ascending, so lengths[i] is the longest so far; cut the batch when the
            # token budget is reached or when padding the shortest member would waste >20%.
            if current and (lengths[i] * (len(current) + 1) > self.batch_tokens
                            or len(current) >= self.max_batch
                            or lengths[i] > 1.2 * lengths[current[0]] + 16):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _forward_last(self, seqs: list[list[int]], positions: list[list[int]]) -> Any:
        """Log-softmax rows at the requested positions of each (left-padded) sequence."""
        import torch

        pad = self.tokenizer.pad_token_id
        pad = 0 if pad is None else pad
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, width - len(s):] = torch.tensor(s)
            mask[r, width - len(s):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                position_ids=pos.to(self.device)).logits
        rows = []
        for r, s in enumerate(seqs):
            offset = width - len(s)
            idx = torch.tensor([offset + p for p in positions[r]], device=logits.device)
            rows.append(torch.log_softmax(logits[r, idx].float(), dim=-1))
        return rows

    # -- the two calls ---------------------------------------------------------------------
    def score_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        if not requests:
            return []
        prompts = [self.render(r.prompt) for r in requests]
        results: list[ChoiceResult | None] = [None] * len(requests)
        for batch in self._batches([len(p) for p in prompts]):
            t0 = time.perf_counter()
            seqs, positions, spans = [], [], []
            for i in batch:
                choice_ids = [self._choice_ids(c) for c in requests[i].choices]
                # One sequence per request: the prompt plus the longest choice's tokens but its
                # last, so that every multi-token choice sharing the first token can be read off.
                # Choices that diverge after the first token get sequences of their own.
                base = prompts[i]
                groups: list[tuple[list[int], list[int]]] = []  # (sequence, choice indices)
                for c, cids in enumerate(choice_ids):
                    seq = base + cids[:-1]
                    for g_seq, members in groups:
                        if g_seq[:len(seq)] == seq or seq[:len(g_seq)] == g_seq:
                            if len(seq) > len(g_seq):
                                g_seq[:] = seq
                            members.append(c)
                            break
                    else:
                        groups.append((list(seq), [c]))
                spans.append((i, choice_ids, groups, len(seqs)))
                for g_seq, _ in groups:
                    seqs.append(g_seq)
                    positions.append(list(range(len(base) - 1, len(g_seq))))
            rows = self._forward_last(seqs, positions)
            elapsed = time.perf_counter() - t0
            n_tok = sum(len(s) for s in seqs)
            for i, choice_ids, groups, first in spans:
                base_len = len(prompts[i])
                lps = [0.0] * len(choice_ids)
                for g, (g_seq, members) in enumerate(groups):
                    row = rows[first + g]
                    for c in members:
                        lps[c] = float(sum(row[t, tok] for t, tok in enumerate(choice_ids[c])))
                head = rows[first][0]
                top_vals, top_idx = head.topk(self.top_k_raw)
                top = {self.tokenizer.decode([int(t)]): round(math.exp(float(v)), 6)
                       for v, t in zip(top_vals, top_idx)}
                share = sum(len(g) for g, _ in groups) / max(n_tok, 1)
                results[i] = ChoiceResult(logprobs=tuple(lps), tokens=base_len,
                                          latency_s=elapsed * share, top=top)
        return [r for r in results if r is not None]

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
