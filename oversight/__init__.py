"""oversight: multi-critic oversight of language models.

Constitutions (TOML files of principles) bind to models as critics; critics form panels that
check and balance each other; every judgment keeps its provenance and is cached for resumable
runs. Heavy dependencies (torch, transformers) are imported only when a model is used.
"""

from oversight.backends import ChatPrompt, FunctionBackend, TransformersBackend
from oversight.constitution import Constitution, Principle, load_constitution
from oversight.critics import Critic, Judgment
from oversight.data import Comparison, load_comparisons
from oversight.errors import (
    BackendError,
    ConstitutionError,
    DataError,
    OversightError,
    PanelFileError,
)
from oversight.panel import Escalation, LocalExecutor, Panel, PanelResult, RayExecutor
from oversight.store import JudgmentStore

__version__ = "0.1.0"

__all__ = [
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
    "Panel",
    "PanelFileError",
    "PanelResult",
    "Principle",
    "RayExecutor",
    "TransformersBackend",
    "__version__",
    "load_comparisons",
    "load_constitution",
]
