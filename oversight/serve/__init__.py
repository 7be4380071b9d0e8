"""Servers: an OpenAI-compatible endpoint over a local model."""

from oversight.serve._openai_server import create_app, serve

__all__ = ["create_app", "serve"]
