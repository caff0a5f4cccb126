"""The proof that ties one leaf to the chain, as it travels with a credential file.

Its JSON form (``to_dict``) is the ``anchor`` object of a credential file; ``from_dict``
refuses anything else (a missing, unknown or mistyped field is ``malformed``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidInput

__all__ = ["AnchorProof", "refuse_unknown_fields"]

_HEX32_ANY_CASE = re.compile(r"0x[0-9a-fA-F]{64}\Z")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
_ANCHOR_FIELDS = frozenset({"leaf", "proof", "root", "chain_id", "contract", "tx_hash", "block_number"})
_REQUIRED_ANCHOR_FIELDS = ("leaf", "proof", "root", "chain_id", "contract")


def _is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def refuse_unknown_fields(raw: dict[Any, Any], known: frozenset[str], what: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise InvalidInput(f"{what} has unknown fields: {', '.join(unknown)[:200]}", code="malformed")


@dataclass(frozen=True)
class AnchorProof:
    """Everything a verifier needs to check one leaf against the chain: the leaf, its
    Merkle path and root, and where the root was anchored (chain, registry, transaction,
    block; the last two unknown until the batch is anchored)."""

    leaf: str
    proof: list[str]
    root: str
    chain_id: int
    contract: str
    tx_hash: str | None
    block_number: int | None

    def to_dict(self) -> dict[str, Any]:
        # = dataclasses.asdict, without its deep copy of every field (a hot path of verify)
        return {"leaf": self.leaf, "proof": list(self.proof), "root": self.root,
                "chain_id": self.chain_id, "contract": self.contract, "tx_hash": self.tx_hash,
                "block_number": self.block_number}

    @classmethod
    def from_dict(cls, raw: Any) -> AnchorProof:
        """The proof as :meth:`to_dict` wrote it; anything else (a missing, unknown or
        mistyped field) is ``malformed``."""
        if not isinstance(raw, dict):
            raise InvalidInput("the anchor proof must be an object", code="malformed")
        refuse_unknown_fields(raw, _ANCHOR_FIELDS, "the anchor proof")
        missing = [k for k in _REQUIRED_ANCHOR_FIELDS if k not in raw]
        if missing:
            raise InvalidInput(f"the anchor proof is incomplete (missing {', '.join(missing)})",
                               code="malformed")
        proof, chain_id, block_number, tx_hash = (raw["proof"], raw["chain_id"], raw.get("block_number"),
                                                  raw.get("tx_hash"))
        if not isinstance(proof, list) or len(proof) > 64 or not all(
                isinstance(h, str) and _HEX32_ANY_CASE.match(h) for h in (raw["leaf"], raw["root"], *proof)):
            raise InvalidInput("the anchor proof holds malformed hashes", code="malformed")
        if not _is_count(chain_id) or chain_id == 0:
            raise InvalidInput("the anchor proof's chain_id is not a chain id", code="malformed")
        if not isinstance(raw["contract"], str) or not _ADDRESS.match(raw["contract"]):
            raise InvalidInput("the anchor proof names a malformed contract address", code="malformed")
        if tx_hash is not None and not (isinstance(tx_hash, str) and _HEX32_ANY_CASE.match(tx_hash)):
            raise InvalidInput("the anchor proof's tx_hash is not a transaction hash", code="malformed")
        if block_number is not None and not _is_count(block_number):
            raise InvalidInput("the anchor proof's block_number is not a block number", code="malformed")
        return cls(leaf=raw["leaf"].lower(), proof=[p.lower() for p in proof], root=raw["root"].lower(),
                   chain_id=chain_id, contract=raw["contract"],
                   tx_hash=None if tx_hash is None else tx_hash.lower(), block_number=block_number)

    def proof_bytes(self) -> list[bytes]:
        return [bytes.fromhex(p[2:]) for p in self.proof]
