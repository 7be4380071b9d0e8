"""RewardModelBackend: a sequence-classification / reward model as a pointwise critic's model.

Any Hugging Face `AutoModelForSequenceClassification` with one output (a reward model, such
as one written by `oversight train reward`) scores each (conversation, response) as r. The
backend answers the critic's requests from their structured context, like FunctionBackend:

* `passfail`: P(pass) = sigmoid(r);
* `pairwise`: P(first shown is better) = sigmoid(r_first - r_second) (Bradley-Terry), so the
  verdict is position-free by construction; use `swap=False` to skip the redundant order.

Inputs are formatted as TRL's RewardTrainer formats them in training: a string prompt is
`prompt + response + eos`; chat messages go through the tokenizer's chat template with the
response as the assistant turn. Rewards are cached per (item, response) within the backend.
The rewards go into the judgment's raw record (`top`: {"reward:A": r_A, ...}) for audit.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from oversight.backends._base import (
    BackendSpec,
    ChatPrompt,
    ChoiceRequest,
    ChoiceResult,
    Generation,
)

_MODES = ("pairwise", "passfail")


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


class RewardModelBackend:
    """A reward model (HF id or local path, or a live model + tokenizer) scoring responses."""

    def __init__(self, model: str | Path | None = None, *, model_obj: Any = None,
                 tokenizer: Any = None, model_id: str | None = None, device: str = "cpu",
                 dtype: str = "float32", batch_size: int = 8, max_length: int = 1024,
                 trust_remote_code: bool = False) -> None:
        if model is None and model_obj is None:
            raise ValueError("RewardModelBackend needs a model path or id (model=...), or "
                             "model_obj= and tokenizer=")
        self._source = None if model is None else str(model)
        self.model_id = model_id or self._source or "reward-model"
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_length = max_length
        self.trust_remote_code = trust_remote_code
        self._model = model_obj
        self._tok = tokenizer
        self._cache: dict[tuple[str, str], float] = {}
        self.load_seconds: float | None = None

    def fingerprint(self) -> str:
        return f"reward-model:{self.model_id}:{self.dtype}:{self.max_length}"

    def spec(self) -> BackendSpec:
        if self._source is None:
            raise ValueError(f"RewardModelBackend({self.model_id!r}) was built from a live model"
                             " object, which cannot be shipped to an actor; build it from a "
                             "path: RewardModelBackend('<id or path>')")
        return BackendSpec(RewardModelBackend, dict(
            model=self._source, model_id=self.model_id, device=self.device, dtype=self.dtype,
            batch_size=self.batch_size, max_length=self.max_length,
            trust_remote_code=self.trust_remote_code))

    def load(self) -> None:
        if self._model is not None and self._tok is not None:
            return
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - torch/transformers are core here
            raise ImportError("RewardModelBackend needs torch and transformers: "
                              "pip install torch transformers") from exc
        t0 = time.perf_counter()
        src = str(self._source)
        self._tok = self._tok or AutoTokenizer.from_pretrained(
            src, trust_remote_code=self.trust_remote_code)
        self._model = AutoModelForSequenceClassification.from_pretrained(
            src, dtype=getattr(torch, self.dtype), trust_remote_code=self.trust_remote_code,
            num_labels=1).to(self.device)  # type: ignore[arg-type]
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

    def encode(self, item: Any, response: str) -> list[int]:
        """Token ids of (conversation, response), formatted as TRL's RewardTrainer does."""
        tok = self.tokenizer
        if isinstance(item.prompt, str):
            eos = tok.eos_token or ""
            text = item.prompt + response
            ids: list[int] = tok(text if text.endswith(eos) else text + eos)["input_ids"]
        else:
            msgs = [dict(m) for m in item.prompt] + [{"role": "assistant", "content": response}]
            out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True)
            ids = list(out["input_ids"])
        return ids[-self.max_length:]

    def rewards(self, pairs: list[tuple[Any, str]]) -> list[float]:
        """r for each (item, response), batched, cached by (item id, response)."""
        import torch

        keys = [(item.id, resp) for item, resp in pairs]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        todo = list(dict.fromkeys(todo))
        pad = self.tokenizer.pad_token_id
        pad = 0 if pad is None else pad
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            seqs = [self.encode(*pairs[i]) for i in chunk]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, s in enumerate(seqs):  # right padding: the head reads the last real token
                ids[r, :len(s)] = torch.tensor(s)
                mask[r, :len(s)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device),
                                    attention_mask=mask.to(self.device)).logits
            for r, i in enumerate(chunk):
                self._cache[keys[i]] = float(logits[r, 0])
        return [self._cache[k] for k in keys]

    def score_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        t0 = time.perf_counter()
        wanted: list[tuple[Any, str]] = []
        for req in requests:
            ctx = req.context
            if ctx is None or getattr(ctx, "mode", None) not in _MODES:
                continue
            wanted.extend((ctx.item, ctx.item.responses[i]) for i in ctx.shown)
        try:
            self.rewards(wanted)
        except Exception as exc:  # a failing model must not kill the run
            return [ChoiceResult(error=f"{type(exc).__name__}: {exc}") for _ in requests]
        share = (time.perf_counter() - t0) / max(len(requests), 1)
        out = []
        for req in requests:
            ctx = req.context
            mode = getattr(ctx, "mode", None)
            if ctx is None or mode not in _MODES:
                out.append(ChoiceResult(error=f"RewardModelBackend scores responses for critics"
                                        f" in mode {' or '.join(_MODES)}, not {mode!r}"))
                continue
            r = self.rewards([(ctx.item, ctx.item.responses[i]) for i in ctx.shown])
            top = {f"reward:{'AB'[k] if mode == 'pairwise' else 'response'}": round(v, 6)
                   for k, v in enumerate(r)}
            d = r[0] - r[1] if mode == "pairwise" else r[0]
            out.append(ChoiceResult(logprobs=(_log_sigmoid(d), _log_sigmoid(-d)),
                                    latency_s=share, top=top))
        return out

    def generate(self, prompts: list[ChatPrompt], *, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0) -> list[Generation]:
        raise NotImplementedError(f"{self.model_id} is a reward model: it scores, it does not "
                                  "generate (rationale=True needs a generative backend)")
