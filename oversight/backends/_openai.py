"""OpenAIBackend: any OpenAI-compatible chat-completions server (vLLM, SGLang, llama.cpp,
Ollama, `oversight serve`, hosted APIs).

Verdicts come from `logprobs`/`top_logprobs` when the server returns them (one generated
token); otherwise from parsing the answer text, and unparseable text abstains. Requests run
concurrently under a semaphore, with a per-request timeout and retries with exponential
backoff and full jitter on 429, 5xx, timeouts and connection errors (a `Retry-After` header
is honoured). A request that still fails becomes an `error` result with the reason; the run
goes on, and a rerun retries only those. The API key is read from the environment at call
time and is never stored in the backend, the fingerprint, the store or logs.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from oversight.backends._base import (
    BackendSpec,
    ChatPrompt,
    ChoiceRequest,
    ChoiceResult,
    Generation,
)
from oversight.backends._sync import run_coroutine

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass
class Usage:
    """Token usage and request counts, for reporting a run's cost."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class OpenAIBackend:
    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", *,
                 api_key_env: str | None = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout_s: float = 60.0, max_retries: int = 4, backoff_s: float = 0.5,
                 backoff_max_s: float = 20.0, top_logprobs: int = 20, logprobs: bool = True,
                 answer_tokens: int = 8, seed: int | None = 0) -> None:
        self.model_id = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.top_logprobs = top_logprobs
        self.logprobs = logprobs
        self.answer_tokens = answer_tokens
        self.seed = seed
        self.usage = Usage()

    def fingerprint(self) -> str:
        return f"openai:{self.model_id}:logprobs={self.logprobs}"

    def spec(self) -> BackendSpec:
        """Rebuild on a Ray actor: the server address and options (the key stays in the env)."""
        return BackendSpec(OpenAIBackend, dict(
            model=self.model_id, base_url=self.base_url, api_key_env=self.api_key_env,
            concurrency=self.concurrency, timeout_s=self.timeout_s, max_retries=self.max_retries,
            backoff_s=self.backoff_s, backoff_max_s=self.backoff_max_s,
            top_logprobs=self.top_logprobs, logprobs=self.logprobs,
            answer_tokens=self.answer_tokens, seed=self.seed))

    def __repr__(self) -> str:  # never shows a key
        return f"OpenAIBackend(model={self.model_id!r}, base_url={self.base_url!r})"

    # -- HTTP ------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, prompt: ChatPrompt, max_tokens: int, temperature: float,
              logprobs: bool) -> dict[str, Any]:
        messages = [dict(m) for m in prompt.messages]
        body: dict[str, Any] = {"model": self.model_id, "messages": messages,
                                "max_tokens": max_tokens, "temperature": temperature}
        if self.seed is not None:
            body["seed"] = self.seed
        if prompt.assistant_prefix:
            # vLLM/SGLang extension: continue the assistant's partial turn.
            messages.append({"role": "assistant", "content": prompt.assistant_prefix})
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        return body

    async def _post(self, client: Any, sem: asyncio.Semaphore, body: dict[str, Any]
                    ) -> tuple[dict[str, Any] | None, str | None, float]:
        """POST with retries. Returns (json, error, latency)."""
        import httpx

        t0 = time.perf_counter()
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            delay = None
            async with sem:
                try:
                    resp = await client.post(f"{self.base_url}/chat/completions", json=body,
                                             headers=self._headers(), timeout=self.timeout_s)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    last = f"{type(exc).__name__}: {exc}".strip(": ")
                else:
                    if resp.status_code == 200:
                        try:
                            data = resp.json()
                            if not isinstance(data, dict) or not data.get("choices"):
                                raise ValueError("no 'choices' in the response")
                            return data, None, time.perf_counter() - t0
                        except (json.JSONDecodeError, ValueError) as exc:
                            last = f"malformed JSON response: {exc}; body: {resp.text[:200]!r}"
                    elif resp.status_code in RETRY_STATUS:
                        last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                        retry_after = resp.headers.get("retry-after")
                        if retry_after and retry_after.replace(".", "", 1).isdigit():
                            delay = min(float(retry_after), self.backoff_max_s)
                    else:  # 4xx other than the retryable ones: the request itself is wrong
                        return None, f"HTTP {resp.status_code}: {resp.text[:300]}", \
                            time.perf_counter() - t0
            if attempt == self.max_retries:
                break
            self.usage.retries += 1
            if delay is None:  # exponential backoff with full jitter
                delay = random.uniform(0, min(self.backoff_max_s, self.backoff_s * 2 ** attempt))
            await asyncio.sleep(delay)
        self.usage.failures += 1
        return None, f"failed after {self.max_retries + 1} tries: {last}", \
            time.perf_counter() - t0

    def _run(self, bodies: list[dict[str, Any]]
             ) -> list[tuple[dict[str, Any] | None, str | None, float]]:
        import httpx  # a core dependency, imported here to keep `import oversight` light

        async def main() -> list[Any]:
            sem = asyncio.Semaphore(self.concurrency)
            limits = httpx.Limits(max_connections=self.concurrency)
            async with httpx.AsyncClient(limits=limits) as client:
                return await asyncio.gather(*(self._post(client, sem, b) for b in bodies))

        results = run_coroutine(main)  # works inside a running loop (Jupyter) too
        return [(data, self._redact(error), latency) for data, error, latency in results]

    def _redact(self, text: str | None) -> str | None:
        """Remove the API key from text that will be stored (a server may echo headers)."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if text and key and len(key) >= 4:
            return text.replace(key, "[redacted]")
        return text

    def _account(self, data: dict[str, Any] | None, error: str | None) -> tuple[int, int]:
        self.usage.requests += 1
        if error:
            kind = error.split(":")[0][:40]
            self.usage.errors[kind] = self.usage.errors.get(kind, 0) + 1
        usage = (data or {}).get("usage") or {}
        p, c = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        self.usage.prompt_tokens += p
        self.usage.completion_tokens += c
        return p, c

    # -- the two calls ---------------------------------------------------------------------
    def score_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        bodies = [self._body(r.prompt, 1 if self.logprobs else self.answer_tokens, 0.0,
                             self.logprobs) for r in requests]
        out = []
        for req, (data, error, latency) in zip(requests, self._run(bodies)):
            p, c = self._account(data, error)
            if error is not None:
                out.append(ChoiceResult(error=error, latency_s=latency))
                continue
            assert data is not None
            out.append(_choice_result(data, req.choices, p + c, latency))
        return out

    def generate(self, prompts: list[ChatPrompt], *, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0) -> list[Generation]:
        bodies = [self._body(p, max_new_tokens, temperature, False) for p in prompts]
        out = []
        for data, error, latency in self._run(bodies):
            p, c = self._account(data, error)
            text = "" if error else _message_text(data)
            out.append(Generation(text=text, prompt_tokens=p, completion_tokens=c,
                                  latency_s=latency))
        return out


def _message_text(data: dict[str, Any] | None) -> str:
    try:
        content = data["choices"][0]["message"]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


def _choice_result(data: dict[str, Any], choices: Sequence[str], tokens: int,
                   latency: float) -> ChoiceResult:
    """Choice log-probs from top_logprobs of the first token; else the text to parse."""
    text = _message_text(data)
    try:
        truncated = data["choices"][0].get("finish_reason") == "length"
    except (KeyError, IndexError, TypeError, AttributeError):
        truncated = False
    try:
        first = data["choices"][0]["logprobs"]["content"][0]
        tops = first.get("top_logprobs") or [{"token": first["token"],
                                              "logprob": first["logprob"]}]
    except (KeyError, IndexError, TypeError):
        return ChoiceResult(text=text, tokens=tokens, latency_s=latency, truncated=truncated)
    by_choice: dict[str, list[float]] = {c: [] for c in choices}
    top: dict[str, float] = {}
    for entry in tops:
        try:
            tok, lp = str(entry["token"]), float(entry["logprob"])
        except (KeyError, TypeError, ValueError):
            continue
        top[tok] = round(math.exp(lp), 6)
        if tok in by_choice:  # exact token text, as the in-process backend scores it
            by_choice[tok].append(lp)
    if not any(by_choice.values()):
        # No choice among the returned alternatives: fall back to the answer text.
        return ChoiceResult(text=text, tokens=tokens, latency_s=latency,
                            top=dict(list(top.items())[:5]), truncated=truncated)
    lps = []
    for c in choices:
        vals = by_choice[c]
        if not vals:
            lps.append(-math.inf)  # below the top-k cut-off: treated as no probability
        else:
            m = max(vals)
            lps.append(m + math.log(sum(math.exp(v - m) for v in vals)))
    return ChoiceResult(logprobs=tuple(lps), tokens=tokens, latency_s=latency,
                        top=dict(list(top.items())[:5]))
