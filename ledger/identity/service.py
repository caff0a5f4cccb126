"""Identity cards: issue (one or a roster of thousands, with photos), claim into a wallet,
graduate, transfer, suspend, revoke, rotate the holder's key, and recognise the holder.

Issuing: the whole roster is checked first (``roster.py``); each card gets an opaque id
(random), its person's data sealed (``personal.py``), a salted portrait commitment, and a
one-time claim code; rows are committed to SQL in one transaction (chain state pending)
before any transaction is sent, then the cards go to the identity registry in batches of
``MAX_CARD_BATCH``. A stop at any moment is finished by ``resume`` (the node's duties):
each pending card is looked up on chain and issued only if it is not there, so a card is
on chain exactly once and SQL agrees. One live card per person and kind: a second is a
conflict, whichever school asks.

Claiming: the holder redeems the claim code with their public key; the issuer binds the
key's salted commitment on chain and signs the card as an SD-JWT VC bound to that key
(``cnf``), its personal claims selectively disclosable. Handing out a new claim code and
redeeming it with a new key rotates the key: the commitment on chain changes, and a
presentation made with the old key no longer verifies. The wallet may send an X25519
encryption key with the claim; the card binds its thumbprint (see ``documents.py``).

Recognition: a relying party asks for a challenge (nonce, audience, the claims it needs,
a few minutes to answer); the holder answers with a key-bound presentation of the card; the
answer is checked against the chain alone (issuer key, card state, key commitment,
portrait commitment) and the challenge is spent, so it cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, Table, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from web3.exceptions import TransactionNotFound

from ledger.chain import ChainAPI
from ledger.consortium.deployment import Deployment, MemberRecord
from ledger.contracts.bindings import ConsortiumContract, MemberStatus, Role
from ledger.contracts.identity import (
    MAX_CARD_BATCH,
    CardInfo,
    CardSpec,
    CardState,
    IdentityRegistryContract,
)
from ledger.contracts.identity import (
    CardKind as ChainKind,
)
from ledger.contracts.identity import (
    CardStatus as ChainStatus,
)
from ledger.credentials import jose, sdjwt
from ledger.credentials.did import issuer_did, key_id
from ledger.credentials.signing import claim_code
from ledger.credentials.types import CHINA_TZ
from ledger.credentials.verify import CredentialVerifier
from ledger.errors import Conflict, ContractReverted, InvalidInput, LedgerError, NotFound, PermissionDenied
from ledger.identity.documents import check_encryption_jwk, encryption_kid
from ledger.identity.models import (
    IdentityCard,
    IdentityChallenge,
    IdentityPerson,
    IdentityPortrait,
    IdentityRoster,
)
from ledger.identity.personal import NodeSecrets, PersonalCipher
from ledger.identity.photos import check_photo, new_portrait_salt, portrait_commitment
from ledger.identity.projection import CardSource
from ledger.identity.roster import CardEntry
from ledger.identity.types import CardKind, CardStatus, StudentCardRow, TeacherCardRow
from ledger.indexer import Indexer
from ledger.indexer.models import ChainEvent
from ledger.keys import KeySource, OrganisationKeys
from ledger.merkle import keccak256
from ledger.store import session_scope
from ledger.store.columns import utcnow

__all__ = ["CARD_VCT", "ClaimedCard", "IdentityService", "IssuedCards", "Recognition", "key_commitment"]

log = logging.getLogger("eduledger.identity")

CARD_VCT = "urn:eduledger:vct:education-identity-card:1"
CARD_TYP = "dc+sd-jwt"
SUBJECT = "holder"  # the selectively disclosable part of the card
MAX_CHALLENGE_SECONDS = 600
MIN_CHALLENGE_SECONDS = 30
CHALLENGE_ID_BYTES = 12
_CHALLENGE_ID_RE = re.compile(r"[A-Za-z0-9_-]{16}")
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x20-\x7e]{1,80}")
STATUS_ACTIONS = {"suspend": ChainStatus.SUSPENDED, "reinstate": ChainStatus.ACTIVE,
                  "revoke": ChainStatus.REVOKED, "end": ChainStatus.ENDED}
CHAIN_STATUS_NAMES = {ChainStatus.ACTIVE: CardStatus.ACTIVE, ChainStatus.SUSPENDED: CardStatus.SUSPENDED,
                      ChainStatus.REVOKED: CardStatus.REVOKED, ChainStatus.ENDED: CardStatus.ENDED}
_CARDS: Table = IdentityCard.__table__  # type: ignore[attr-defined]
_CHALLENGES: Table = IdentityChallenge.__table__  # type: ignore[attr-defined]
CHAIN_KINDS = {CardKind.STUDENT: ChainKind.STUDENT, CardKind.TEACHER: ChainKind.TEACHER,
               CardKind.GRADUATE: ChainKind.GRADUATE}
# Claims a relying party may ask for, by kind of card (the card's own claim names).
CLAIM_NAMES = ("name", "school", "grade", "className", "enrolmentDate", "studentNumber", "schoolNumber",
               "staffNumber", "subjects", "teacherCertificate", "portrait", "validUntil", "graduationDate")


def jwk_thumbprint(jwk: dict[str, Any]) -> bytes:
    """RFC 7638 SHA-256 thumbprint of an Ed25519 (OKP) public JWK."""
    jose.jwk_to_ed25519(jwk)  # a valid Ed25519 key, or malformed
    return jose.okp_thumbprint(jwk)


def key_commitment(salt: bytes, jwk: dict[str, Any]) -> bytes:
    """keccak256(salt || thumbprint(jwk)): what the registry holds of a holder's key."""
    return keccak256(salt + jwk_thumbprint(jwk))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _claim_secret(keys: OrganisationKeys) -> bytes:
    raw = keys.ed25519_private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                             serialization.NoEncryption())
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"eduledger identity claim codes").derive(raw)


