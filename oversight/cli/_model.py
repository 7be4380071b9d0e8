"""`oversight model ...`: the embedded default model."""

from __future__ import annotations

import typer

from oversight.cli._common import console, err, fail
from oversight.errors import OversightError

model_app = typer.Typer(no_args_is_help=True, help="The embedded default model.")


@model_app.command("fetch")
def model_fetch() -> None:
    """Fetch and convert the default model now (otherwise done on first use)."""
    from oversight.backends import default_model_path

    try:
        path = default_model_path(log=lambda m: err.print(m, highlight=False, markup=False))
    except OversightError as exc:
        fail(exc)
    console.print(f"default model ready: {path}", highlight=False)
