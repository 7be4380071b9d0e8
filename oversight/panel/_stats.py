"""Kept for one release: `wilson_ci` lives in `oversight.aggregate` (one definition)."""

from oversight.aggregate._stats import wilson_ci

__all__ = ["wilson_ci"]