def _normalise_code(code: str) -> str:
    return code.strip().upper().replace(" ", "")


def _day_start(day: date) -> datetime:
    """A China date as the instant it begins (Beijing time)."""
    return datetime.combine(day, clock(0), CHINA_TZ).astimezone(UTC)


@dataclass(frozen=True)
class IssuedCard:
    card_id: str
    kind: str
    claim_code: str
    position: int

    def to_dict(self) -> dict[str, Any]:
        return {"card_id": self.card_id, "kind": self.kind, "claim_code": self.claim_code,
                "position": self.position}


@dataclass(frozen=True)
class IssuedCards:
    roster_id: str
    status: str
    cards: list[IssuedCard]

    def to_dict(self) -> dict[str, Any]:
        return {"roster_id": self.roster_id, "status": self.status, "count": len(self.cards),
                "cards": [c.to_dict() for c in self.cards]}


@dataclass(frozen=True)
class ClaimedCard:
    card_id: str
    kind: str
    sd_jwt: str
    photo: bytes
    photo_type: str
    issuer: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"card_id": self.card_id, "kind": self.kind, "sd_jwt": self.sd_jwt,
                "photo_base64": base64.b64encode(self.photo).decode(), "photo_type": self.photo_type,
                "issuer": self.issuer, "format": "eduledger-identity-card/1"}


@dataclass
class Recognition:
    """The answer to a challenge: who it is (the disclosed claims), and every check."""

    checks: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    photo_matches: bool | None = None
    # The photo checked: the one given at the desk, or the one the holder's wallet sent with
    # its answer (not part of the answer's dict: the caller decides whether to show it).
    photo: bytes | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        return all(c["outcome"] != "failed" for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [c["code"] for c in self.checks if c["outcome"] == "failed"]

    def check(self, name: str, passed: bool, code: str = "ok", **details: Any) -> bool:
        self.checks.append({"check": name, "outcome": "passed" if passed else "failed",
                            "code": "ok" if passed else code, **({"details": details} if details else {})})
        return passed

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "failures": self.failures, "card": self.card, "claims": self.claims,
                "photo_matches": self.photo_matches, "checks": self.checks}


