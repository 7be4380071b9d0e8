"""The judgment store: a resumable SQLite cache of judgments."""

from oversight.store._store import JudgmentStore, run_lock, run_store

__all__ = ["JudgmentStore", "run_lock", "run_store"]
