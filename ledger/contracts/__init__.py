"""The smart contracts: in-process compilation of contracts/*.vy and typed bindings."""

from __future__ import annotations

from ledger.contracts.bindings import (
    KIND_ROLES,
    AccountRights,
    AnchorKind,
    AnchorRegistryContract,
    ConsortiumContract,
    KeyInfo,
    LeafStatus,
    LeafStatusInfo,
    MemberInfo,
    MemberStatus,
    ProposalAction,
    ProposalInfo,
    ProposalOutcome,
    Role,
    RootInfo,
    decode_events,
    decode_log,
    deploy_all,
    event_abis,
    event_contract,
)
from ledger.contracts.compiler import CONTRACTS_DIR, Compiled, compiled

__all__ = [
    "CONTRACTS_DIR",
    "KIND_ROLES",
    "AccountRights",
    "AnchorKind",
    "AnchorRegistryContract",
    "Compiled",
    "ConsortiumContract",
    "KeyInfo",
    "LeafStatus",
    "LeafStatusInfo",
    "MemberInfo",
    "MemberStatus",
    "ProposalAction",
    "ProposalInfo",
    "ProposalOutcome",
    "Role",
    "RootInfo",
    "compiled",
    "decode_events",
    "decode_log",
    "deploy_all",
    "event_abis",
    "event_contract",
]
