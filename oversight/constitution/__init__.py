"""Constitutions: versioned TOML files of principles."""

from oversight.constitution._constitution import (
    Constitution,
    Principle,
    builtin,
    builtin_dir,
    content_hash,
    load_constitution,
    parse_constitution,
    principle_dict,
)
from oversight.constitution._verifiers import (
    VERIFIER_TYPES,
    Verdict,
    VerifierSpec,
    run_verifier,
)
from oversight.errors import ConstitutionError

__all__ = [
    "Constitution",
    "ConstitutionError",
    "Principle",
    "builtin",
    "builtin_dir",
    "content_hash",
    "load_constitution",
    "parse_constitution",
    "principle_dict",
    "run_verifier",
    "VERIFIER_TYPES",
    "Verdict",
    "VerifierSpec",
]
