"""The judgment store: a resumable SQLite cache of judgments."""

from oversight.store._store import JudgmentStore

__all__ = ["JudgmentStore"]
