"""Issuing credentials, binding them to holders, changing their status, sharing them.

Issuance: every row is validated before anything is signed; each credential is a W3C VC
secured as an SD-JWT signed with the organisation's Ed25519 key (registered on chain);
the leaves of a batch go into one Merkle root, anchored in one transaction. Credentials
and their claim codes are written in the same SQL transaction that accepts the batch, so
after a crash they exist exactly when the batch does, and the batch completes on resume.

Claim codes are derived (HMAC of the credential id under a key derived from the
organisation's signing key), so only their hashes are stored and a retried request with
the same idempotency key returns the very same codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, Table, delete, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from ledger.anchoring import AnchoringAPI
from ledger.anchoring.models import AnchorBatch, AnchorLeaf, AnchorStatus
from ledger.anchoring.proof import AnchorProof
from ledger.anchoring.service import same_request
from ledger.chain import ChainAPI
from ledger.consortium.deployment import Deployment, MemberRecord
from ledger.contracts.bindings import AnchorKind, AnchorRegistryContract, ConsortiumContract
from ledger.credentials import jose, sdjwt
from ledger.credentials.anchorproof import credential_leaf
from ledger.credentials.did import issuer_did, key_id
from ledger.credentials.models import CertificateNumber, ClaimCode, CredentialRecord, Share
from ledger.credentials.roster import gc_paused
from ledger.credentials.signing import SigningJob, SigningPool, claim_code, shared_pool
from ledger.credentials.statuses import follow_chain_statuses
from ledger.credentials.types import MULTILINE_PATTERN, CredentialType
from ledger.credentials.verify import CredentialVerifier, Verification
from ledger.errors import Conflict, InvalidInput, LedgerError, NotFound, PermissionDenied
from ledger.indexer import IndexedLeafStatus
from ledger.keys import KeySource, OrganisationKeys
from ledger.merkle import MerkleTree
from ledger.store import session_scope
from ledger.store.columns import utcnow

log = logging.getLogger("eduledger.credentials")

MAX_SHARE_DAYS = 180
_CREDENTIAL: Table = CredentialRecord.__table__  # type: ignore[attr-defined]
_CLAIM_CODE: Table = ClaimCode.__table__  # type: ignore[attr-defined]
_NUMBER: Table = CertificateNumber.__table__  # type: ignore[attr-defined]
STATUS_ACTIONS = {"revoke": "revoked", "suspend": "suspended", "reinstate": "valid"}
SHARE_ID_BYTES = 12  # 96 random bits: 16 base64url characters in the link
_SHARE_ID_RE = re.compile(r"[A-Za-z0-9_-]{16}")
# A share's verification code, typed by a person (GET /verify): no 0/O, 1/I/L or U/V-like
# pairs to confuse; 16 characters, shown XXXX-XXXX-XXXX-XXXX, 78 random bits, so it cannot
# be guessed even without the public rate limit.
VERIFY_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
VERIFY_CODE_CHARS = 16
_VERIFY_CODE_RE = re.compile(f"[{VERIFY_CODE_ALPHABET}]{{{VERIFY_CODE_CHARS}}}")
# What a person may type for a letter that is not in the alphabet
_VERIFY_CODE_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
MAX_NOTE_CHARS = 500
MAX_IDEMPOTENCY_KEY_CHARS = 80  # scoped by the organisation id, it fits the 128 stored
_NOTE_RE = re.compile(MULTILINE_PATTERN)
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x20-\x7e]+")


def _check_note(note: str | None) -> None:
    """A status note: free text up to 500 characters, line breaks allowed, no other control
    characters and no lone surrogates (a database cannot store them). Checked before anything
    is sent to the chain."""
    if note is None:
        return
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS or not _NOTE_RE.match(note):
        raise InvalidInput(f"a note is text of at most {MAX_NOTE_CHARS} characters, without control "
                           "characters other than line breaks", code="bad_note")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("a note must be valid Unicode", code="bad_note") from None


def _share_in(session: Session, share_id: str) -> Share:
    if not _SHARE_ID_RE.fullmatch(share_id):  # not one we make: no need to ask the database
        raise NotFound("no such share", code="share_not_found")
    share = session.get(Share, share_id)
    if share is None:
        raise NotFound("no such share", code="share_not_found")
    return share


def new_verify_code() -> str:
    return "".join(secrets.choice(VERIFY_CODE_ALPHABET) for _ in range(VERIFY_CODE_CHARS))


def shown_verify_code(code: str) -> str:
    """XXXX-XXXX-XXXX-XXXX."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def normalise_verify_code(text: str) -> str:
    """A typed code as stored: spaces and dashes dropped, upper case. Letters a person may
    have typed for a lookalike (O for 0, ...) leave the alphabet, so they are refused, not
    guessed at: ``bad_verify_code``."""
    code = re.sub(r"[\s\-\u2010-\u2015\u2212\u30fc\uff0d]", "", text or "").upper()
    if not _VERIFY_CODE_RE.fullmatch(code):
        lookalike = code.translate(_VERIFY_CODE_LOOKALIKES) != code
        raise InvalidInput(
            f"a verification code is {VERIFY_CODE_CHARS} characters of {VERIFY_CODE_ALPHABET}"
            + (" (there is no O, I, L or U in it)" if lookalike else ""), code="bad_verify_code")
    return code


