"""Servers: an OpenAI-compatible endpoint over a local model, and a panel as a remote reward
model (OpenRLHF's `--remote_rm_url` protocol)."""

from oversight.serve._openai_server import create_app, serve
from oversight.serve._reward_server import (
    create_reward_app,
    prompt_messages,
    serve_reward,
    split_query,
)

__all__ = ["create_app", "create_reward_app", "prompt_messages", "serve", "serve_reward",
           "split_query"]
