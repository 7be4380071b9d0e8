"""Errors a person can act on: each names the file, row, principle or field at fault."""

from __future__ import annotations


class OversightError(Exception):
    """Base class of every error oversight raises on purpose."""


class ConstitutionError(OversightError, ValueError):
    """A constitution file is malformed. The message names file, principle id and field."""

    def __init__(self, path: str, message: str, *, principle: str | None = None,
                 field: str | None = None) -> None:
        self.path = path
        self.principle = principle
        self.field = field
        where = [path]
        if principle is not None:
            where.append(f"principle '{principle}'")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join(where)}: {message}")


class DataError(OversightError, ValueError):
    """A data row is malformed. The message names the source, row number and field."""

    def __init__(self, source: str, message: str, *, row: int | None = None,
                 field: str | None = None) -> None:
        self.source = source
        self.row = row
        self.field = field
        where = [source]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join(where)}: {message}")


class BackendError(OversightError, RuntimeError):
    """A backend could not be built or reached (missing extra, offline model fetch, ...)."""


class StoreBusyError(OversightError, RuntimeError):
    """Another process holds a judgment store's run lock (and the caller chose not to wait)."""


class PanelFileError(OversightError, ValueError):
    """A panel file could not be loaded or defines no panel."""


class AggregationWarning(UserWarning):
    """An aggregate is weaker than it looks: disconnected graph, divergent MLE, no convergence."""


def missing_extra(module: str, extra: str) -> BackendError:
    """The error for an optional dependency that is not installed, with the pip line."""
    return BackendError(
        f"this feature needs '{module}', which is not installed; "
        f"run: pip install 'oversight[{extra}]'"
    )


class AggregationInputError(OversightError, ValueError):
    """A judgments table, weight or option that aggregation refuses. The message names the
    item, critic and principle, or the weight or option at fault."""
