"""Governance: who writes a constitution, how it may change, and what is guaranteed.

Participatory drafting turns stakeholders' votes into a constitution by group-aware consensus
and merges stakeholders' constitutions into one panel; the inverse constitution finds the few
principles that best reconstruct a set of preference labels. Amendments change a constitution
only through a declared gate and are recorded in a tamper-evident hash-chained log (its format
is owned by `oversight.constitution`, a lower layer, so reports and exports can read it); the
veto guarantee of the decision procedure is proved with z3 (`prove_veto_guarantee`).
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
from oversight.governance._inverse import (
    InverseResult,
    PrincipleVotes,
    candidate_pool,
    dedup_principles,
    generate_principles,
    infer_constitution,
    labels_from_decisions,
    labels_from_items,
    principle_from_statement,
    principle_votes,
    reconstruct,
    select_principles,
    votes_from_judgments,
)
from oversight.governance._participatory import (
    ConsensusDraft,
    draft_constitution,
    group_consensus,
    impute_votes,
    kmeans,
    merge_stakeholders,
    pca,
    silhouette,
    stakeholder_conflicts,
    stakeholder_weights,
)
from oversight.governance._proof import ProofResult, prove_veto_guarantee
from oversight.governance._votes import Votes, load_polis, load_votes

__all__ = [
    "AmendResult",
    "ConsensusDraft",
    "Gate",
    "GateResult",
    "InverseResult",
    "LogCheck",
    "PrincipleVotes",
    "ProofResult",
    "Proposal",
    "Votes",
    "amend",
    "amendment_label",
    "amendment_of",
    "apply_proposal",
    "candidate_pool",
    "critics_for",
    "dedup_principles",
    "draft_constitution",
    "evaluate_gate",
    "gate_path",
    "generate_principles",
    "group_consensus",
    "impute_votes",
    "infer_constitution",
    "init_log",
    "kmeans",
    "labels_from_decisions",
    "labels_from_items",
    "load_gate",
    "load_polis",
    "load_proposal",
    "load_votes",
    "log_path",
    "merge_stakeholders",
    "parse_proposal",
    "pca",
    "principle_from_statement",
    "principle_votes",
    "prove_veto_guarantee",
    "read_log",
    "reconstruct",
    "select_principles",
    "silhouette",
    "stakeholder_conflicts",
    "stakeholder_weights",
    "structural_diff",
    "text_diff",
    "verify_log",
    "votes_from_judgments",
    "weakened_vetoes",
]
