"""Data in: comparisons from JSONL, Parquet, Hugging Face datasets, or Python rows; prompts
for revision and RL."""

from oversight.data._comparison import Comparison, Message
from oversight.data._loaders import (
    Comparisons,
    builtin_dataset_path,
    builtin_datasets,
    demo_pairs_path,
    load_comparisons,
    row_to_comparison,
    split_hh_dialogue,
)
from oversight.data._prompts import load_prompts
from oversight.errors import DataError

__all__ = [
    "Comparison",
    "Comparisons",
    "DataError",
    "Message",
    "builtin_dataset_path",
    "builtin_datasets",
    "demo_pairs_path",
    "load_comparisons",
    "load_prompts",
    "row_to_comparison",
    "split_hh_dialogue",
]
