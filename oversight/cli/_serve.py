"""`oversight serve`: a model over the OpenAI chat-completions protocol."""

from __future__ import annotations

import typer

from oversight.cli._common import fail
from oversight.errors import OversightError


def serve_cmd(
    model: str = typer.Option("default", help="HF id or local path; 'default' is the embedded "
                                      "SmolLM2-135M-Instruct-Q4_1."),
    host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
    port: int = typer.Option(8000),
    max_logprobs: int = typer.Option(20, help="Largest top_logprobs a request may ask for."),
    dtype: str = typer.Option("float32", help="float32 or bfloat16"),
) -> None:
    """Serve a model over the OpenAI chat-completions protocol, with log-probs."""
    from oversight.serve import serve as run_server

    try:
        run_server(model, host=host, port=port,
                   max_logprobs=max_logprobs, dtype=dtype)
    except OversightError as exc:
        fail(exc)
