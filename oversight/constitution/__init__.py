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
    principle_dict,
)
from oversight.constitution._log import (
    LogCheck,
    amendment_label,
    amendment_of,
    log_path,
    read_log,
    verify_log,
)
from oversight.constitution._toml import to_toml
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
    "builtin_names",
    "content_hash",
    "load_constitution",
    "parse_constitution",
    "principle_dict",
    "LogCheck",
    "amendment_label",
    "amendment_of",
    "log_path",
    "read_log",
    "to_toml",
    "verify_log",
    "run_verifier",
    "VERIFIER_TYPES",
    "Verdict",
    "VerifierSpec",
]
