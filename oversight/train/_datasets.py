"""Training data from disk: an export, a run (exported now), a revise output, or TRL rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oversight.errors import DataError
from oversight.train._export import export_dataset, load_run


def load_training_data(data: str | Path, format: str) -> Any:
    """A dataset for `format` from an export directory, a run directory (exported now), a
    revise output directory, or a .jsonl/.parquet file already in TRL's columns."""
    import datasets

    data = Path(data)
    if data.is_dir():
        if (data / "judgments.sqlite").exists() and not (data / "revisions.jsonl").exists():
            return export_dataset(load_run(data), format)
        if (data / "revisions.jsonl").exists():
            sub = data / ("sft" if format == "sft" else "preference")
            if format == "kto" or not sub.exists():
                raise DataError(str(data), f"a revise directory has sft/ and preference/ data, "
                                f"not {format}")
            return datasets.load_from_disk(str(sub))
        if (data / "dataset_info.json").exists() or (data / "state.json").exists():
            return datasets.load_from_disk(str(data))
        raise DataError(str(data), "not a dataset, run or revise directory")
    if not data.exists():
        raise DataError(str(data), "file not found")
    if data.suffix in (".jsonl", ".json"):
        return datasets.Dataset.from_json(str(data))
    if data.suffix == ".parquet":
        return datasets.Dataset.from_parquet(str(data))
    raise DataError(str(data), f"unsupported file type '{data.suffix}'; use a directory, "
                    ".jsonl or .parquet")
