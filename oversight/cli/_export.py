"""`oversight export`: a run's panel preferences as a TRL dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from oversight.cli._common import console, fail
from oversight.errors import OversightError


def export_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory written by `oversight judge`."),
    format: str = typer.Option("preference", "--format", help="preference | kto | sft"),
    out: Path = typer.Option(..., help="Directory for the dataset (datasets.load_from_disk)."),
    method: str | None = typer.Option(None, help="Aggregator (default: vote); see aggregate."),
    min_margin: float = typer.Option(0.0, help="Drop preferences with a smaller margin."),
    drop_flagged: str = typer.Option(
        "", "--drop-flagged", "--drop-flags",
        help="Drop items with these flags: comma-separated names (split,veto_conflict,...) or "
             "'all'; the same shape as Python's drop_flagged=. --drop-flags is the old name."),
    keep_veto_conflicts: bool = typer.Option(False, "--keep-veto-conflicts",
                                             help="Keep items flagged veto_conflict."),
) -> None:
    """Export a run's panel preferences as a TRL dataset (preference, KTO or SFT rows)."""
    from oversight.train import export_dataset, load_run

    try:
        flags = [f.strip() for f in drop_flagged.split(",") if f.strip()]
        ds = export_dataset(load_run(run_dir), format, method=method, min_margin=min_margin,
                            drop_flagged=flags, drop_veto_conflicts=not keep_veto_conflicts)
        out.mkdir(parents=True, exist_ok=True)
        ds.save_to_disk(str(out))
        (out / "export.json").write_text(json.dumps({
            "run": str(run_dir), "format": format, "rows": len(ds), "method": method or "vote",
            "min_margin": min_margin, "drop_flagged": flags,
            "drop_veto_conflicts": not keep_veto_conflicts, "columns": ds.column_names},
            indent=2))
    except (OversightError, ValueError) as exc:
        fail(exc)
    console.print(f"wrote {len(ds)} {format} rows to {out} (columns: "
                  f"{', '.join(ds.column_names[:6])}, ...)", highlight=False)
