"""Verification: every check, its outcome and its reason, against the chain alone.

Trust comes from one place: the AnchorRegistry the verifier is configured with (and the
Consortium it names). Everything else — the issuer's key, its membership and role when
the batch was anchored, the anchor itself, the status — is read from the chain; no
organisation's API or database is trusted.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from web3.exceptions import TransactionNotFound

from ledger.anchoring.interfaces import LeafStatusSource, ProofSource
from ledger.anchoring.proof import AnchorProof
from ledger.chain import ChainAPI
from ledger.contracts.bindings import (
    AnchorRegistryContract,
    ConsortiumContract,
    KeyInfo,
    LeafStatus,
    MemberInfo,
    MemberStatus,
)
from ledger.credentials import sdjwt
from ledger.credentials.anchorproof import credential_leaf
from ledger.credentials.did import parse_did, parse_key_id
from ledger.credentials.messages import message
from ledger.credentials.types import CredentialType
from ledger.errors import InvalidInput
from ledger.merkle import verify_proof

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
_KEYS_REMEMBERED = 4096
# Each way the anchor check fails has its own code (and message, ledger.credentials.messages).
ANCHOR_FAILURES = ("anchor_proof_missing", "anchor_proof_other_credential", "anchor_other_registry",
                   "anchor_proof_invalid", "anchor_root_unknown", "anchor_other_member",
                   "anchor_block_mismatch", "anchor_tx_mismatch")
CHECK_ORDER = ("format", "issuer", "signature", "disclosures", "anchor", "membership",
               "signing_key", "status", "validity", "holder_binding")


@dataclass
class Check:
    name: str
    outcome: str
    code: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        en, zh = message(self.code, self.details)
        return {"check": self.name, "outcome": self.outcome, "code": self.code,
                "message": en, "message_zh": zh, **({"details": self.details} if self.details else {})}


@dataclass
class Verification:
    checks: list[Check]
    claims: dict[str, Any] | None = None
    disclosed: list[tuple[tuple[str | int, ...], Any]] = field(default_factory=list)
    credential_type: str | None = None
    issuer: dict[str, Any] = field(default_factory=dict)
    issued_at: str | None = None
    anchored_at: str | None = None
    anchor: dict[str, Any] | None = None
    leaf: str | None = None

    @property
    def valid(self) -> bool:
        return all(c.outcome != FAILED for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [c.code for c in self.checks if c.outcome == FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "failures": self.failures,
            "credential_type": self.credential_type,
            "issuer": self.issuer,
            "issued_at": self.issued_at,
            "anchored_at": self.anchored_at,
            "claims": self.claims,
            "disclosed": [{"path": _path_text(path), "value": value} for path, value in self.disclosed],
            "leaf": self.leaf,
            "anchor": self.anchor,
            "checks": [c.to_dict() for c in self.checks],
        }


@lru_cache(maxsize=4096)  # every transcript of a school has the same few dozen paths
def _path_text(path: tuple[str | int, ...]) -> str:
    return ".".join(map(str, path))


def _iso(ts: int | float | None) -> str | None:
    return None if ts is None else _iso_seconds(int(ts))


@lru_cache(maxsize=4096)  # the same few issuance and anchoring times, over and over
def _iso_seconds(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _rfc3339(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class _RootAbsent(Exception):
    """The root is not (yet) anchored in the registry."""


class CredentialVerifier:
    """Checks credentials against one trusted AnchorRegistry on one chain."""

    def __init__(self, client: ChainAPI, registry_address: str, *,
                 anchors: ProofSource | None = None,
                 statuses: LeafStatusSource | None = None) -> None:
        self.client = client
        self.registry = AnchorRegistryContract.at(client, registry_address)
        self.consortium = ConsortiumContract.at(client, self.registry.consortium_address())
        # Where a credential file without its proof gets one (a node's own anchoring).
        self.anchors = anchors
        # The status is read fresh (never cached); by default straight from the contract.
        self.statuses: LeafStatusSource = statuses or self.registry
        # Facts about past blocks never change: cache them (status is never cached).
        self._root_info = lru_cache(maxsize=65536)(self._fresh_root_info)
        self._keys: dict[bytes, tuple[KeyInfo, int]] = {}  # see _key_info
        self._roots_of_tx = lru_cache(maxsize=4096)(self._fresh_roots_of_tx)
        self._member_at = lru_cache(maxsize=65536)(
            lambda member_id, block: self.consortium.member(member_id, block=block))
        self._block_time = lru_cache(maxsize=65536)(
            lambda number: int(self.client.block(number)["timestamp"]))

    def _key_info(self, key: bytes) -> tuple[KeyInfo, int]:
        """The key's registration as of a recent block, and that block's number. A key's
        member and first block never change once it is registered, so a known key is
        remembered; an unknown one is not (it may be registered later). When its validity
        ends may change later: :meth:`_key_valid_at` reads again for a later block."""
        remembered = self._keys.get(key)
        if remembered is not None:
            return remembered
        head = self.client.block_number()
        info = self.consortium.key_info(key, block=head)
        if info.known:
            if len(self._keys) >= _KEYS_REMEMBERED:
                with contextlib.suppress(RuntimeError):  # another thread changed it meanwhile
                    self._keys.pop(next(iter(self._keys), key), None)  # the oldest
            self._keys[key] = (info, head)
        return info, head

    def signer_at(self, kid: Any, block: int) -> tuple[str, Ed25519PublicKey, MemberInfo]:
        """Who signed with key id `kid`, checked against the chain as of `block`: (DID, the
        public key, the member as it was then). InvalidInput ``issuer_unknown`` when the key
        id is not an eduledger key of this consortium's member, ``signing_key_invalid``
        when the key was not valid at `block`. For signed objects that are not anchored
        credentials (identity cards, signatures), which ask "was the signer valid then"."""
        did, public_key, (chain_id, consortium, member_id) = _issuer_of(kid)
        key, _ = self._key_info(public_key)
        if (chain_id != self.client.chain_id or consortium != self.consortium.address.lower()
                or key.member_id != member_id):
            raise InvalidInput("the key id names no registered key of its member", code="issuer_unknown")
        if not self._key_valid_at(public_key, block):
            raise InvalidInput("the signing key was not valid then", code="signing_key_invalid")
        return did, _public_key(public_key), self._member_at(member_id, block)

    def block_time(self, number: int) -> int:
        return int(self._block_time(number))

    def _key_valid_at(self, key: bytes, block: int) -> bool:
        info, read_at = self._key_info(key)
        if block > read_at and info.valid_until is None:
            # anchored after the key was read: it may have been retired in between
            self._keys.pop(key, None)
            info, _ = self._key_info(key)
        return info.valid_at(block)

    def _fresh_root_info(self, root: bytes) -> Any:
        info = self.registry.root_info(root)
        if not info.anchored:
            # raised, so not cached (it may be anchored later), and the cache is left as it
            # is: clearing it on every unknown root would let anyone empty it
            raise _RootAbsent
        return info

    def _anchored_in(self, tx_hash: str, block: int) -> frozenset[bytes]:
        """The roots that transaction ``tx_hash`` anchored in this registry, if it was mined
        in ``block`` (none otherwise, or if there is no such transaction)."""
        try:
            return self._roots_of_tx(tx_hash, block)
        except TransactionNotFound:  # not cached: it is not a fact about a past block
            return frozenset()

    def _fresh_roots_of_tx(self, tx_hash: str, block: int) -> frozenset[bytes]:
        receipt = self.client.receipt(tx_hash)
        if int(receipt["blockNumber"]) != block:
            return frozenset()
        return frozenset(bytes(args["root"]) for name, args in self.registry.events(receipt["logs"])
                         if name == "Anchored")

    def verify(self, sd_jwt: str, anchor: AnchorProof | None = None, *,
               require_holder_binding: bool = False, aud: str | None = None,
               nonce: str | None = None, now: float | None = None) -> Verification:
        now = time.time() if now is None else now
        result = Verification(checks=[])
        checks = result.checks

        def skip_rest(reason: str) -> Verification:
            done = {c.name for c in checks}
            for name in CHECK_ORDER:
                if name not in done:
                    checks.append(Check(name, SKIPPED, reason))
            return result

        try:
            parsed = sdjwt.parse(sd_jwt)
        except InvalidInput as exc:
            checks.append(Check("format", FAILED, "malformed", {"problem": exc.message}))
            return skip_rest("not_checked")
        checks.append(Check("format", PASSED, "ok"))
        payload = parsed.payload
        result.credential_type = _credential_type(payload)
        result.issued_at = _iso(payload.get("iat")) if isinstance(payload.get("iat"), int) else None

        # -- issuer: the key id names a key registered on chain by the named member -----
        try:
            did, public_key, (chain_id, consortium, member_id) = _issuer_of(parsed.header.get("kid"))
        except InvalidInput:
            checks.append(Check("issuer", FAILED, "issuer_unknown"))
            return skip_rest("not_checked")
        issuer = payload.get("issuer")
        issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
        result.issuer = {"id": did, "member_id": member_id,
                         "name": issuer.get("name") if isinstance(issuer, dict) else None}
        key, _ = self._key_info(public_key)
        if (issuer_id != did or payload.get("iss", did) != did or chain_id != self.client.chain_id
                or consortium != self.consortium.address.lower() or key.member_id != member_id):
            checks.append(Check("issuer", FAILED, "issuer_unknown"))
            return skip_rest("not_checked")
        checks.append(Check("issuer", PASSED, "ok"))

        # -- signature, disclosures, key binding ------------------------------------------
        verified: sdjwt.Verified | None = None
        holder_failure: Check | None = None
        try:
            verified = sdjwt.verify_parsed(
                parsed, issuer_key=lambda _h, _p: _public_key(public_key),
                require_key_binding=require_holder_binding, aud=aud, nonce=nonce, now=int(now))
        except sdjwt.SdJwtError as exc:
            # parse() already passed, so a later "malformed" is about the disclosed content.
            stage = {"signature_invalid": "signature", "claim_tampered": "disclosures",
                     "malformed": "disclosures"}.get(exc.code, "holder_binding")
            for name in ("signature", "disclosures"):
                if name == stage:
                    checks.append(Check(name, FAILED, exc.code, {"problem": exc.message}))
                    return skip_rest("not_checked")
                checks.append(Check(name, PASSED, "ok"))
            holder_failure = Check("holder_binding", FAILED, exc.code, {"problem": exc.message})
        if verified is not None:
            checks += [Check("signature", PASSED, "ok"), Check("disclosures", PASSED, "ok")]
            result.claims = verified.claims
            result.disclosed = verified.disclosed

        # -- anchor ----------------------------------------------------------------------
        leaf = credential_leaf(payload)
        result.leaf = "0x" + leaf.hex()
        # A file without its proof: a verifier on a node looks the leaf up in that node's own
        # anchoring (the API does: POST /v1/verify with a bare SD-JWT of one of its batches
        # verifies). The proof found is checked against the chain like any other, so the node
        # is trusted for nothing. A verifier with the chain alone (eduledger verify --rpc)
        # cannot: no leaf is on chain, only roots; it says the proof is missing.
        looked_up = anchor is None and self.anchors is not None
        if anchor is None and self.anchors is not None:
            anchor = self.anchors.proof_for(leaf)
        root_info = self._check_anchor(checks, leaf, anchor, member_id, looked_up=looked_up)
        if root_info is None:
            return self._finish(result, checks, holder_failure, verified, require_holder_binding,
                                payload, now, skip_from="membership")
        assert anchor is not None
        block = root_info.block_number
        result.anchor = anchor.to_dict()
        result.anchored_at = _iso(self._block_time(block))

        # -- membership and role when anchored; signing key valid then -------------------
        member = self._member_at(member_id, block)
        result.issuer["name"] = member.name
        allowed = _allowed_roles(result.credential_type)
        if member.status is not MemberStatus.ACTIVE or member.role.name.lower() not in allowed:
            checks.append(Check("membership", FAILED, "issuer_not_authorised",
                                {"role": member.role.name.lower(), "status": member.status.name.lower(),
                                 "block": block}))
        else:
            checks.append(Check("membership", PASSED, "ok", {"role": member.role.name.lower()}))
        if self._key_valid_at(public_key, block):
            checks.append(Check("signing_key", PASSED, "ok"))
        else:
            checks.append(Check("signing_key", FAILED, "signing_key_invalid", {"block": block}))

        # -- status ----------------------------------------------------------------------
        status = self.statuses.status_of(leaf, bytes.fromhex(anchor.root[2:]))
        if status.status in (LeafStatus.VALID, LeafStatus.REINSTATED):
            checks.append(Check("status", PASSED, "ok"))
        else:
            code = {LeafStatus.REVOKED: "revoked", LeafStatus.SUSPENDED: "suspended",
                    LeafStatus.SUPERSEDED: "superseded"}[status.status]
            details: dict[str, Any] = {"reason_code": status.reason,
                                       "since": _iso(self._block_time(status.block_number))}
            if status.superseded_by is not None:
                details["superseded_by"] = "0x" + status.superseded_by.hex()
            checks.append(Check("status", FAILED, code, details))
        return self._finish(result, checks, holder_failure, verified, require_holder_binding,
                            payload, now)

    def _check_anchor(self, checks: list[Check], leaf: bytes, anchor: AnchorProof | None,
                      member_id: int, *, looked_up: bool) -> Any:
        """The anchor check, with a code of its own for each way it fails (ANCHOR_FAILURES).
        ``looked_up``: the file came without a proof and this verifier asked its own node's
        anchoring for one (so "no proof" then means the node knows of no such batch)."""
        def fail(code: str, **details: Any) -> None:
            checks.append(Check("anchor", FAILED, code, details))

        if anchor is None:
            fail("anchor_proof_missing", looked_up=looked_up)
            return None
        if anchor.leaf != "0x" + leaf.hex():
            fail("anchor_proof_other_credential", proof_leaf=anchor.leaf)
            return None
        trusted = self.registry.address.lower()
        if anchor.chain_id != self.client.chain_id or anchor.contract.lower() != trusted:
            fail("anchor_other_registry", chain_id=anchor.chain_id, contract=anchor.contract,
                 trusted_chain_id=self.client.chain_id, trusted_contract=self.registry.address)
            return None
        root = bytes.fromhex(anchor.root[2:])
        if not verify_proof(leaf, anchor.proof_bytes(), root):
            fail("anchor_proof_invalid", root=anchor.root)
            return None
        try:
            info = self._root_info(root)
        except _RootAbsent:
            fail("anchor_root_unknown", root=anchor.root)
            return None
        if info.member_id != member_id:
            fail("anchor_other_member", root=anchor.root, anchored_by=info.member_id, issuer=member_id)
            return None
        # The proof's block and transaction are shown with the verdict: they must be true.
        if anchor.block_number is not None and anchor.block_number != info.block_number:
            fail("anchor_block_mismatch", claimed_block=anchor.block_number, block=info.block_number)
            return None
        if anchor.tx_hash is not None and root not in self._anchored_in(anchor.tx_hash, info.block_number):
            fail("anchor_tx_mismatch", tx_hash=anchor.tx_hash, block=info.block_number)
            return None
        checks.append(Check("anchor", PASSED, "ok", {"block": info.block_number}))
        return info

    def _finish(self, result: Verification, checks: list[Check], holder_failure: Check | None,
                verified: Any, required: bool, payload: dict[str, Any], now: float,
                skip_from: str | None = None) -> Verification:
        if skip_from is not None:
            for name in ("membership", "signing_key", "status"):
                checks.append(Check(name, SKIPPED, "not_checked"))
        valid_from, valid_until = _rfc3339(payload.get("validFrom")), _rfc3339(payload.get("validUntil"))
        # The SD-JWT VC's exp / nbf (what a generic verifier reads) bind as well, should they
        # ever say less than validUntil / validFrom.
        exp, nbf = payload.get("exp"), payload.get("nbf")
        if type(exp) is int and (valid_until is None or exp < valid_until):
            valid_until = exp
        if type(nbf) is int and (valid_from is None or nbf > valid_from):
            valid_from = nbf
        if valid_until is not None and now >= valid_until:
            checks.append(Check("validity", FAILED, "expired", {"valid_until": _iso(valid_until)}))
        elif valid_from is not None and now < valid_from:
            checks.append(Check("validity", FAILED, "not_yet_valid", {"valid_from": _iso(valid_from)}))
        else:
            checks.append(Check("validity", PASSED, "ok"))
        if holder_failure is not None:
            checks.append(holder_failure)
        elif verified is not None and verified.key_binding is not None:
            checks.append(Check("holder_binding", PASSED, "ok"))
        elif required:
            checks.append(Check("holder_binding", FAILED, "holder_binding_missing"))
        else:
            checks.append(Check("holder_binding", SKIPPED, "not_required"))
        return result


@lru_cache(maxsize=4096)
def _issuer_key_id(kid: str) -> tuple[str, bytes, tuple[int, str, int]]:
    did, public_key = parse_key_id(kid)
    return did, public_key, parse_did(did)


def _issuer_of(kid: Any) -> tuple[str, bytes, tuple[int, str, int]]:
    """(DID, public key, (chain id, consortium, member id)) named by a key id."""
    if type(kid) is not str or len(kid) > 512:
        return _issuer_key_id.__wrapped__(kid)  # raises InvalidInput; not worth caching
    return _issuer_key_id(kid)


@lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def _credential_type(payload: dict[str, Any]) -> str | None:
    """The type the VC's ``type`` names; None (no issuer is authorised for it) when there is
    none, or when the SD-JWT VC ``vct`` (credentials issued before it have none) disagrees."""
    types = payload.get("type")
    if not isinstance(types, list):
        return None
    for ctype in CredentialType:
        if ctype.vc_type in types:
            return ctype.value if payload.get("vct", ctype.vct) == ctype.vct else None
    return None


@lru_cache(maxsize=64)
def _allowed_roles(credential_type: str | None) -> frozenset[str]:
    if credential_type is None:
        return frozenset()
    return frozenset(CredentialType(credential_type).issuer_roles)
