"""Constitutions: versioned TOML files of principles."""

from oversight.constitution._constitution import (
    Constitution,
    Principle,
    builtin,
    builtin_dir,
    builtin_names,
    content_hash,
    load_constitution,
    parse_constitution,
)
from oversight.errors import ConstitutionError

__all__ = [
    "Constitution",
    "ConstitutionError",
    "Principle",
    "builtin",
    "builtin_dir",
    "builtin_names",
    "content_hash",
    "load_constitution",
    "parse_constitution",
]
