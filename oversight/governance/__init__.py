"""Governance: who writes a constitution, and which principles a set of preferences follows.

Participatory drafting turns stakeholders' votes into a constitution by group-aware consensus
and merges stakeholders' constitutions into one panel; the inverse constitution finds the few
principles that best reconstruct a set of preference labels.
"""

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
from oversight.governance._votes import Votes, load_polis, load_votes

__all__ = [
    "ConsensusDraft",
    "InverseResult",
    "PrincipleVotes",
    "Votes",
    "candidate_pool",
    "dedup_principles",
    "generate_principles",
    "infer_constitution",
    "labels_from_decisions",
    "labels_from_items",
    "principle_from_statement",
    "principle_votes",
    "reconstruct",
    "select_principles",
    "votes_from_judgments",
    "draft_constitution",
    "group_consensus",
    "impute_votes",
    "kmeans",
    "load_polis",
    "load_votes",
    "merge_stakeholders",
    "pca",
    "silhouette",
    "stakeholder_conflicts",
    "stakeholder_weights",
]
