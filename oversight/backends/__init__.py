"""Backends: the only place that touches a model."""

from oversight.backends._base import (
    Backend,
    BackendSpec,
    ChatPrompt,
    ChoiceRequest,
    ChoiceResult,
    Generation,
    backend_spec,
)
from oversight.backends._default_model import (
    DEFAULT_MODEL,
    cache_dir,
    default_model_path,
    fetch_gguf,
)
from oversight.backends._function import FunctionBackend
from oversight.backends._openai import OpenAIBackend, Usage
from oversight.backends._reward_model import RewardModelBackend
from oversight.backends._transformers import TransformersBackend
from oversight.backends._vllm import VLLMBackend

__all__ = [
    "DEFAULT_MODEL",
    "Backend",
    "BackendSpec",
    "ChatPrompt",
    "ChoiceRequest",
    "ChoiceResult",
    "FunctionBackend",
    "Generation",
    "OpenAIBackend",
    "RewardModelBackend",
    "TransformersBackend",
    "Usage",
    "VLLMBackend",
    "backend_spec",
    "cache_dir",
    "default_model_path",
    "fetch_gguf",
]
