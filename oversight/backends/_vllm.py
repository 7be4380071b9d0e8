"""VLLMBackend: in-process vLLM on a GPU, behind the `vllm` extra.

`vllm.LLM` with automatic prefix caching, so the item prefix that every principle and critic
shares is computed once per item and order. Verdicts come from
`SamplingParams(max_tokens=1, logprobs=k)`: the choice tokens' log-probs among the top k of
the first generated token; a choice outside the top k counts as no probability, and if no
choice is there the answer text is parsed. Multi-token choices are scored by their first
token. vLLM cannot run on CPU-only machines; this backend's test is skipped unless `vllm`
imports, and it is unverified until run on a GPU (benchmarks/gpu_check.py).
"""

from __future__ import annotations

import math
import time
from typing import Any

from oversight.backends._base import (
    BackendSpec,
    ChatPrompt,
    ChoiceRequest,
    ChoiceResult,
    Generation,
)
from oversight.errors import missing_extra


class VLLMBackend:
    def __init__(self, model: str, *, tensor_parallel_size: int = 1, dtype: str = "auto",
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None,
                 top_logprobs: int = 20, trust_remote_code: bool = False,
                 **llm_kwargs: Any) -> None:
        self.model_id = model
        self.top_logprobs = top_logprobs
        self._kwargs = dict(model=model, tensor_parallel_size=tensor_parallel_size,
                            dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                            max_model_len=max_model_len, enable_prefix_caching=True,
                            trust_remote_code=trust_remote_code, **llm_kwargs)
        self._llm: Any = None

    def fingerprint(self) -> str:
        return f"vllm:{self.model_id}:{self._kwargs['dtype']}"

    def spec(self) -> BackendSpec:
        """Rebuild on a Ray actor (give the actor the GPUs: resources={"num_gpus": tp})."""
        kwargs = {k: v for k, v in self._kwargs.items() if k != "enable_prefix_caching"}
        return BackendSpec(VLLMBackend, {**kwargs, "top_logprobs": self.top_logprobs})

    def load(self) -> None:
        if self._llm is not None:
            return
        try:
            from vllm import LLM
        except ImportError:
            raise missing_extra("vllm", "vllm") from None
        self._llm = LLM(**{k: v for k, v in self._kwargs.items() if v is not None})

    def _text(self, prompt: ChatPrompt) -> str:
        tok = self._llm.get_tokenizer()
        text = tok.apply_chat_template(list(prompt.messages), tokenize=False,
                                       add_generation_prompt=True)
        return text + prompt.assistant_prefix

    def score_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        from vllm import SamplingParams

        self.load()
        tok = self._llm.get_tokenizer()
        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.top_logprobs)
        t0 = time.perf_counter()
        outs = self._llm.generate([self._text(r.prompt) for r in requests], params,
                                  use_tqdm=False)
        latency = (time.perf_counter() - t0) / max(len(requests), 1)
        results = []
        for req, out in zip(requests, outs):
            first = out.outputs[0]
            tops = first.logprobs[0] if first.logprobs else {}
            lps = []
            for choice in req.choices:
                ids = tok.encode(choice, add_special_tokens=False)
                entry = tops.get(ids[0]) if ids else None
                lps.append(float(entry.logprob) if entry is not None else -math.inf)
            top = {str(v.decoded_token): round(math.exp(v.logprob), 6)
                   for v in list(tops.values())[:5]}
            n_tok = len(out.prompt_token_ids or [])
            if all(math.isinf(v) for v in lps):
                results.append(ChoiceResult(text=first.text, tokens=n_tok, latency_s=latency,
                                            top=top))
            else:
                results.append(ChoiceResult(logprobs=tuple(lps), tokens=n_tok,
                                            latency_s=latency, top=top))
        return results

    def generate(self, prompts: list[ChatPrompt], *, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0) -> list[Generation]:
        from vllm import SamplingParams

        self.load()
        params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature, seed=seed)
        t0 = time.perf_counter()
        outs = self._llm.generate([self._text(p) for p in prompts], params, use_tqdm=False)
        latency = (time.perf_counter() - t0) / max(len(prompts), 1)
        return [Generation(text=o.outputs[0].text, prompt_tokens=len(o.prompt_token_ids or []),
                           completion_tokens=len(o.outputs[0].token_ids), latency_s=latency)
                for o in outs]