def _check_reason(reason: int) -> None:
    if not isinstance(reason, int) or isinstance(reason, bool) or not 0 <= reason < 2**16:
        raise InvalidInput("reason must be a code from 0 to 65535", code="bad_reason")


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and (len(key) > MAX_IDEMPOTENCY_KEY_CHARS
                            or not _IDEMPOTENCY_KEY_RE.fullmatch(key)):
        raise InvalidInput(f"an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII "
                           "characters (a UUID, say)", code="bad_idempotency_key")


@dataclass(frozen=True)
class IssuedCredential:
    credential_id: str
    leaf: str
    claim_code: str
    student_id: str | None
    anchor: AnchorProof


@dataclass(frozen=True)
class IssuedBatch:
    batch_id: str
    status: str
    credentials: list[IssuedCredential]

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "status": self.status, "count": len(self.credentials),
                "credentials": [{"credential_id": c.credential_id, "claim_code": c.claim_code,
                                 "student_id": c.student_id, "leaf": c.leaf,
                                 "anchor": c.anchor.to_dict()} for c in self.credentials]}


def _request_hash(ctype: CredentialType, rows: Sequence[Any], supersedes: str | None) -> str:
    """What an issuance asks for, as a digest: the same Idempotency-Key with another roster
    is refused rather than answered with the first roster's batch."""
    digest = hashlib.sha256(f"{ctype.value}\n{supersedes or ''}\n".encode())
    for row in rows:
        digest.update(row.model_dump_json().encode("utf-8") if hasattr(row, "model_dump_json")
                      else json.dumps(row, sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _raw_private_key(keys: OrganisationKeys) -> bytes:
    return keys.ed25519_private.private_bytes(serialization.Encoding.Raw,
                                              serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption())


def _claim_key(keys: OrganisationKeys) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"eduledger claim codes").derive(_raw_private_key(keys))


def normalise_code(code: str) -> str:
    return code.strip().upper().replace(" ", "")


def claim_code_hash(code: str) -> str:
    """What is stored of a claim code (as typed: spaces and case do not matter)."""
    return _sha256(normalise_code(code))


class _CredentialRows:
    """The credential, claim-code and certificate-number rows behind a batch's leaves
    (``BatchRecords``): written in the transaction that accepts the batch, removed if the
    contract refuses it. A correction (`supersedes`) takes over the old credential's number."""

    def __init__(self, records: list[dict[str, Any]], codes: list[str], numbers: list[str | None],
                 now: datetime, supersedes: str | None) -> None:
        self.records = records
        self.codes = codes
        self.numbers = numbers
        self.now = now
        self.supersedes = supersedes
        self.proofs: list[list[bytes]] = []
        self._released: list[dict[str, Any]] = []

    def attach(self, session: Session, batch: AnchorBatch, tree: MerkleTree) -> None:
        for record in self.records:
            record["batch_id"] = batch.id
        # Core INSERTs (one executemany each): the ORM's bulk path costs as much as the
        # database here, and the rows are complete (no defaults to fill in).
        session.execute(insert(_CREDENTIAL), self.records)
        session.execute(insert(_CLAIM_CODE), [
            {"code_hash": _sha256(code), "credential_id": record["id"], "created_at": self.now}
            for record, code in zip(self.records, self.codes, strict=True)])
        numbered = [{"issuer_org": record["issuer_org"], "type": record["type"], "number": number,
                     "credential_id": record["id"]}
                    for record, number in zip(self.records, self.numbers, strict=True) if number]
        if self.supersedes is not None:  # the corrected credential gives its number up
            self._released = [dict(row._mapping) for row in session.execute(
                sa_select(_NUMBER).where(_NUMBER.c.credential_id == self.supersedes))]
            session.execute(delete(_NUMBER).where(_NUMBER.c.credential_id == self.supersedes))
        if numbered:
            try:
                with session.begin_nested():
                    session.execute(insert(_NUMBER), numbered)
            except IntegrityError:  # issued meanwhile by another request
                raise Conflict("a certificate number of this roster is already in use by this issuer",
                               code="certificate_number_taken") from None
        self.proofs.extend(tree.proofs())

    def detach(self, session: Session, batch_id: str) -> None:
        ids = select(CredentialRecord.id).where(CredentialRecord.batch_id == batch_id)
        session.execute(delete(ClaimCode).where(ClaimCode.credential_id.in_(ids)))  # type: ignore[attr-defined]
        session.execute(delete(_NUMBER).where(_NUMBER.c.credential_id.in_(ids)))
        if self._released:
            session.execute(insert(_NUMBER), self._released)
        session.execute(delete(CredentialRecord).where(CredentialRecord.batch_id == batch_id))  # type: ignore[arg-type]


class CredentialService:
    def __init__(self, *, engine: Engine, client: ChainAPI, deployment: Deployment, anchoring: AnchoringAPI,
                 keys: KeySource, status_index: IndexedLeafStatus | None = None,
                 signing: SigningPool | None = None) -> None:
        self.engine = engine
        self.client = client
        self.deployment = deployment
        self.anchoring = anchoring
        self.keys = keys
        self.consortium = ConsortiumContract.at(client, deployment.consortium)
        self.registry = AnchorRegistryContract.at(client, deployment.anchor_registry)
        self.status_index = status_index
        self._statuses_seen_block = 0  # see follow_chain_statuses
        self._correcting: set[str] = set()  # credentials this service is correcting now
        # Signs the rows of large rosters in worker processes; by default the process's
        # shared pool, whose workers start with the first large roster (or warm() them).
        self.signing = signing if signing is not None else shared_pool()
        self.verifier = CredentialVerifier(client, deployment.anchor_registry,
                                           anchors=anchoring, statuses=status_index)

    # -- issuing -----------------------------------------------------------------------

    def _org(self, org_id: str) -> MemberRecord:
        org = self.deployment.member(org_id)
        if org is None:
            raise PermissionDenied(f"{org_id} is not a member of this network", code="unknown_member")
        return org

    def issue(self, org_id: str, ctype: CredentialType, rows: Sequence[Any], *,
              idempotency_key: str | None = None, now: datetime | None = None,
              supersedes: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> IssuedBatch:
        org = self._org(org_id)
        _check_idempotency_key(idempotency_key)
        keys = self.keys.keys_for(org_id)
        # The role on chain decides (governance may have changed it since set-up), as it
        # does when the credential is verified.
        rights = self.consortium.anchor_rights(keys.address)
        role = rights.role.name.lower() if rights.role is not None else org["role"]
        if role not in ctype.issuer_roles:
            raise PermissionDenied(f"a {role} may not issue {ctype.value} credentials",
                                   code="role_not_allowed")
        if not rows:
            raise InvalidInput("nothing to issue", code="empty_roster")
        scoped_key = f"{org_id}:{idempotency_key}" if idempotency_key else None
        fingerprint = _request_hash(ctype, rows, supersedes) if scoped_key is not None else None
        secret = _claim_key(keys)
        if scoped_key is not None:
            existing = self._batch_by_key(scoped_key)
            if existing is not None:
                return self._issued_batch(self._finished(same_request(existing, fingerprint)), secret)
        if not rights.can_act:
            raise PermissionDenied(f"{org_id} is not an active member", code="member_not_active")
        numbers = [getattr(row, "certificate_number", None) for row in rows]
        self._check_numbers_free(org_id, ctype, numbers, supersedes)

        now = now or datetime.now(UTC).replace(microsecond=0)
        did = issuer_did(self.client.chain_id, self.deployment.consortium, org["member_id"])
        kid = key_id(did, keys.ed25519_public_bytes)
        job = SigningJob(ctype=ctype, issuer_did=did, kid=kid, issuer_name=org["name"], now=now,
                         private_key=_raw_private_key(keys), claim_secret=secret)
        ids = [f"urn:uuid:{uuid.uuid4()}" for _ in rows]
        records: list[dict[str, Any]] = []
        leaves: list[bytes] = []
        codes: list[str] = []
        with gc_paused():  # what is built here is many small objects, none in a cycle
            for chunk in self.signing.sign(job, rows, ids):
                for signed in chunk:
                    leaves.append(signed.leaf)
                    codes.append(signed.claim_code)
                    records.append({
                        "id": signed.credential_id, "type": ctype.value, "issuer_org": org_id,
                        "batch_id": "", "position": len(records), "leaf_hash": "0x" + signed.leaf.hex(),
                        "student_id": signed.student_id, "sd_jwt": signed.sd_jwt,
                        "valid_from": signed.valid_from, "valid_until": signed.valid_until,
                        "status": "valid", "supersedes": supersedes, "created_at": now})
                if progress is not None:
                    progress(len(records), len(rows))
        batch_rows = _CredentialRows(records, codes, numbers, now, supersedes)

        with gc_paused():
            batch = self.anchoring.anchor(org_id, AnchorKind.CREDENTIAL, leaves, idempotency_key=scoped_key,
                                          request_hash=fingerprint, records=batch_rows)
            if not batch_rows.proofs:  # an idempotent repeat that raced us: read it back
                return self._issued_batch(self._finished(batch), secret)
            return IssuedBatch(batch.id, batch.status, [
                IssuedCredential(record["id"], record["leaf_hash"], code, record["student_id"],
                                 self.anchoring.proof_in(batch, record["leaf_hash"],
                                                         ["0x" + p.hex() for p in proof]))
                for record, code, proof in zip(records, codes, batch_rows.proofs, strict=True)])

    def _finished(self, batch: AnchorBatch) -> AnchorBatch:
        """A batch an earlier request with the same key accepted: anchored now if it is not
        yet (the chain was unreachable then, say), refused if the contract refused it."""
        if batch.status == AnchorStatus.FAILED.value:
            raise Conflict(f"the batch of this Idempotency-Key was refused by the contract: {batch.error}",
                           code="batch_refused", batch_id=batch.id)
        if batch.status != AnchorStatus.ANCHORED.value:
            return self.anchoring.process(batch.id)
        return batch

    def _check_numbers_free(self, org_id: str, ctype: CredentialType, numbers: list[str | None],
                            supersedes: str | None) -> None:
        """A certificate number is unique per issuer and type: one already in use is a
        conflict (409), unless it is the credential being corrected."""
        wanted = sorted({n for n in numbers if n})
        if not wanted:
            return
        with session_scope(self.engine) as session:
            rows = session.execute(sa_select(_NUMBER.c.number, _NUMBER.c.credential_id).where(
                _NUMBER.c.issuer_org == org_id, _NUMBER.c.type == ctype.value,
                _NUMBER.c.number.in_(wanted))).all()
        taken = [(str(number), str(cid)) for number, cid in rows if cid != supersedes]
        if taken:
            listed = ", ".join(number for number, _ in taken[:5]) + (" ..." if len(taken) > 5 else "")
            raise Conflict(f"{len(taken)} certificate number(s) already issued by {org_id}: {listed} "
                           "(correct the existing credential instead)", code="certificate_number_taken",
                           numbers=[{"number": n, "credential_id": c} for n, c in taken[:100]])

    def _batch_by_key(self, scoped_key: str) -> AnchorBatch | None:
        with session_scope(self.engine) as session:
            return session.exec(select(AnchorBatch).where(AnchorBatch.idempotency_key == scoped_key)).first()

    def _issued_batch(self, batch: AnchorBatch, secret: bytes) -> IssuedBatch:
        with session_scope(self.engine) as session:
            # only the columns needed (not the SD-JWTs, most of a batch's bytes)
            rows = session.exec(
                select(CredentialRecord.id, CredentialRecord.student_id, AnchorLeaf.leaf_hash,
                       AnchorLeaf.proof_json)
                .join(AnchorLeaf, AnchorLeaf.leaf_hash == CredentialRecord.leaf_hash)  # type: ignore[arg-type]
                .where(CredentialRecord.batch_id == batch.id)
                .order_by(CredentialRecord.position)  # type: ignore[arg-type]
            ).all()
        return IssuedBatch(batch.id, batch.status, [
            IssuedCredential(credential_id, leaf_hash, claim_code(secret, credential_id), student_id,
                             self.anchoring.proof_in(batch, leaf_hash, json.loads(proof_json)))
            for credential_id, student_id, leaf_hash, proof_json in rows])

    def anchor_for_leaf(self, leaf: bytes) -> AnchorProof | None:
        return self.anchoring.proof_for(leaf)

    # -- reading -----------------------------------------------------------------------

    def get(self, credential_id: str) -> CredentialRecord:
        with session_scope(self.engine) as session:
            record = session.get(CredentialRecord, credential_id)
        if record is None:
            raise NotFound(f"no credential {credential_id}", code="credential_not_found")
        return record

    def issued_by(self, org_id: str, credential_id: str) -> CredentialRecord:
        """A credential `org_id` issued. Another issuer's credential is "not found" exactly as
        an unknown id is: a school cannot learn which ids exist elsewhere."""
        record = self.get(credential_id)
        if record.issuer_org != org_id:
            raise NotFound(f"no credential {credential_id}", code="credential_not_found")
        return record

    # -- redeeming ---------------------------------------------------------------------

    def redeem(self, code: str, holder_jwk: Any) -> dict[str, Any]:
        """Bind the credential behind a one-time claim code to the holder's key."""
        jose.jwk_to_ed25519(holder_jwk)  # validates the key
        return self.redeem_hash(claim_code_hash(code), holder_jwk)

    def unredeemed_claim(self, code_hash: str) -> CredentialRecord:
        """The credential behind a claim code (by its hash) that has not been redeemed yet:
        NotFound ``claim_not_found`` or Conflict ``claim_already_redeemed`` otherwise."""
        with session_scope(self.engine) as session:
            claim = session.get(ClaimCode, code_hash)
            if claim is None:
                raise NotFound("no such claim code", code="claim_not_found")
            if claim.redeemed_at is not None:
                raise Conflict("this claim code has already been used", code="claim_already_redeemed")
            record = session.get(CredentialRecord, claim.credential_id)
        if record is None:
            raise NotFound("no such claim code", code="claim_not_found")
        return record

    def claim_code_of(self, org_id: str, credential_id: str) -> str:
        """The claim code of a credential `org_id` issued (derived again, never stored), while
        it has not been redeemed (Conflict ``claim_already_redeemed`` after)."""
        record = self.issued_by(org_id, credential_id)
        code = claim_code(_claim_key(self.keys.keys_for(org_id)), record.id)
        self.unredeemed_claim(claim_code_hash(code))
        return code

    def redeem_hash(self, code_hash: str, holder_jwk: Any) -> dict[str, Any]:
        """:meth:`redeem` for the hash of the claim code (the OpenID4VCI token holds only that);
        ``holder_jwk`` already validated."""
        record = self.unredeemed_claim(code_hash)
        keys = self.keys.keys_for(record.issuer_org)
        parsed = sdjwt.parse(record.sd_jwt)
        bound_jwt = jose.sign_jws(parsed.header, {**parsed.payload, "cnf": {"jwk": holder_jwk}},
                                  keys.ed25519_private)
        bound = bound_jwt + record.sd_jwt[len(parsed.issuer_jwt):]
        with session_scope(self.engine) as session:
            # One winner even when two redemptions race.
            won = session.execute(
                update(ClaimCode).where(ClaimCode.code_hash == code_hash,  # type: ignore[arg-type]
                                        ClaimCode.redeemed_at.is_(None))  # type: ignore[union-attr]
                .values(redeemed_at=utcnow(), holder_jwk=json.dumps(holder_jwk, sort_keys=True)))
            if won.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("this claim code has already been used", code="claim_already_redeemed")
        anchor = self.anchor_for_leaf(bytes.fromhex(record.leaf_hash[2:]))
        return {"credential_id": record.id, "type": record.type, "sd_jwt": bound,
                "anchor": anchor.to_dict() if anchor else None,
                "issuer": {"org_id": record.issuer_org,
                           "name": self.deployment.organisations[record.issuer_org]["name"]}}

    # -- status ------------------------------------------------------------------------

    def change_status(self, actor_org: str, credential_id: str, action: str, *,
                      reason: int = 0, note: str | None = None,
                      superseded_by: str | None = None) -> CredentialRecord:
        actor = self._org(actor_org)
        record = (self.get(credential_id) if actor["role"] == "bureau"
                  else self.issued_by(actor_org, credential_id))
        _check_reason(reason)
        _check_note(note)
        anchor = self.anchor_for_leaf(bytes.fromhex(record.leaf_hash[2:]))
        if anchor is None:
            raise Conflict("the credential is not anchored yet", code="not_anchored")
        signer = self.keys.account_for(actor_org)
        leaf, root, proof = (bytes.fromhex(record.leaf_hash[2:]), bytes.fromhex(anchor.root[2:]),
                             anchor.proof_bytes())
        if action == "supersede":
            assert superseded_by is not None
            new_leaf = bytes.fromhex(self.get(superseded_by).leaf_hash[2:])
            self.registry.supersede(signer, leaf, root, proof, new_leaf, reason)
            status = "superseded"
        elif action in STATUS_ACTIONS:
            getattr(self.registry, action)(signer, leaf, root, proof, reason)
            status = STATUS_ACTIONS[action]
        else:
            raise InvalidInput(f"unknown status action {action!r}", code="bad_action")
        if self.status_index is not None:
            self.status_index.refresh()  # this node's verifications see the change at once
        with session_scope(self.engine, write=True) as session:
            stored = session.get(CredentialRecord, credential_id)
            assert stored is not None
            stored.status, stored.status_reason, stored.status_note = status, reason, note
            stored.status_changed_at = utcnow()
            if superseded_by:
                stored.superseded_by = superseded_by
            session.add(stored)
        return self.get(credential_id)

    def correct(self, actor_org: str, credential_id: str, row: Any, *, reason: int = 0,
                note: str | None = None) -> tuple[IssuedBatch, CredentialRecord]:
        """Issue a corrected credential and mark the old one superseded by it."""
        old = self.issued_by(actor_org, credential_id)
        if old.status == "superseded":
            raise Conflict("this credential has already been corrected", code="already_superseded")
        _check_reason(reason)
        _check_note(note)  # before the new credential is issued
        self._correcting.add(credential_id)
        try:
            batch = self.issue(actor_org, CredentialType(old.type), [row], supersedes=credential_id)
            new_id = batch.credentials[0].credential_id
            return batch, self.change_status(actor_org, credential_id, "supersede", reason=reason,
                                             note=note, superseded_by=new_id)
        finally:
            self._correcting.discard(credential_id)

    def finish_corrections(self) -> int:
        """Finish corrections that an earlier process left half done. A correction issues
        the new credential, then supersedes the old one on chain; if the process stopped in
        between, two credentials read valid. Each such old credential is superseded now.
        A correction this service is making now is left to its own request. Returns how
        many were finished."""
        old = aliased(CredentialRecord)
        with session_scope(self.engine) as session:
            pending = session.exec(
                select(CredentialRecord.id, CredentialRecord.issuer_org, old.id)
                .join(old, old.id == CredentialRecord.supersedes)  # type: ignore[arg-type]
                .where(old.status.in_(("valid", "suspended")))).all()  # type: ignore[attr-defined]
        finished = 0
        for new_id, org_id, old_id in pending:
            if old_id in self._correcting:
                continue
            try:
                self.change_status(org_id, old_id, "supersede", superseded_by=new_id)
            except LedgerError as exc:  # revoked meanwhile, say: the chain's status stands
                log.warning("could not finish the correction of %s by %s: %s", old_id, new_id, exc)
            else:
                finished += 1
        return finished

    def follow_chain_statuses(self) -> int:
        """Write into credential rows the statuses the chain changed behind their back (see
        ledger.credentials.statuses); returns how many rows were written."""
        written, self._statuses_seen_block = follow_chain_statuses(self.engine, self._statuses_seen_block)
        return written

    # -- sharing -----------------------------------------------------------------------

    def create_share(self, presentation: str, days: int, *, audience: str,
                     anchor: AnchorProof | None = None) -> tuple[Share, str]:
        if not isinstance(days, int) or not 1 <= days <= MAX_SHARE_DAYS:
            raise InvalidInput(f"a share lasts 1 to {MAX_SHARE_DAYS} days", code="bad_share_days")
        parsed = sdjwt.parse(presentation)
        if parsed.kb_jwt is None:
            raise InvalidInput("a shared presentation must be signed by the holder (key binding)",
                               code="holder_binding_missing")
        result = self.verifier.verify(presentation, anchor, require_holder_binding=True, aud=audience)
        broken = [c for c in result.checks if c.name in ("format", "issuer", "signature", "disclosures",
                                                         "holder_binding") and c.outcome == "failed"]
        if broken:
            raise InvalidInput(f"the presentation does not verify: {broken[0].code}", code=broken[0].code)
        anchor = anchor or self.anchor_for_leaf(credential_leaf(parsed.payload))
        token = secrets.token_urlsafe(24)
        for attempt in range(3):  # the code is unique (an index): another one on the rare clash
            share = Share(id=secrets.token_urlsafe(SHARE_ID_BYTES), presentation=presentation,
                          anchor_json=json.dumps(anchor.to_dict() if anchor else None),
                          expires_at=utcnow() + timedelta(days=days), audience=audience,
                          withdraw_token_hash=_sha256(token), verify_code=new_verify_code())
            try:
                with session_scope(self.engine) as session:
                    session.add(share)
            except IntegrityError:
                if attempt == 2:
                    raise
                continue
            break
        return share, token

    def get_share(self, share_id: str) -> Share:
        with session_scope(self.engine) as session:
            return _share_in(session, share_id)

    def share_by_code(self, code: str) -> Share:
        """The share a typed verification code names; ``bad_verify_code`` (422) when it cannot
        be one, ``verify_code_not_found`` (404) when none has it."""
        wanted = normalise_verify_code(code)
        with session_scope(self.engine) as session:
            share = session.exec(select(Share).where(Share.verify_code == wanted)).first()
        if share is None:
            raise NotFound("no share has this verification code", code="verify_code_not_found")
        return share

    def live_share(self, share_id: str, *, now: datetime | None = None) -> Share:
        """A share the holder still shares: withdrawn, it is ``share_withdrawn``; expired,
        ``share_expired`` (both 404: what it showed is no longer served)."""
        share = self.get_share(share_id)
        if share.withdrawn_at is not None:
            raise NotFound("the holder has withdrawn this share", code="share_withdrawn")
        if (now or utcnow()) >= share.expires_at:
            raise NotFound("this share has expired", code="share_expired")
        return share

    def issuer_names(self, result: Verification) -> tuple[str, str]:
        """(Chinese, English) names of a verified credential's issuer: the name on chain, and
        the English name of the consortium definition when the chain's has none."""
        member_id, name = result.issuer.get("member_id"), result.issuer.get("name")
        if not isinstance(member_id, int) or not isinstance(name, str):
            return "", ""
        return self.deployment.names_of(member_id, name)

    def withdraw_share(self, share_id: str, token: str) -> None:
        with session_scope(self.engine, write=True) as session:
            share = _share_in(session, share_id)
            if not hmac.compare_digest(share.withdraw_token_hash, _sha256(token or "")):
                raise PermissionDenied("wrong withdraw token", code="bad_withdraw_token")
            if share.withdrawn_at is None:
                share.withdrawn_at = utcnow()
                session.add(share)

    def verify_share(self, share_id: str, *, now: datetime | None = None) -> tuple[Share, Verification]:
        share = self.get_share(share_id)
        raw_anchor = json.loads(share.anchor_json)
        result = self.verifier.verify(share.presentation,
                                      AnchorProof.from_dict(raw_anchor) if raw_anchor else None,
                                      require_holder_binding=True, aud=share.audience)
        from ledger.credentials.verify import FAILED, PASSED, Check

        now = now or utcnow()
        if share.withdrawn_at is not None:
            result.checks.append(Check("share", FAILED, "share_withdrawn"))
        elif now >= share.expires_at:
            result.checks.append(Check("share", FAILED, "share_expired",
                                       {"expired_at": share.expires_at.isoformat()}))
        else:
            result.checks.append(Check("share", PASSED, "ok",
                                       {"expires_at": share.expires_at.isoformat()}))
        return share, result