class IdentityService:
    def __init__(self, *, engine: Engine, client: ChainAPI, deployment: Deployment,
                 registry: IdentityRegistryContract, keys: KeySource, secrets: NodeSecrets,
                 verifier: CredentialVerifier, cards: CardSource | None = None) -> None:
        self.engine = engine
        self.client = client
        self.deployment = deployment
        self.registry = registry
        self.cards: CardSource = cards or registry  # where recognition reads cards' states
        self.keys = keys
        self.secrets = secrets
        self.cipher: PersonalCipher = secrets.cipher()
        self.verifier = verifier
        self.consortium = ConsortiumContract.at(client, deployment.consortium)
        self._chain_lock = threading.Lock()  # one writer of pending cards at a time here

    # -- who may do what -------------------------------------------------------------------

    def _member(self, org_id: str) -> MemberRecord:
        org = self.deployment.member(org_id)
        if org is None:
            raise PermissionDenied(f"{org_id} is not a member of this network", code="unknown_member")
        return org

    def _issuer_rights(self, org_id: str) -> Role:
        """The role on chain of an organisation that issues cards: an active school or bureau."""
        rights = self.consortium.anchor_rights(self.keys.keys_for(org_id).address)
        if not rights.can_act:
            raise PermissionDenied(f"{org_id} is not an active member", code="member_not_active")
        if rights.role not in (Role.SCHOOL, Role.BUREAU):
            raise PermissionDenied("only a school (or the bureau) issues identity cards",
                                   code="role_not_allowed")
        assert rights.role is not None
        return rights.role

    def card_of(self, org_id: str, card_id: str) -> IdentityCard:
        """A card `org_id` may change: its own (the bureau: any). Another school's card is
        "not found" exactly as an unknown id is."""
        card = self._card(card_id)
        if card is None or (card.issuer_org != org_id and self._member(org_id)["role"] != "bureau"):
            raise NotFound(f"no card {card_id[:80]}", code="card_not_found")
        return card

    def get(self, card_id: str) -> IdentityCard:
        card = self._card(card_id)
        if card is None:
            raise NotFound(f"no card {str(card_id)[:80]}", code="card_not_found")
        return card

    def readable_by(self, org_id: str, role: str, card_id: str) -> IdentityCard:
        """A card `org_id` may read: a school its own, the bureau and auditors any."""
        return self.card_of(org_id, card_id) if role == "school" else self.get(card_id)

    def _card(self, card_id: str) -> IdentityCard | None:
        if not isinstance(card_id, str) or not re.fullmatch(r"0x[0-9a-f]{64}", card_id):
            return None
        with session_scope(self.engine) as session:
            return session.get(IdentityCard, card_id)

    # -- issuing ---------------------------------------------------------------------------

    def issue(self, org_id: str, kind: CardKind | str, entries: Sequence[CardEntry], *,
              idempotency_key: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> IssuedCards:
        """Issue a card for every entry (all or none), as `org_id`."""
        kind = CardKind(kind)
        if kind is CardKind.GRADUATE:
            raise InvalidInput("graduate cards are made from student cards (graduate)", code="bad_card_kind")
        if not entries:
            raise InvalidInput("nothing to issue", code="empty_roster")
        if idempotency_key is not None and not _IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key):
            raise InvalidInput("an idempotency key is 1 to 80 printable ASCII characters",
                               code="bad_idempotency_key")
        self._issuer_rights(org_id)
        keys = self.keys.keys_for(org_id)
        secret = _claim_secret(keys)
        fingerprint = self._request_hash(kind, entries)
        scoped = f"{org_id}:{idempotency_key}" if idempotency_key else None
        if scoped is not None:
            existing = self._roster_by_key(scoped)
            if existing is not None:
                if existing.request_hash != fingerprint:
                    raise InvalidInput("this Idempotency-Key was already used for a different roster",
                                       code="idempotency_key_reused")
                return self._finish(existing, secret)
        people = [self.secrets.person_key(e.row.person_number_kind, e.row.person_number()) for e in entries]
        predecessors = self._predecessors(org_id, kind, people)
        roster = IdentityRoster(issuer_org=org_id, kind=kind.value, count=len(entries),
                                idempotency_key=scoped, request_hash=fingerprint)
        now = utcnow().replace(microsecond=0)
        cards, portraits, new_people = [], [], []
        with session_scope(self.engine) as session:
            known = {p.person_key: p.wrapped_key for p in session.exec(
                select(IdentityPerson).where(IdentityPerson.person_key.in_(people)))}  # type: ignore[attr-defined]
        for position, (entry, person) in enumerate(zip(entries, people, strict=True)):
            wrapped = known.get(person)
            if wrapped is None:
                wrapped = known[person] = self.cipher.new_wrapped_key(person)
                new_people.append(IdentityPerson(person_key=person, wrapped_key=wrapped))
            card_id = _hex(keccak256(secrets.token_bytes(32)))
            salt = new_portrait_salt()
            fields = self._fields(entry.row, org_id)
            cards.append(IdentityCard(
                id=card_id, kind=kind.value, issuer_org=org_id, roster_id=roster.id, position=position,
                person_key=person, predecessor=predecessors.get(person),
                sealed_fields=self.cipher.encrypt(wrapped, person, f"card {card_id} fields",
                                                  json.dumps(fields, ensure_ascii=False).encode()),
                sealed_portrait_salt=self.cipher.encrypt(wrapped, person, f"card {card_id} portrait salt",
                                                         salt),
                key_salt=_hex(secrets.token_bytes(32)),
                portrait_commitment=_hex(portrait_commitment(salt, entry.photo)),
                claim_code_hash=_sha256(claim_code(secret, card_id)),
                valid_from=now,
                valid_until=_day_start(entry.row.valid_until) if entry.row.valid_until else None))
            sealed_photo = self.cipher.encrypt(wrapped, person, f"card {card_id} photo", entry.photo)
            portraits.append(IdentityPortrait(card_id=card_id, media_type=entry.photo_type,
                                              sealed_photo=sealed_photo))
        try:
            with session_scope(self.engine) as session:
                session.add(roster)
                session.add_all(new_people)
                session.flush()
                session.add_all(cards)
                session.add_all(portraits)
        except IntegrityError:
            if scoped is not None and (raced := self._roster_by_key(scoped)) is not None:
                return self._finish(raced, secret)
            raise Conflict("a person of this roster already has a live card of this kind",
                           code="card_exists") from None
        if progress is not None:
            progress(0, len(cards))
        return self._finish(roster, secret, progress=progress)

    def _predecessors(self, org_id: str, kind: CardKind, people: list[str]) -> dict[str, str]:
        """Each person's last card of this kind, which a new card continues (a teacher moving
        schools). A live one is a conflict: one live card per person and kind."""
        with session_scope(self.engine) as session:
            cards = session.exec(select(IdentityCard).where(
                IdentityCard.person_key.in_(people), IdentityCard.kind == kind.value)  # type: ignore[attr-defined]
                .order_by(IdentityCard.created_at)).all()  # type: ignore[arg-type]
        last: dict[str, IdentityCard] = {}
        for card in cards:
            last[card.person_key] = card
        live = [c for c in last.values() if c.status in (CardStatus.ACTIVE.value, CardStatus.SUSPENDED.value)]
        if live:
            mine = sum(1 for c in live if c.issuer_org == org_id)
            raise Conflict(f"{len(live)} person(s) of this roster already hold a live {kind.value} card"
                           + (f" ({len(live) - mine} at another school, which must end it first)"
                              if mine < len(live) else ""), code="card_exists",
                           cards=[c.id for c in live[:100] if c.issuer_org == org_id])
        # A card is continued at most once (the registry refuses a second continuation): a
        # student card a graduate card already continues starts no new line. Cards of a
        # refused roster (pending, revoked) never reached the chain and continue nothing.
        continued: set[str | None] = set()
        if last:
            with session_scope(self.engine) as session:
                continued = set(session.exec(select(IdentityCard.predecessor).where(
                    col(IdentityCard.predecessor).in_([c.id for c in last.values()]),
                    or_(col(IdentityCard.chain_state) == "issued",
                        col(IdentityCard.status) != CardStatus.REVOKED.value))).all())
        return {person: card.id for person, card in last.items() if card.id not in continued}

    def _fields(self, row: StudentCardRow | TeacherCardRow, org_id: str) -> dict[str, Any]:
        school = self._member(org_id)["name"]
        if isinstance(row, StudentCardRow):
            return {"name": row.name, "school": school, "grade": row.grade, "className": row.class_name,
                    "enrolmentDate": row.enrolment_date.isoformat(), "studentNumber": row.student_number,
                    **({"schoolNumber": row.school_number} if row.school_number else {}),
                    **({"nationalId": row.national_id} if row.national_id else {})}
        return {"name": row.name, "school": school, "staffNumber": row.staff_number, "subjects": row.subjects,
                "nationalId": row.national_id,
                **({"teacherCertificate": row.teacher_certificate} if row.teacher_certificate else {})}

    def _request_hash(self, kind: CardKind, entries: Sequence[CardEntry]) -> str:
        digest = hashlib.sha256(kind.value.encode())
        for entry in entries:
            digest.update(entry.row.model_dump_json(exclude={"photo_base64"}).encode())
            digest.update(hashlib.sha256(entry.photo).digest())
        return digest.hexdigest()

    def _roster_by_key(self, scoped: str) -> IdentityRoster | None:
        with session_scope(self.engine) as session:
            return session.exec(select(IdentityRoster).where(
                IdentityRoster.idempotency_key == scoped)).first()

    def _finish(self, roster: IdentityRoster, secret: bytes,
                progress: Callable[[int, int], None] | None = None) -> IssuedCards:
        """Put the roster's pending cards on chain, exactly once; its issued cards."""
        if roster.status == "failed":
            raise Conflict(f"the cards of this roster were refused by the contract: {roster.error}",
                           code="roster_refused", roster_id=roster.id)
        if roster.status != "issued":
            self._issue_on_chain(roster, progress)
        with session_scope(self.engine) as session:
            cards = session.exec(select(IdentityCard.id, IdentityCard.kind, IdentityCard.position)
                                 .where(IdentityCard.roster_id == roster.id)
                                 .order_by(IdentityCard.position)).all()  # type: ignore[arg-type]
        return IssuedCards(roster.id, "issued", [IssuedCard(cid, k, claim_code(secret, cid), pos)
                                                  for cid, k, pos in cards])

    def _issue_on_chain(self, roster: IdentityRoster, progress: Callable[[int, int], None] | None) -> None:
        with self._chain_lock:
            with session_scope(self.engine) as session:
                pending = list(session.exec(select(IdentityCard).where(
                    IdentityCard.roster_id == roster.id, IdentityCard.chain_state == "pending")
                    .order_by(IdentityCard.position)).all())  # type: ignore[arg-type]
            signer = self.keys.account_for(roster.issuer_org)
            done = roster.count - len(pending)
            for start in range(0, len(pending), MAX_CARD_BATCH):
                chunk = pending[start:start + MAX_CARD_BATCH]
                there = self.registry.card_states([c.id for c in chunk])  # issued before a stop?
                missing = [c for c, state in zip(chunk, there, strict=True) if state is None]
                if missing:
                    try:
                        self.registry.issue_batch(signer, [CardSpec(
                            c.id, CHAIN_KINDS[CardKind(c.kind)], c.portrait_commitment, c.predecessor,
                            int(c.valid_from.timestamp()),
                            int(c.valid_until.timestamp()) if c.valid_until else None) for c in missing])
                    except ContractReverted as exc:
                        # Refused (the issuer suspended meanwhile, say): the cards that are not
                        # on chain never were; they no longer hold their person's one live card.
                        self._mark_roster(roster.id, "failed", exc.reason)
                        with session_scope(self.engine, write=True) as session:
                            session.execute(update(_CARDS).where(
                                _CARDS.c.roster_id == roster.id, _CARDS.c.chain_state == "pending")
                                .values(status=CardStatus.REVOKED.value, updated_at=utcnow()))
                        raise
                with session_scope(self.engine, write=True) as session:
                    session.execute(update(_CARDS).where(
                        _CARDS.c.id.in_([c.id for c in chunk]))
                        .values(chain_state="issued", updated_at=utcnow()))
                    for card in chunk:
                        if card.predecessor:  # the contract ended a live predecessor with it
                            session.execute(update(_CARDS).where(
                                _CARDS.c.id == card.predecessor,
                                _CARDS.c.status.in_(["active", "suspended"]))
                                .values(status=CardStatus.ENDED.value, updated_at=utcnow()))
                done += len(chunk)
                if progress is not None:
                    progress(done, roster.count)
            self._mark_roster(roster.id, "issued", None)

    def _mark_roster(self, roster_id: str, status: str, error: str | None) -> None:
        with session_scope(self.engine, write=True) as session:
            stored = session.get(IdentityRoster, roster_id)
            if stored is not None:
                stored.status, stored.error, stored.updated_at = status, error, utcnow()
                session.add(stored)

    def resume(self) -> int:
        """Put on chain the cards of every roster accepted but not finished (after a stop, or
        while the chain was unreachable); returns how many rosters were finished."""
        with session_scope(self.engine) as session:
            rosters = list(session.exec(select(IdentityRoster).where(IdentityRoster.status == "pending")
                                        .order_by(IdentityRoster.created_at)).all())  # type: ignore[arg-type]
        finished = 0
        for roster in rosters:
            try:
                self._issue_on_chain(roster, None)
                finished += 1
            except ContractReverted as exc:
                log.warning("identity roster %s was refused by the contract: %s", roster.id, exc.reason)
        return finished

    # -- claiming ---------------------------------------------------------------------------

    def claim(self, code: str, holder_jwk: dict[str, Any],
              encryption_jwk: dict[str, Any] | None = None) -> ClaimedCard:
        """The card behind a one-time claim code, bound to the holder's key, with its photo.
        `encryption_jwk`: the wallet's X25519 key that documents to the holder are encrypted
        to (documents.py); a claim without one leaves the card without (a rotation clears it)."""
        commitment_of = jwk_thumbprint(holder_jwk)  # validates the key (malformed otherwise)
        del commitment_of
        encryption = check_encryption_jwk(encryption_jwk) if encryption_jwk is not None else None
        code_hash = _sha256(_normalise_code(code)) if isinstance(code, str) else ""
        with session_scope(self.engine) as session:
            card = session.exec(select(IdentityCard).where(IdentityCard.claim_code_hash == code_hash)).first()
        if card is None:
            raise NotFound("no such claim code", code="claim_not_found")
        if card.chain_state != "issued":
            self._finish_roster_of(card)
        if card.status not in (CardStatus.ACTIVE.value, CardStatus.SUSPENDED.value):
            raise Conflict(f"this card is {card.status}", code="card_not_live")
        new_salt = secrets.token_bytes(32)
        commitment = key_commitment(new_salt, holder_jwk)
        with session_scope(self.engine, write=True) as session:
            # One winner when two redemptions race: the code is spent before the chain is asked.
            won = session.execute(update(_CARDS).where(
                _CARDS.c.id == card.id, _CARDS.c.claim_code_hash == code_hash)
                .values(claim_code_hash=None, updated_at=utcnow()))
            if won.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("this claim code has already been used", code="claim_already_redeemed")
        signer = self.keys.account_for(card.issuer_org)
        try:
            on_chain = self.registry.card(card.id)
            if on_chain is not None and on_chain.holder_key is None:
                self.registry.bind_key(signer, card.id, commitment)
            else:
                self.registry.rotate_key(signer, card.id, commitment)
        except LedgerError:
            with session_scope(self.engine, write=True) as session:  # the code stays usable
                session.execute(update(_CARDS).where(_CARDS.c.id == card.id)
                                .values(claim_code_hash=code_hash))
            raise
        with session_scope(self.engine, write=True) as session:
            session.execute(update(_CARDS).where(_CARDS.c.id == card.id).values(
                holder_jwk=json.dumps(holder_jwk, sort_keys=True), key_salt=_hex(new_salt),
                encryption_jwk=json.dumps(encryption, sort_keys=True) if encryption else None,
                claimed_at=utcnow(), updated_at=utcnow()))
        fresh = self._card(card.id)
        assert fresh is not None
        photo, media = self.portrait_of(fresh)
        issuer = self._member(card.issuer_org)
        return ClaimedCard(card.id, card.kind, self._sign_card(fresh, holder_jwk), photo, media,
                           {"org_id": card.issuer_org, "name": issuer["name"]})

    def _finish_roster_of(self, card: IdentityCard) -> None:
        with session_scope(self.engine) as session:
            roster = session.get(IdentityRoster, card.roster_id)
        if roster is not None:
            self._issue_on_chain(roster, None)

    def _open(self, card: IdentityCard, what: str, sealed: bytes) -> bytes:
        with session_scope(self.engine) as session:
            person = session.get(IdentityPerson, card.person_key)
        if person is None:
            raise NotFound("this person's data has been erased", code="person_erased")
        return self.cipher.decrypt(person.wrapped_key, card.person_key, f"card {card.id} {what}", sealed)

    def fields_of(self, card: IdentityCard) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(self._open(card, "fields", card.sealed_fields))
        return fields

    def portrait_of(self, card: IdentityCard) -> tuple[bytes, str]:
        with session_scope(self.engine) as session:
            portrait = session.get(IdentityPortrait, card.id)
        if portrait is None:
            raise NotFound("the card has no portrait", code="portrait_not_found")
        return self._open(card, "photo", portrait.sealed_photo), portrait.media_type

    def _sign_card(self, card: IdentityCard, holder_jwk: dict[str, Any]) -> str:
        keys = self.keys.keys_for(card.issuer_org)
        member = self._member(card.issuer_org)
        did = issuer_did(self.client.chain_id, self.deployment.consortium, member["member_id"])
        fields = self.fields_of(card)
        fields.pop("nationalId", None)  # never in a card: the holder shows their id card for that
        salt = self._open(card, "portrait salt", card.sealed_portrait_salt)
        photo, _ = self.portrait_of(card)
        subject = {**fields, "portrait": {"sha256": hashlib.sha256(photo).hexdigest(), "salt": _hex(salt)}}
        if card.valid_until is not None:
            subject["validUntil"] = card.valid_until.astimezone(CHINA_TZ).date().isoformat()
        payload = {"iss": did, "iat": int(time.time()), "vct": CARD_VCT, "cardId": card.id,
                   "cardKind": card.kind, "keySalt": card.key_salt,
                   "registry": {"chainId": self.client.chain_id, "address": self.registry.address.lower()},
                   SUBJECT: subject}
        if card.encryption_jwk is not None:  # binds the holder's encryption key to the card
            payload["encryptionKeyThumbprint"] = encryption_kid(json.loads(card.encryption_jwk))
        return sdjwt.issue(payload, key=keys.ed25519_private, kid=key_id(did, keys.ed25519_public_bytes),
                           sd_root=SUBJECT, holder_jwk=holder_jwk, typ=CARD_TYP).compact

    def new_claim_code(self, org_id: str, card_id: str) -> str:
        """A fresh claim code for a card (a lost or compromised key): redeeming it with a new
        key rotates the key on chain. The issuer hands it over after checking who it is."""
        card = self.card_of(org_id, card_id)
        if card.status not in (CardStatus.ACTIVE.value, CardStatus.SUSPENDED.value):
            raise Conflict(f"this card is {card.status}", code="card_not_live")
        code = claim_code(_claim_secret(self.keys.keys_for(card.issuer_org)),
                          f"{card.id}:{secrets.token_hex(8)}")
        with session_scope(self.engine, write=True) as session:
            session.execute(update(_CARDS).where(_CARDS.c.id == card.id)
                            .values(claim_code_hash=_sha256(code), updated_at=utcnow()))
        return code

    # -- life of a card ------------------------------------------------------------------

    def change_status(self, org_id: str, card_id: str, action: str, *, reason: int = 0) -> IdentityCard:
        card = self.card_of(org_id, card_id)
        status = STATUS_ACTIONS.get(action)
        if status is None:
            raise InvalidInput(f"unknown card action {action!r}", code="bad_action")
        if not isinstance(reason, int) or isinstance(reason, bool) or not 0 <= reason < 2**16:
            raise InvalidInput("reason must be a code from 0 to 65535", code="bad_reason")
        if card.chain_state != "issued":
            self._finish_roster_of(card)
        self.registry.set_status(self.keys.account_for(org_id), card.id, status, reason)
        with session_scope(self.engine, write=True) as session:
            session.execute(update(_CARDS).where(_CARDS.c.id == card.id).values(
                status=CHAIN_STATUS_NAMES[status].value, status_reason=reason, updated_at=utcnow()))
        fresh = self._card(card.id)
        assert fresh is not None
        return fresh

    def graduate(self, org_id: str, card_id: str, *, graduation_date: date,
                 valid_until: date | None = None) -> IssuedCards:
        """The student card becomes a graduate card: a new card continuing it (the contract
        ends the student card in the same transaction), for the same person, bound to the
        same holder key; a claim code hands the holder the graduate card."""
        student = self.card_of(org_id, card_id)
        if student.kind != CardKind.STUDENT.value:
            raise InvalidInput("only a student card graduates", code="not_a_student_card")
        if student.status not in (CardStatus.ACTIVE.value, CardStatus.SUSPENDED.value):
            raise Conflict(f"this card is {student.status}", code="card_not_live")
        fields = {**self.fields_of(student), "graduationDate": graduation_date.isoformat()}
        photo, media = self.portrait_of(student)
        keys = self.keys.keys_for(student.issuer_org)
        with session_scope(self.engine) as session:
            person = session.get(IdentityPerson, student.person_key)
        if person is None:
            raise NotFound("this person's data has been erased", code="person_erased")
        card_id_new = _hex(keccak256(secrets.token_bytes(32)))
        salt = new_portrait_salt()
        roster = IdentityRoster(issuer_org=student.issuer_org, kind=CardKind.GRADUATE.value, count=1)
        wrapped = person.wrapped_key
        card = IdentityCard(
            id=card_id_new, kind=CardKind.GRADUATE.value, issuer_org=student.issuer_org, roster_id=roster.id,
            position=0, person_key=student.person_key, predecessor=student.id,
            sealed_fields=self.cipher.encrypt(wrapped, student.person_key, f"card {card_id_new} fields",
                                              json.dumps(fields, ensure_ascii=False).encode()),
            sealed_portrait_salt=self.cipher.encrypt(wrapped, student.person_key,
                                                     f"card {card_id_new} portrait salt", salt),
            key_salt=student.key_salt, portrait_commitment=_hex(portrait_commitment(salt, photo)),
            holder_jwk=student.holder_jwk, encryption_jwk=student.encryption_jwk,
            claim_code_hash=_sha256(claim_code(_claim_secret(keys), card_id_new)),
            valid_from=utcnow().replace(microsecond=0),
            valid_until=_day_start(valid_until) if valid_until else None)
        try:
            with session_scope(self.engine) as session:
                session.add(roster)
                session.flush()
                session.add(card)
                sealed = self.cipher.encrypt(wrapped, student.person_key, f"card {card_id_new} photo", photo)
                session.add(IdentityPortrait(card_id=card_id_new, media_type=media, sealed_photo=sealed))
        except IntegrityError:  # one live card per person and kind
            raise Conflict("this person already holds a live graduate card, which must be ended first",
                           code="card_exists") from None
        issued = self._finish(roster, _claim_secret(keys))
        if student.holder_jwk is not None:  # the same key holds the graduate card at once
            self.registry.bind_key(self.keys.account_for(student.issuer_org), card_id_new,
                                   key_commitment(bytes.fromhex(student.key_salt[2:]),
                                                  json.loads(student.holder_jwk)))
        return issued

    # -- recognition ----------------------------------------------------------------------

    def new_challenge(self, org_id: str, audience: str, claims: Sequence[str],
                      seconds: int = 300, *, photo: bool = False) -> IdentityChallenge:
        """A challenge for `org_id`; with `photo`, the wallet is asked to send the card's
        portrait file with its answer (a proctor compares it with the person at the desk)."""
        if not isinstance(audience, str) or not 1 <= len(audience) <= 300 or not audience.isprintable():
            raise InvalidInput("the audience is 1 to 300 printable characters (the relying party's URL)",
                               code="bad_audience")
        unknown = [c for c in claims if c not in CLAIM_NAMES]
        if unknown or len(claims) > len(CLAIM_NAMES):
            raise InvalidInput(f"unknown claims {unknown[:5]}; a challenge asks for some of: "
                               f"{', '.join(CLAIM_NAMES)}", code="bad_claims")
        if not isinstance(photo, bool):
            raise InvalidInput("photo is true or false", code="invalid_input")
        if not isinstance(seconds, int) or not MIN_CHALLENGE_SECONDS <= seconds <= MAX_CHALLENGE_SECONDS:
            raise InvalidInput(f"a challenge lasts {MIN_CHALLENGE_SECONDS} to {MAX_CHALLENGE_SECONDS} "
                               "seconds", code="bad_expiry")
        self._member(org_id)
        challenge = IdentityChallenge(id=secrets.token_urlsafe(CHALLENGE_ID_BYTES),
                                      nonce=secrets.token_urlsafe(24), audience=audience,
                                      claims_json=json.dumps(sorted(set(claims))),
                                      requested_by=org_id, expires_at=utcnow() + timedelta(seconds=seconds),
                                      wants_photo=photo)
        with session_scope(self.engine) as session:
            session.add(challenge)
        return challenge

    def challenge(self, challenge_id: str) -> IdentityChallenge:
        if not isinstance(challenge_id, str) or not _CHALLENGE_ID_RE.fullmatch(challenge_id):
            raise NotFound("no such challenge", code="challenge_not_found")
        with session_scope(self.engine) as session:
            found = session.get(IdentityChallenge, challenge_id)
        if found is None:
            raise NotFound("no such challenge", code="challenge_not_found")
        return found

    def submit_answer(self, challenge_id: str, presentation: str, *, photo: bytes | None = None,
                      now: datetime | None = None) -> None:
        """The holder's wallet answers a challenge it read from a QR code (cross-device): the
        answer waits here, unchecked, until the relying party asks for the verdict. `photo`:
        the card's portrait file, when the challenge asks for it; it waits sealed, and is
        cleared when the challenge is spent (or expires: ``purge_answer_photos``)."""
        challenge = self.challenge(challenge_id)
        if challenge.expires_at <= (now or utcnow()):
            raise Conflict("the challenge has expired", code="challenge_expired")
        if not isinstance(presentation, str) or not 10 <= len(presentation) <= 256 * 1024:
            raise InvalidInput("a presentation is an SD-JWT with a key-binding JWT", code="malformed")
        sealed = None
        if photo is not None:
            if not challenge.wants_photo:  # personal data nobody asked for is not taken
                raise InvalidInput("this challenge does not ask for a photo", code="photo_not_asked")
            check_photo(photo)
            sealed = self.cipher.seal_transient(f"challenge {challenge.id} photo", photo)
        with session_scope(self.engine, write=True) as session:
            won = session.execute(update(_CHALLENGES).where(
                _CHALLENGES.c.id == challenge.id, _CHALLENGES.c.answer.is_(None),
                _CHALLENGES.c.answered_at.is_(None)).values(answer=presentation, answer_photo=sealed))
        if won.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("the challenge has been answered already", code="challenge_used")

    def recognise(self, org_id: str, challenge_id: str, presentation: str | None = None, *,
                  photo: bytes | None = None, now: datetime | None = None) -> Recognition:
        """Check a holder's answer to a challenge against the chain; spends the challenge.
        Without `presentation`, the answer the holder's wallet submitted is checked, and
        without `photo` the photo it sent with it (if any)."""
        now = now or utcnow()
        result = Recognition()
        challenge = self.challenge(challenge_id)
        if challenge.requested_by != org_id:
            raise NotFound("no such challenge", code="challenge_not_found")
        if presentation is None:
            presentation = challenge.answer
            if presentation is None:
                result.check("challenge", False, "not_answered")
                return result
            if photo is None and challenge.answer_photo is not None:
                photo = self.cipher.open_transient(f"challenge {challenge.id} photo", challenge.answer_photo)
        result.photo = photo
        if not result.check("challenge", challenge.expires_at > now, "challenge_expired",
                            expired_at=challenge.expires_at.isoformat()):
            return result
        try:
            parsed = sdjwt.parse(presentation)
        except InvalidInput as exc:
            result.check("format", False, "malformed", problem=exc.message)
            return result
        payload = parsed.payload
        is_card = payload.get("vct") == CARD_VCT and isinstance(payload.get("cardId"), str)
        if not result.check("format", is_card, "not_an_identity_card"):
            return result
        head = self.client.block_number()
        try:
            did, public_key, member = self.verifier.signer_at(parsed.header.get("kid"), head)
        except InvalidInput as exc:
            result.check("issuer", False, exc.code)
            return result
        if not result.check("issuer", payload.get("iss") == did and member.status is MemberStatus.ACTIVE,
                            "issuer_not_authorised", status=member.status.name.lower()):
            return result
        try:
            verified = sdjwt.verify_parsed(parsed, issuer_key=lambda _h, _p: public_key,
                                           require_key_binding=True, aud=challenge.audience,
                                           nonce=challenge.nonce,
                                           now=int(now.timestamp()), kb_max_age=MAX_CHALLENGE_SECONDS)
        except sdjwt.SdJwtError as exc:
            stage = "signature" if exc.code == "signature_invalid" else (
                "disclosures" if exc.code in ("claim_tampered", "malformed") else "holder_binding")
            result.check(stage, False, exc.code, problem=exc.message)
            return result
        result.check("signature", True)
        result.check("holder_binding", True)
        # The challenge is spent by the first answer that gets this far, good or not.
        with session_scope(self.engine, write=True) as session:
            won = session.execute(update(_CHALLENGES).where(
                _CHALLENGES.c.id == challenge.id, _CHALLENGES.c.answered_at.is_(None))
                .values(answered_at=now, answered_card=str(payload["cardId"])[:66], answer_photo=None))
        if not result.check("challenge", won.rowcount == 1, "challenge_used"):  # type: ignore[attr-defined]
            return result
        claims: dict[str, Any] = verified.claims.get(SUBJECT, {}) if isinstance(verified.claims, dict) else {}
        wanted = json.loads(challenge.claims_json)
        result.claims = {k: v for k, v in claims.items() if k in wanted or k == "portrait"}
        missing = [c for c in wanted if c not in claims]
        result.check("claims", not missing, "claims_missing", missing=missing)
        card = self._chain_card(payload, result, member.member_id, now)
        if card is None:
            return result
        jwk = (payload.get("cnf") or {}).get("jwk")
        salt = payload.get("keySalt")
        try:
            presented = key_commitment(bytes.fromhex(str(salt)[2:]), jwk) if isinstance(jwk, dict) else b""
        except (ValueError, InvalidInput):
            presented = b""
        current = card.holder_key is not None and hmac.compare_digest(presented, card.holder_key)
        result.check("holder_key", current, "holder_key_rotated")
        if photo is not None:
            result.photo_matches = self._photo_matches(photo, claims.get("portrait"), card)
            result.check("portrait", result.photo_matches, "portrait_mismatch")
        return result

    def forget_answer_photo(self, challenge_id: str) -> None:
        """Clear the photo a wallet sent with its answer (the relying party has had its verdict)."""
        with session_scope(self.engine, write=True) as session:
            session.execute(update(_CHALLENGES).where(_CHALLENGES.c.id == challenge_id)
                            .values(answer_photo=None))

    def purge_answer_photos(self, now: datetime | None = None) -> int:
        """Clear the photos wallets sent with answers to challenges now spent or expired
        (an answer that never got as far as spending its challenge); returns how many."""
        with session_scope(self.engine, write=True) as session:
            done = session.execute(update(_CHALLENGES).where(
                _CHALLENGES.c.answer_photo.is_not(None),
                or_(_CHALLENGES.c.answered_at.is_not(None), _CHALLENGES.c.expires_at <= (now or utcnow())))
                .values(answer_photo=None))
        return int(done.rowcount)  # type: ignore[attr-defined]

    def card_states(self, card_ids: Sequence[str]) -> list[CardState | None]:
        """Each card's state on chain (None: no such card), in order, read at one block."""
        return self.registry.card_states(list(card_ids))

    def member_rights(self, org_id: str) -> tuple[Role | None, bool]:
        """An organisation's role on chain and whether it may act now (active)."""
        rights = self.consortium.anchor_rights(self._member(org_id)["account"])
        return rights.role, rights.can_act

    def _chain_card(self, payload: dict[str, Any], result: Recognition, member_id: int,
                    now: datetime) -> CardInfo | None:
        card_id = payload["cardId"]
        try:
            card = self.cards.card(card_id)
        except InvalidInput:
            card = None
        if card is None:
            result.check("card", False, "card_unknown")
            return None
        status = CHAIN_STATUS_NAMES[card.status].value
        result.card = {"card_id": card_id, "kind": card.kind.name.lower(), "status": status,
                       "reason": card.reason, "issuer_member_id": card.issuer,
                       "predecessor": _hex(card.predecessor) if card.predecessor else None,
                       "changed_block": card.changed_block}
        if card.issuer != member_id or card.kind.name.lower() != payload.get("cardKind"):
            result.check("card", False, "card_mismatch")
            return None
        if card.status is not ChainStatus.ACTIVE:
            result.check("card", False, f"card_{status}")
            return card
        result.check("card", card.in_window(int(now.timestamp())), "card_expired")
        return card

    def _photo_matches(self, photo: bytes, portrait: Any, card: CardInfo) -> bool:
        try:
            check_photo(photo)
        except InvalidInput:
            return False
        if not isinstance(portrait, dict) or not isinstance(portrait.get("salt"), str) or not card.portrait:
            return False
        digest = hashlib.sha256(photo).hexdigest()
        try:
            salt = bytes.fromhex(portrait["salt"][2:])
        except ValueError:
            return False
        return (hmac.compare_digest(digest, str(portrait.get("sha256")))
                and len(salt) == 32 and hmac.compare_digest(portrait_commitment(salt, photo), card.portrait))

    # -- reading ---------------------------------------------------------------------------

    def view(self, card: IdentityCard, *, personal: bool) -> dict[str, Any]:
        """A card's record; with `personal` its decrypted fields too (log the read first)."""
        view: dict[str, Any] = {
            "card_id": card.id, "kind": card.kind, "issuer_org": card.issuer_org, "status": card.status,
            "status_reason": card.status_reason, "chain_state": card.chain_state,
            "predecessor": card.predecessor, "claimed": card.claimed_at is not None,
            "valid_from": card.valid_from, "valid_until": card.valid_until, "created_at": card.created_at,
            "encryption_jwk": None, "encryption_kid": None}
        if card.encryption_jwk:
            view["encryption_jwk"] = key = json.loads(card.encryption_jwk)
            view["encryption_kid"] = encryption_kid(key)
        if personal:
            view["fields"] = self.fields_of(card)
        return view

    def count_live(self, org_id: str) -> int:
        with session_scope(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(IdentityCard).where(
                IdentityCard.issuer_org == org_id, IdentityCard.status == "active")).one())

    # -- query and trace --------------------------------------------------------------------

    def history(self, card_id: str, *, indexer: Indexer, check_chain: bool = False) -> dict[str, Any]:
        """Every change of a card, oldest first, from the event index (kept current first):
        issued, key bound or rotated, status changes, portrait; and the cards it continues and
        that continue it. With `check_chain`, each entry is read back from the chain's receipt."""
        card = self._card(card_id)
        if card is None:
            raise NotFound(f"no card {str(card_id)[:80]}", code="card_not_found")
        indexer.run_once()
        address = self.registry.address.lower()
        with session_scope(self.engine) as session:
            events = session.exec(select(ChainEvent).where(
                ChainEvent.contract == address,
                ChainEvent.args_json.contains(f'"cardId": "{card.id}"'))  # type: ignore[attr-defined]
                .order_by(ChainEvent.block_number, ChainEvent.log_index)).all()  # type: ignore[arg-type]
            successor = session.exec(select(IdentityCard.id).where(
                IdentityCard.predecessor == card.id)).first()
        org_of = {info["member_id"]: org for org, info in self.deployment.organisations.items()}
        entries = []
        for event in events:
            args = json.loads(event.args_json)
            member = args.get("issuer", args.get("memberId"))
            entry: dict[str, Any] = {
                "action": _ACTIONS.get(event.event, event.event), "event": event.event,
                "actor": org_of.get(int(member)) if member is not None else None,
                "status": _STATUS_OF.get(int(args["status"])) if "status" in args else None,
                "reason": args.get("reason"), "block_number": event.block_number,
                "block_time": event.block_time, "tx_hash": event.tx_hash}
            if check_chain:
                entry["chain"] = "confirmed" if self._on_chain(event) else "missing"
            entries.append(entry)
        return {"card_id": card.id, "kind": card.kind, "issuer_org": card.issuer_org, "status": card.status,
                "predecessor": card.predecessor, "successor": successor, "history": entries}

    def _on_chain(self, event: ChainEvent) -> bool:
        try:
            receipt = self.client.receipt(event.tx_hash)
        except TransactionNotFound:
            return False
        if int(receipt["blockNumber"]) != event.block_number:
            return False
        return any(int(log["logIndex"]) == event.log_index
                   and str(log["address"]).lower() == event.contract for log in receipt["logs"])


_ACTIONS = {"CardIssued": "issued", "CardKeyBound": "key_bound", "CardKeyRotated": "key_rotated",
            "CardStatusChanged": "status_changed", "CardPortraitChanged": "portrait_changed",
            "CardValidityChanged": "validity_changed"}
_STATUS_OF = {int(s): CHAIN_STATUS_NAMES[s].value for s in ChainStatus}
