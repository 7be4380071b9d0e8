"""What every command module shares: the two consoles and the one way to fail on bad input."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(exc: BaseException | str) -> NoReturn:
    """Print `error: ...` (one line, no markup) to stderr and exit with status 2."""
    err.print(f"error: {exc}", highlight=False, markup=False)
    raise typer.Exit(2)
