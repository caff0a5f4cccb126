"""Electronic signatures and seals (电子签名与电子签章): an organisation seals a document with
its key, a card holder signs one with their wallet key, and anyone verifies later who signed,
in which role, for which school, when, and whether the signer was valid then.

**Forms.** A PDF gets a PAdES signature embedded in it with a visible stamp (``pdf.py``); any
other file a detached signature, a JWS naming the file's SHA-256 (``detached.py``), or the
same with SM2 over SM3 for an organisation that seals with commercial cryptography.

**Time evidence.** Every signature's leaf (keccak256 of a domain tag and the SHA-256 of the
raw signature value) is anchored alone, kind ``signature``, by the signing organisation or,
for a card holder, by the card's school. A batch of one leaf has the root
``keccak256(0x00 || leaf)``, so a verifier finds the anchor on chain from the signature
alone, without this node's database: the block it was anchored in is when the signature
existed at the latest.

**Validity then.** The signer is judged at that block, from the chain: an organisation's key
must have been registered and not retired, the organisation active in a role that seals; a
card must have been active, in its validity window, and bound to the key that signed (its
salted key commitment). What happened since (a card revoked later, a key retired) is
reported beside, and does not undo a signature made before. A signature without an anchor
has no time evidence: it fails, and the signer is judged as of now.

**Recording a holder's signature.** The wallet signs (the key never leaves it) and the node
records the signature: it checks the signature and that the key is the card's current key
(so that only the holder gets anchors for a card), then anchors it whatever the card's
status; the answer carries the verdict at once, so a holder whose card is suspended learns
that the signature will not verify.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from ledger.anchoring.interfaces import AnchoringAPI
from ledger.anchoring.models import AnchorBatch, AnchorStatus
from ledger.chain import ChainAPI
from ledger.consortium.deployment import Deployment
from ledger.contracts.bindings import AnchorKind, MemberStatus, Role
from ledger.contracts.identity import CardInfo, IdentityRegistryContract
from ledger.contracts.identity import CardStatus as ChainStatus
from ledger.credentials import jose
from ledger.credentials.did import issuer_did, key_id
from ledger.credentials.verify import CredentialVerifier
from ledger.errors import ChainUnavailable, Conflict, InvalidInput, NotFound, PermissionDenied
from ledger.identity.models import IdentityCard
from ledger.identity.service import jwk_thumbprint, key_commitment
from ledger.keys import KeySource
from ledger.merkle import MerkleTree, keccak256
from ledger.signatures.certificates import holder_certificate, member_certificate, signer_of
from ledger.signatures.detached import (
    SM2_ALG,
    DetachedSignature,
    document_manifest,
    parse_detached,
    sign_detached,
    sign_sm2,
    sm2_key_statement,
)
from ledger.signatures.models import SignatureRecord
from ledger.signatures.pdf import PdfSignatureRead, is_pdf, read_pdf_signatures, sign_pdf, stamp_lines
from ledger.signatures.sm2 import SealKeys, sm2_verify
from ledger.signatures.types import ROLE_NAMES, SignatureFormat, SignatureVerdict, beijing, split_name
from ledger.store import session_scope

__all__ = ["CERTIFICATE_AUDIENCE", "SignatureService", "signature_leaf"]

log = logging.getLogger("eduledger.signatures")

LEAF_DOMAIN = b"eduledger-signature/1\x00"
CERTIFICATE_AUDIENCE = "eduledger:signing-certificate"
PROOF_MAX_AGE = 300
SEALING_ROLES = frozenset({Role.BUREAU, Role.SCHOOL, Role.PARTNER})
MAX_NAME = 200
_CARD_ID_RE = re.compile(r"0x[0-9a-f]{64}")
_SALT_RE = re.compile(r"0x[0-9a-f]{64}")
_STATUS_NAMES = {
    ChainStatus.ACTIVE: "active",
    ChainStatus.SUSPENDED: "suspended",
    ChainStatus.REVOKED: "revoked",
    ChainStatus.ENDED: "ended",
}


def signature_leaf(value: bytes) -> bytes:
    """The anchored leaf of a signature, from its raw value (unique to the signed bytes)."""
    return keccak256(LEAF_DOMAIN + hashlib.sha256(value).digest())


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _raw_public(certificate: x509.Certificate) -> bytes | None:
    key = certificate.public_key()
    return key.public_bytes_raw() if isinstance(key, Ed25519PublicKey) else None


class _Record:
    """``BatchRecords``: the signature's row, written with its batch (and removed with it)."""

    def __init__(self, record: SignatureRecord) -> None:
        self.record = record

    def attach(self, session: Session, batch: AnchorBatch, tree: MerkleTree) -> None:
        self.record.batch_id = batch.id
        session.add(self.record)

    def detach(self, session: Session, batch_id: str) -> None:
        session.execute(delete(SignatureRecord).where(SignatureRecord.batch_id == batch_id))  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Sealer:
    org_id: str
    did: str
    kid: str
    name: str
    role: str


