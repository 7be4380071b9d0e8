"""`oversight constitution ...`: validate and inspect constitutions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from oversight.cli._common import console, err, fail
from oversight.errors import OversightError

constitution_app = typer.Typer(no_args_is_help=True, help="Validate and inspect constitutions.")


@constitution_app.command("validate")
def constitution_validate(files: list[Path] = typer.Argument(
        ..., help="TOML files, or built-in names (harmlessness, helpfulness, ...)")) -> None:
    """Validate constitution files (or built-ins by name); print name, principle count, hash."""
    from oversight.constitution import load_constitution

    bad = 0
    for f in files:
        try:
            c = load_constitution(f)
        except OversightError as exc:
            err.print(f"error: {exc}", highlight=False, markup=False)
            bad += 1
            continue
        console.print(f"ok {f}: {c.name} v{c.version}, {len(c)} principles, hash {c.hash}",
                      highlight=False)
    if bad:
        raise typer.Exit(2)


@constitution_app.command("show")
def constitution_show(file: Path = typer.Argument(
        ..., help="A TOML file, or a built-in name (harmlessness, helpfulness, ...)")) -> None:
    """Show a constitution's principles as a table."""
    from oversight.constitution import load_constitution

    try:
        c = load_constitution(file)
    except OversightError as exc:
        fail(exc)
    t = Table(title=f"{c.name} v{c.version} (hash {c.hash})", caption=c.description,
              show_lines=True)
    for col in ("id", "kind", "weight", "statement", "comparison question"):
        t.add_column(col)
    for p in c.principles:
        t.add_row(p.id, "[red]veto[/]" if p.kind == "veto" else p.kind, f"{p.weight:g}",
                  p.statement, p.comparison_question)
    console.print(t)
