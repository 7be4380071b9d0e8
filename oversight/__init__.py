"""oversight: multi-critic oversight of language models.

Constitutions (TOML files of principles) bind to models as critics; critics form panels that
check and balance each other; every judgment keeps its provenance and is cached for resumable
runs. Heavy dependencies (torch, transformers, pandas) are imported only when used: names
from the aggregation layer (`PanelRules`) load on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from oversight.backends import (
    DEFAULT_MODEL,
    ChatPrompt,
    FunctionBackend,
    OpenAIBackend,
    TransformersBackend,
    VLLMBackend,
)
from oversight.constitution import Constitution, Principle, load_constitution
from oversight.critics import Critic, Judgment, verifier_critic
from oversight.data import Comparison, load_comparisons
from oversight.errors import (
    AggregationWarning,
    BackendError,
    ConstitutionError,
    DataError,
    OversightError,
    PanelFileError,
    StoreBusyError,
)
from oversight.panel import (
    Escalation,
    LocalExecutor,
    Panel,
    PanelResult,
    PanelScorer,
    RayExecutor,
)
from oversight.store import JudgmentStore

if TYPE_CHECKING:
    from oversight.aggregate import PanelRules

# Exported names whose modules import pandas/scipy: loaded on first access (PEP 562).
_LAZY = {"PanelRules": "oversight.aggregate"}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'oversight' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "AggregationWarning",
    "BackendError",
    "ChatPrompt",
    "Comparison",
    "Constitution",
    "ConstitutionError",
    "Critic",
    "DataError",
    "Escalation",
    "FunctionBackend",
    "Judgment",
    "JudgmentStore",
    "LocalExecutor",
    "OversightError",
    "OpenAIBackend",
    "Panel",
    "PanelFileError",
    "PanelResult",
    "PanelRules",
    "PanelScorer",
    "Principle",
    "RayExecutor",
    "StoreBusyError",
    "TransformersBackend",
    "VLLMBackend",
    "__version__",
    "load_comparisons",
    "load_constitution",
    "verifier_critic",
]