@dataclass
class Signed:
    """A seal just made: the signed PDF or the detached signature, and its time evidence."""

    format: str
    signer: dict[str, Any]
    document_sha256: str
    timestamp: dict[str, Any]
    signed_pdf: bytes | None = None
    signature: str | None = None

    def to_dict(self) -> dict[str, Any]:
        import base64

        return {
            "format": self.format,
            "signer": self.signer,
            "document_sha256": self.document_sha256,
            "timestamp": self.timestamp,
            "signature": self.signature,
            "signed_pdf_base64": base64.b64encode(self.signed_pdf).decode() if self.signed_pdf else None,
        }


class SignatureService:
    def __init__(
        self,
        *,
        engine: Engine,
        client: ChainAPI,
        deployment: Deployment,
        anchoring: AnchoringAPI,
        keys: KeySource,
        seal_keys: SealKeys,
        verifier: CredentialVerifier,
        cards: IdentityRegistryContract | None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.deployment = deployment
        self.anchoring = anchoring
        self.keys = keys
        self.seal_keys = seal_keys
        self.verifier = verifier
        self.cards = cards
        self.registry = verifier.registry
        self.consortium = verifier.consortium

    # -- who seals ------------------------------------------------------------------------

    def _did(self, member_id: int) -> str:
        return issuer_did(self.client.chain_id, self.deployment.consortium, member_id)

    def _sealer(self, org_id: str) -> _Sealer:
        record = self.deployment.member(org_id)
        if record is None:
            raise PermissionDenied(f"{org_id} is not a member of this network", code="unknown_member")
        keys = self.keys.keys_for(org_id)
        rights = self.consortium.anchor_rights(keys.address)
        if not rights.can_act:
            raise PermissionDenied(f"{org_id} is not an active member", code="member_not_active")
        if rights.role not in SEALING_ROLES:
            raise PermissionDenied(
                "only the bureau, a school or a partner seals documents", code="role_not_allowed"
            )
        assert rights.role is not None
        did = self._did(rights.member_id)
        return _Sealer(
            org_id, did, key_id(did, keys.ed25519_public_bytes), record["name"], rights.role.name.lower()
        )

    def _requested_format(self, document: bytes, fmt: str | None) -> SignatureFormat:
        if not document:
            raise InvalidInput("the document is empty", code="empty_document")
        try:
            chosen = (
                SignatureFormat(fmt)
                if fmt
                else (SignatureFormat.PDF if is_pdf(document) else SignatureFormat.JWS)
            )
        except ValueError:
            raise InvalidInput("the format is pdf, jws or sm2", code="bad_format") from None
        if chosen is SignatureFormat.PDF and not is_pdf(document):
            raise InvalidInput(
                "the document is not a PDF: seal it as jws or sm2 (a detached signature)", code="not_a_pdf"
            )
        return chosen

    # -- an organisation seals --------------------------------------------------------------

    def seal(
        self,
        org_id: str,
        document: bytes,
        *,
        fmt: str | None = None,
        name: str | None = None,
        media_type: str | None = None,
    ) -> Signed:
        """Seal `document` as `org_id` and timestamp the seal on chain."""
        chosen = self._requested_format(document, fmt)
        if name is not None and (len(name) > MAX_NAME or not name.isprintable()):
            raise InvalidInput(f"a file name is at most {MAX_NAME} printable characters", code="bad_name")
        sealer = self._sealer(org_id)
        keys = self.keys.keys_for(org_id)
        signer = {"type": "member", "did": sealer.did}
        signed_pdf = token = None
        if chosen is SignatureFormat.PDF:
            certificate = member_certificate(
                keys.ed25519_private, did=sealer.did, name=sealer.name, role=sealer.role
            )
            zh, en = ROLE_NAMES[sealer.role]
            lines, lines_en = stamp_lines(
                seal=True, signer_name=sealer.name, role_zh=zh, role_en=en, detail=None, when=int(time.time())
            )
            signed_pdf = sign_pdf(
                document,
                private_key=keys.ed25519_private,
                certificate=certificate,
                chain=[certificate],
                stamp_lines=lines,
                stamp_lines_en=lines_en,
                reason="电子签章 Electronic seal",
            )
            value = read_pdf_signatures(signed_pdf)[-1].signature_value
            digest = hashlib.sha256(signed_pdf).hexdigest()
        else:
            manifest = document_manifest(document, name=name, media_type=media_type)
            if chosen is SignatureFormat.SM2:
                sm2 = self.seal_keys.key_for(org_id)
                statement = sm2_key_statement(sm2, did=sealer.did, kid=sealer.kid, key=keys.ed25519_private)
                token = sign_sm2(manifest, signer, kid=sealer.kid, sm2=sm2, statement=statement)
            else:
                token = sign_detached(manifest, signer, kid=sealer.kid, key=keys.ed25519_private)
            value = parse_detached(token).signature
            digest = manifest["sha256"]
        timestamp = self._timestamp(
            org_id,
            value,
            SignatureRecord(
                leaf_hash="",
                format=chosen.value,
                signer_kind="member",
                signer=org_id,
                member_org=org_id,
                document_sha256=digest,
                batch_id="",
            ),
        )
        return Signed(
            chosen.value,
            {**signer, "org_id": org_id, "name": sealer.name, "role": sealer.role},
            digest,
            timestamp,
            signed_pdf=signed_pdf,
            signature=token,
        )

    # -- time evidence -----------------------------------------------------------------------

    def _timestamp(self, org_id: str, value: bytes, record: SignatureRecord) -> dict[str, Any]:
        """Anchor the signature's leaf alone (once: the same signature again answers the same)."""
        leaf = signature_leaf(value)
        record.leaf_hash = _hex(leaf)
        if self._record_of(leaf) is None:
            try:
                self.anchoring.anchor(org_id, AnchorKind.SIGNATURE, [leaf], records=_Record(record))
            except ChainUnavailable:
                log.warning(
                    "signature %s accepted while the chain is away: anchored when it is back",
                    record.leaf_hash,
                )
            except Conflict:  # the same signature recorded at the same moment by another request
                pass
        return self._anchor_state(leaf)

    def _record_of(self, leaf: bytes) -> SignatureRecord | None:
        with session_scope(self.engine) as session:
            return session.exec(
                select(SignatureRecord).where(SignatureRecord.leaf_hash == _hex(leaf))
            ).first()

    def _anchor_state(self, leaf: bytes) -> dict[str, Any]:
        """Where the leaf is anchored, read from the chain (the root of a batch of one); or
        whether this node holds it pending."""
        root = MerkleTree([leaf]).root
        info = self.registry.root_info(root)
        if info.anchored and info.kind is AnchorKind.SIGNATURE:
            moment = self.verifier.block_time(info.block_number)
            org = self.deployment.org_of_member(info.member_id)
            return {
                "status": "anchored",
                "leaf": _hex(leaf),
                "root": _hex(root),
                "block_number": info.block_number,
                "block_time": datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z"),
                "block_time_beijing": beijing(moment),
                "anchored_by": self._did(info.member_id),
                "anchored_by_org": org,
                "chain_id": self.client.chain_id,
                "registry": self.registry.address,
            }
        record = self._record_of(leaf)
        if record is not None:
            with session_scope(self.engine) as session:
                batch = session.get(AnchorBatch, record.batch_id)
            if batch is not None and batch.status in (
                AnchorStatus.PENDING.value,
                AnchorStatus.SUBMITTED.value,
            ):
                return {"status": "pending", "leaf": _hex(leaf), "root": _hex(root)}
        return {"status": "absent", "leaf": _hex(leaf), "root": _hex(root)}

    # -- a card holder's certificate and signatures ------------------------------------------

    def _our_card(self, card_id: Any) -> tuple[IdentityCard, CardInfo]:
        if self.cards is None:
            raise NotFound("this network has no identity registry", code="no_identity_registry")
        if not isinstance(card_id, str) or not _CARD_ID_RE.fullmatch(card_id):
            raise NotFound("no such card here", code="card_not_found")
        with session_scope(self.engine) as session:
            row = session.get(IdentityCard, card_id)
        chain = self.cards.card(card_id) if row is not None else None
        if row is None or chain is None:
            raise NotFound(
                "no such card at this node (ask the node of the card's school)", code="card_not_found"
            )
        return row, chain

    def _key_is_current(self, chain: CardInfo, key_salt: Any, jwk: dict[str, Any]) -> bool:
        if not isinstance(key_salt, str) or not _SALT_RE.fullmatch(key_salt) or chain.holder_key is None:
            return False
        return hmac.compare_digest(key_commitment(bytes.fromhex(key_salt[2:]), jwk), chain.holder_key)

    def holder_certificate(
        self, card_id: str, holder_jwk: dict[str, Any], key_salt: str, proof: str
    ) -> dict[str, Any]:
        """A short certificate for a card holder's wallet key, issued by the card's school, so
        that the wallet can embed a standard signature in a PDF. `proof` is a JWS by that key
        of ``{"card_id", "aud": CERTIFICATE_AUDIENCE, "iat"}`` (made minutes ago)."""
        try:
            public = jose.jwk_to_ed25519(holder_jwk)
        except InvalidInput:
            raise InvalidInput("holder_jwk is not an Ed25519 public JWK", code="malformed") from None
        row, chain = self._our_card(card_id)
        try:
            _, said = jose.verify_jws(proof, public)
        except InvalidInput:
            raise InvalidInput("the proof is not a JWS by the holder's key", code="bad_proof") from None
        iat = said.get("iat")
        if (
            said.get("card_id") != card_id
            or said.get("aud") != CERTIFICATE_AUDIENCE
            or type(iat) is not int
            or abs(time.time() - iat) > PROOF_MAX_AGE
        ):
            raise InvalidInput(
                f"the proof names another card or audience, or is not from the last {PROOF_MAX_AGE} seconds",
                code="bad_proof",
            )
        if not self._key_is_current(chain, key_salt, holder_jwk):
            raise PermissionDenied("this key is not the card's key on chain", code="holder_key_mismatch")
        if chain.status is not ChainStatus.ACTIVE or not chain.in_window(int(time.time())):
            raise Conflict("the card is not active: no signing certificate for it", code="card_not_active")
        school = self.deployment.member(row.issuer_org)
        assert school is not None
        keys = self.keys.keys_for(row.issuer_org)
        did = self._did(school["member_id"])
        school_cert = member_certificate(
            keys.ed25519_private, did=did, name=school["name"], role=school["role"]
        )
        until = datetime.fromtimestamp(chain.valid_until, UTC) if chain.valid_until else None
        cert = holder_certificate(
            keys.ed25519_private,
            school_cert,
            holder=public,
            card_id=card_id,
            kind=row.kind,
            key_salt=key_salt,
            school_did=did,
            school_name=school["name"],
            not_after=until,
        )
        return {
            "card_id": card_id,
            "certificate_pem": _pem(cert),
            "chain_pem": [_pem(school_cert)],
            "not_after": cert.not_valid_after_utc,
        }

    def record(self, *, document: bytes | None = None, signature: str | None = None) -> list[dict[str, Any]]:
        """Timestamp a card holder's signatures: the card signatures of a signed PDF (those not
        recorded yet), or one detached signature (with its document, if given, checked
        against it). Answers each with its verdict."""
        if signature is not None:
            parsed = parse_detached(signature)
            if document is not None and hashlib.sha256(document).hexdigest() != parsed.document_sha256:
                raise InvalidInput("the document is not the one the signature names", code="document_altered")
            claims = parsed.signer
            jwk = claims.get("jwk")
            if claims.get("type") != "card" or not isinstance(jwk, dict) or parsed.alg != "EdDSA":
                raise InvalidInput("not a card holder's signature", code="not_a_holder_signature")
            try:
                jose.check_signature(
                    parsed.header, parsed.signing_input, parsed.signature, jose.jwk_to_ed25519(jwk)
                )
            except InvalidInput:
                raise InvalidInput(
                    "the signature does not verify with its key", code="signature_invalid"
                ) from None
            self._record_card(claims, jwk, parsed.signature, SignatureFormat.JWS, str(parsed.document_sha256))
            return [self._verify_detached(document, parsed).to_dict()]
        if document is None or not is_pdf(document):
            raise InvalidInput("send a signed PDF, or a detached signature", code="not_a_pdf")
        found = read_pdf_signatures(document)
        fresh = [
            s
            for s in found
            if s.certificate is not None
            and (signer_of(s.certificate) or {}).get("signer") == "card"
            and self._record_of(signature_leaf(s.signature_value)) is None
        ]
        if not fresh:
            raise InvalidInput(
                "the PDF holds no card holder's signature that is not recorded already",
                code="no_holder_signature",
            )
        digest = hashlib.sha256(document).hexdigest()
        for read in fresh:
            if not (read.intact and read.valid and read.unchanged):
                raise InvalidInput(
                    f"signature {read.field} does not verify, or the PDF changed after it",
                    code="signature_invalid",
                )
            assert read.certificate is not None
            raw = _raw_public(read.certificate)
            if raw is None:
                raise InvalidInput("a card holder signs with an Ed25519 key", code="signature_invalid")
            self._record_card(
                signer_of(read.certificate) or {},
                jose.ed25519_jwk(raw),
                read.signature_value,
                SignatureFormat.PDF,
                digest,
            )
        verdicts = {v["field"]: v for v in self.verify(document)["signatures"]}
        return [verdicts[read.field] for read in fresh]

    def _record_card(
        self, claims: dict[str, Any], jwk: dict[str, Any], value: bytes, fmt: SignatureFormat, digest: str
    ) -> None:
        row, chain = self._our_card(claims.get("card_id"))
        if not self._key_is_current(chain, claims.get("key_salt"), jwk):
            raise PermissionDenied(
                "the signing key is not the card's key on chain", code="holder_key_mismatch"
            )
        self._timestamp(
            row.issuer_org,
            value,
            SignatureRecord(
                leaf_hash="",
                format=fmt.value,
                signer_kind="card",
                signer=row.id,
                member_org=row.issuer_org,
                document_sha256=digest,
                batch_id="",
            ),
        )

    # -- verification ------------------------------------------------------------------------

    def verify(self, document: bytes, signature: str | None = None) -> dict[str, Any]:
        """Every signature of `document` (a PDF's embedded ones, or the detached `signature`),
        each judged against the chain at the block that timestamps it."""
        if not document:
            raise InvalidInput("the document is empty", code="empty_document")
        if signature is not None:
            verdicts = [self._verify_detached(document, parse_detached(signature))]
        elif is_pdf(document):
            verdicts = [self._verify_pdf(read) for read in read_pdf_signatures(document)]
        else:
            raise InvalidInput(
                "a file other than a PDF is verified with its detached signature", code="signature_missing"
            )
        answers = [v.to_dict() for v in verdicts]
        return {
            "valid": bool(answers) and all(a["valid"] for a in answers),
            "document_sha256": hashlib.sha256(document).hexdigest(),
            "count": len(answers),
            "failures": sorted(
                {f for a in answers for f in a["failures"]} | (set() if answers else {"not_signed"})
            ),
            "signatures": answers,
        }

    def _verify_pdf(self, read: PdfSignatureRead) -> SignatureVerdict:
        verdict = SignatureVerdict(SignatureFormat.PDF.value, field_name=read.field)
        claims = signer_of(read.certificate) if read.certificate is not None else None
        raw = _raw_public(read.certificate) if read.certificate is not None else None
        if not verdict.check(
            "format",
            claims is not None and raw is not None and bool(read.signature_value),
            "malformed_signature",
        ):
            return verdict
        assert claims is not None and raw is not None
        verdict.document = {
            "claimed_signing_time": beijing(read.claimed_time) if read.claimed_time else None,
            "algorithm": read.algorithm,
        }
        if not verdict.check("document", read.intact and read.unchanged, "document_altered"):
            return verdict
        if not verdict.check("signature", read.valid, "signature_invalid"):
            return verdict
        self._judge(verdict, claims, raw, read.signature_value)
        return verdict

    def _verify_detached(self, document: bytes | None, parsed: DetachedSignature) -> SignatureVerdict:
        fmt = SignatureFormat.SM2 if parsed.alg == SM2_ALG else SignatureFormat.JWS
        verdict = SignatureVerdict(fmt.value)
        claims = parsed.signer
        claimed = parsed.claimed_time
        verdict.document = {
            "sha256": parsed.document_sha256,
            "name": (parsed.payload.get("document") or {}).get("name"),
            "claimed_signing_time": beijing(claimed) if claimed is not None else None,
            "algorithm": "SM2 with SM3" if fmt is SignatureFormat.SM2 else "Ed25519",
        }
        if document is not None and not verdict.check(
            "document",
            hmac.compare_digest(hashlib.sha256(document).hexdigest(), str(parsed.document_sha256)),
            "document_altered",
        ):
            return verdict
        raw = self._detached_key(parsed, claims)
        if raw is None:
            verdict.check("format", False, "malformed_signature")
            return verdict
        if fmt is SignatureFormat.SM2:
            sm2 = parsed.header.get("sm2")
            ok = (
                isinstance(sm2, dict)
                and self._sm2_vouched(sm2, parsed, raw)
                and sm2_verify(str(sm2.get("public_key")), parsed.signing_input, parsed.signature)
            )
        else:
            try:
                jose.check_signature(
                    parsed.header,
                    parsed.signing_input,
                    parsed.signature,
                    Ed25519PublicKey.from_public_bytes(raw),
                )
                ok = True
            except InvalidInput:
                ok = False
        if not verdict.check("signature", ok, "signature_invalid"):
            return verdict
        self._judge(verdict, claims, raw, parsed.signature)
        return verdict

    @staticmethod
    def _detached_key(parsed: DetachedSignature, claims: dict[str, Any]) -> bytes | None:
        """The Ed25519 key that signed (an SM2 seal: the key that vouches for the SM2 key)."""
        kid = parsed.header.get("kid")
        if claims.get("type") == "member" and isinstance(kid, str) and isinstance(claims.get("did"), str):
            prefix = f"{claims['did']}#ed25519-"
            if kid.startswith(prefix) and re.fullmatch(r"[0-9a-f]{64}", kid[len(prefix) :]):
                return bytes.fromhex(kid[len(prefix) :])
            return None
        if claims.get("type") == "card" and isinstance(claims.get("jwk"), dict) and parsed.alg == "EdDSA":
            try:
                public = jose.jwk_to_ed25519(claims["jwk"])
            except InvalidInput:
                return None
            if kid != f"urn:eduledger:card:{claims.get('card_id')}#{jwk_thumbprint(claims['jwk']).hex()}":
                return None
            return public.public_bytes_raw()
        return None

    @staticmethod
    def _sm2_vouched(sm2: dict[str, Any], parsed: DetachedSignature, ed25519: bytes) -> bool:
        """The SM2 key is the one the member's Ed25519 key vouches for."""
        try:
            header, said = jose.verify_jws(
                str(sm2.get("statement")), Ed25519PublicKey.from_public_bytes(ed25519)
            )
        except InvalidInput:
            return False
        return (
            header.get("kid") == parsed.header.get("kid")
            and said.get("sub") == parsed.signer.get("did")
            and said.get("sm2_public_key") == sm2.get("public_key")
            and said.get("uid") == sm2.get("uid")
        )

    # -- judging the signer at the anchor's block ----------------------------------------------

    def _judge(
        self, verdict: SignatureVerdict, claims: dict[str, Any], public_key: bytes, value: bytes
    ) -> None:
        leaf = signature_leaf(value)
        verdict.timestamp = self._anchor_state(leaf)
        status = verdict.timestamp["status"]
        verdict.check(
            "timestamp", status == "anchored", "anchor_pending" if status == "pending" else "not_anchored"
        )
        if status == "anchored":
            block = int(verdict.timestamp["block_number"])
            judged = "anchor"
        else:  # no time evidence: as of now
            block = self.client.block_number()
            judged = "now"
        moment = self.verifier.block_time(block)
        verdict.at_signing = {"judged_at": judged, "block_number": block, "time_beijing": beijing(moment)}
        if claims.get("signer") == "card" or claims.get("type") == "card":
            self._judge_card(verdict, claims, public_key, block, moment)
        elif claims.get("signer") == "member" or claims.get("type") == "member":
            self._judge_member(verdict, claims, public_key, block)
        else:
            verdict.check("signer", False, "signer_unknown")

    def _member_view(self, member_id: int, name: str) -> dict[str, Any]:
        zh, en = split_name(name)
        return {
            "did": self._did(member_id),
            "member_id": member_id,
            "org_id": self.deployment.org_of_member(member_id),
            "name": name,
            "name_zh": zh,
            "name_en": en,
        }

    def _judge_member(
        self, verdict: SignatureVerdict, claims: dict[str, Any], public_key: bytes, block: int
    ) -> None:
        did = claims.get("did")
        try:
            _, _, member = self.verifier.signer_at(key_id(str(did), public_key), block)
        except InvalidInput as exc:
            if exc.code == "signing_key_invalid":
                info = self.consortium.key_info(public_key)
                member = self.consortium.member(info.member_id)
                verdict.signer = {
                    "type": "member",
                    **self._member_view(member.member_id, member.name),
                    "role": member.role.name.lower(),
                }
                verdict.at_signing = {
                    **(verdict.at_signing or {}),
                    "key_valid": False,
                    "key_valid_from_block": info.valid_from,
                    "key_valid_until_block": info.valid_until,
                }
                verdict.check("signer", False, "key_not_valid_at_signing")
            else:
                verdict.check("signer", False, "signer_unknown")
            return
        role = member.role.name.lower()
        zh, en = ROLE_NAMES.get(role, (role, role))
        verdict.signer = {
            "type": "member",
            **self._member_view(member.member_id, member.name),
            "role": role,
            "role_zh": zh,
            "role_en": en,
        }
        verdict.at_signing = {
            **(verdict.at_signing or {}),
            "key_valid": True,
            "member_status": member.status.name.lower(),
        }
        verdict.check(
            "signer",
            member.status is MemberStatus.ACTIVE and member.role in SEALING_ROLES,
            "member_not_active_at_signing",
            status=member.status.name.lower(),
            role=role,
        )
        now = self.consortium.member(member.member_id)
        key_now = self.consortium.key_info(public_key)
        verdict.now = {
            "member_status": now.status.name.lower(),
            "role": now.role.name.lower(),
            "key_retired_block": key_now.valid_until,
        }

    def _judge_card(
        self, verdict: SignatureVerdict, claims: dict[str, Any], public_key: bytes, block: int, moment: int
    ) -> None:
        card_id = claims.get("card_id")
        if self.cards is None or not isinstance(card_id, str) or not _CARD_ID_RE.fullmatch(card_id):
            verdict.check("signer", False, "signer_unknown")
            return
        then = self.cards.card(card_id, block=block)
        if then is None:
            verdict.check("signer", False, "signer_unknown", problem="no such card at that block")
            return
        school = self.consortium.member(then.issuer, block=block)
        kind = then.kind.name.lower()
        zh, en = ROLE_NAMES[kind]
        verdict.signer = {
            "type": "card",
            "card_id": card_id,
            "role": kind,
            "role_zh": zh,
            "role_en": en,
            "school": self._member_view(school.member_id, school.name),
        }
        status = _STATUS_NAMES[then.status]
        in_window = then.in_window(moment)
        verdict.at_signing = {
            **(verdict.at_signing or {}),
            "card_status": status,
            "in_validity_window": in_window,
        }
        verdict.check(
            "card",
            then.status is ChainStatus.ACTIVE and in_window,
            "card_not_active_at_signing",
            status=status,
            in_validity_window=in_window,
        )
        verdict.check(
            "holder_key",
            self._key_is_current(then, claims.get("key_salt"), jose.ed25519_jwk(public_key)),
            "holder_key_not_current",
        )
        now = self.cards.card(card_id)
        assert now is not None
        changed = {"card_status": _STATUS_NAMES[now.status], "last_change_block": now.changed_block}
        if now.changed_block > block:
            changed["last_change_time_beijing"] = beijing(self.verifier.block_time(now.changed_block))
        verdict.now = changed
