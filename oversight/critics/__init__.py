"""Critics: a constitution bound to a backend, judging pairwise, by score, or pass/fail."""

from oversight.critics._critic import MODES, Critic, JudgeContext, Prepared, Task
from oversight.critics._judgment import JUDGMENT_COLUMNS, Judgment
from oversight.critics._parse import normalize, parse_choice
from oversight.critics._templates import TEMPLATE_VERSION
from oversight.critics._verifier import VerifierBackend, verifier_critic

__all__ = [
    "JUDGMENT_COLUMNS",
    "MODES",
    "Prepared",
    "TEMPLATE_VERSION",
    "Critic",
    "JudgeContext",
    "Judgment",
    "Task",
    "normalize",
    "parse_choice",
    "VerifierBackend",
    "verifier_critic",
]
