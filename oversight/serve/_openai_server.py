"""An OpenAI-compatible chat-completions server over a TransformersBackend.

`oversight serve` puts a local model behind the protocol that vLLM, SGLang and llama.cpp also
speak, with `logprobs`/`top_logprobs` for the first generated token (what log-prob verdicts
need). It is how a critic model on one machine serves judges elsewhere, and the real server
the HTTP backend is tested against. Only the fields judges use are implemented: `messages`,
`max_tokens`, `temperature`, `seed`, `logprobs`, `top_logprobs`, and vLLM's
`continue_final_message`. Log-probs cover the first generated token only.
"""



import time
import uuid
from typing import Any

from oversight.backends import ChatPrompt, TransformersBackend
from oversight.errors import missing_extra


def create_app(backend: TransformersBackend, *, max_logprobs: int = 20) -> Any:
    try:
        from fastapi import FastAPI, HTTPException
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover
        raise missing_extra("fastapi", "serve") from None

    class Message(BaseModel):
        role: str
        content: str

    class ChatRequest(BaseModel):
        model: str | None = None
        messages: list[Message]
        max_tokens: int | None = 16
        temperature: float | None = 0.0
        seed: int | None = None
        logprobs: bool | None = False
        top_logprobs: int | None = None
        continue_final_message: bool | None = False
        add_generation_prompt: bool | None = True

    app = FastAPI(title="oversight OpenAI-compatible server")
    backend.load()
    tok = backend.tokenizer

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": backend.model_id, "object": "model",
                                             "owned_by": "oversight"}]}

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict[str, Any]:
        if not req.messages:
            raise HTTPException(400, "messages must not be empty")
        msgs = [{"role": m.role, "content": m.content} for m in req.messages]
        prefix = ""
        if req.continue_final_message:
            if msgs[-1]["role"] != "assistant":
                raise HTTPException(400, "continue_final_message needs a final assistant message")
            prefix = msgs.pop()["content"]
        prompt = ChatPrompt(tuple(msgs), assistant_prefix=prefix)
        k = req.top_logprobs or 0
        if k > max_logprobs:
            raise HTTPException(400, f"top_logprobs={k} exceeds this server's limit "
                                f"({max_logprobs}; start it with --max-logprobs)")
        max_tokens = max(1, req.max_tokens or 16)
        n_prompt = len(backend.render(prompt))
        logprobs_block = None
        if max_tokens == 1 or req.logprobs:
            (row,) = backend.next_token_logprobs([prompt])
            first = int(row.argmax())
            if req.logprobs:
                vals, idx = row.topk(max(k, 1))
                logprobs_block = {"content": [{
                    "token": tok.decode([first]), "logprob": float(row[first]),
                    "top_logprobs": [{"token": tok.decode([int(i)]), "logprob": float(v)}
                                     for v, i in zip(vals, idx)][:k]}]}
        if max_tokens == 1:
            text, n_out = tok.decode([first], skip_special_tokens=True), 1
        else:
            (gen,) = backend.generate([prompt], max_new_tokens=max_tokens,
                                      temperature=req.temperature or 0.0, seed=req.seed or 0)
            text, n_out = gen.text, gen.completion_tokens
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length" if n_out >= max_tokens
                                  else "stop", "message": {"role": "assistant",
                                                           "content": text},
                                  "logprobs": logprobs_block}
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                "created": int(time.time()), "model": backend.model_id, "choices": [choice],
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_out,
                          "total_tokens": n_prompt + n_out}}

    return app


def serve(model: str | None, host: str = "127.0.0.1", port: int = 8000,
          max_logprobs: int = 20, dtype: str = "float32") -> None:
    try:
        import uvicorn
    except ImportError:  # pragma: no cover
        raise missing_extra("uvicorn", "serve") from None
    backend = TransformersBackend(model, dtype=dtype)
    app = create_app(backend, max_logprobs=max_logprobs)
    uvicorn.run(app, host=host, port=port, log_level="warning")
