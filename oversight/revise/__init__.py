"""SL-CAI critique -> revision with a policy model on any generating backend."""

from oversight.revise._revise import (
    RevisionRecord,
    RevisionRound,
    RevisionRun,
    revise,
    sample_principle,
)

__all__ = ["RevisionRecord", "RevisionRound", "RevisionRun", "revise", "sample_principle"]
