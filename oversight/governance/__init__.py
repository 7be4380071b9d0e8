"""Governance: constitutions that change only through a declared gate, recorded in a
tamper-evident hash-chained log, with provenance of which amendment a run was judged under.

Sits above `panel` (the gate judges old and new constitutions with a panel). The log's format
is owned by `oversight.constitution` (a lower layer, so reports and exports can read it).
"""

from oversight.constitution import (
    LogCheck,
    amendment_label,
    amendment_of,
    log_path,
    read_log,
    verify_log,
)
from oversight.governance._amend import AmendResult, amend, init_log, text_diff
from oversight.governance._change import (
    Proposal,
    apply_proposal,
    load_proposal,
    parse_proposal,
    structural_diff,
    weakened_vetoes,
)
from oversight.governance._gate import (
    Gate,
    GateResult,
    critics_for,
    evaluate_gate,
    gate_path,
    load_gate,
)
from oversight.governance._proof import ProofResult, prove_veto_guarantee

__all__ = [
    "AmendResult",
    "Gate",
    "GateResult",
    "LogCheck",
    "ProofResult",
    "Proposal",
    "amend",
    "amendment_label",
    "amendment_of",
    "apply_proposal",
    "critics_for",
    "evaluate_gate",
    "gate_path",
    "init_log",
    "load_gate",
    "load_proposal",
    "log_path",
    "parse_proposal",
    "prove_veto_guarantee",
    "read_log",
    "structural_diff",
    "text_diff",
    "verify_log",
    "weakened_vetoes",
]
