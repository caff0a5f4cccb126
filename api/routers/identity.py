"""Education identity cards: schools issue and manage them, holders claim them, relying
parties (exam systems, online courses, academic affairs) recognise their holders."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import card_holder, rate_limited, reader_or_holder, require_role
from api.deps import ClientAddress, Services
from api.models import (
    AUTH_ERRORS,
    CARD_ROSTER_REQUEST,
    CHAIN_DOWN,
    DOCUMENT_REQUEST,
    IDENTITY_CHAIN_DOWN_AT_FIRST_USE,
    RATE_LIMITED,
    UNREADABLE_BODY,
    CardHistory,
    CardRedeem,
    CardStatusChange,
    CardView,
    ChallengeAnswer,
    ChallengeView,
    ClaimedCardView,
    DocumentList,
    DocumentView,
    Graduation,
    IssuedCardsView,
    NewChallenge,
    NewClaimCode,
    Recognise,
    RecognitionView,
    error_responses,
)
from ledger.consortium.models import ApiKey
from ledger.errors import InvalidInput
from ledger.identity import documents
from ledger.identity.holder_auth import HolderAccess
from ledger.identity.models import IdentityChallenge
from ledger.identity.roster import parse_card_roster

router = APIRouter(prefix="/v1/identity")
public = APIRouter(prefix="/v1/identity", dependencies=[Depends(rate_limited)])

Issuer = Annotated[ApiKey, Depends(require_role("school", "bureau"))]
Reader = Annotated[ApiKey, Depends(require_role("school", "bureau", "auditor"))]
Member = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau", "auditor"))]
Holder = Annotated[HolderAccess, Depends(card_holder)]
ReaderOrHolder = Annotated[ApiKey | HolderAccess, Depends(reader_or_holder("school", "bureau", "auditor"))]
Purpose = Annotated[str, Query(min_length=3, max_length=200, description="why the personal data is read")]
CARD_NOT_FOUND = {404: "`card_not_found` (also another school's card)"}
HOLDER_ERRORS = {401: "`unauthenticated` (no `Authorization: HolderProof <proof>`), "
                    "`malformed_holder_proof`, "
                    "`holder_key_not_current` (signed by another key, or one the card was rotated away "
                    "from), `holder_proof_mismatch` (made for another card, method or path), "
                    "`holder_proof_expired` (not from the last 120 seconds), `holder_proof_replayed`"}
BAD_PURPOSE = "`bad_purpose` (control characters in a purpose the access log records)"
_FORMATS: dict[str, Literal["json", "csv", "zip"]] = {
    "application/json": "json", "text/csv": "csv", "application/zip": "zip",
    "application/x-zip-compressed": "zip"}


def _photo(photo_base64: str | None) -> bytes | None:
    if photo_base64 is None:
        return None
    try:
        return base64.b64decode(photo_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("photo_base64 is not base64", code="invalid_input") from None


def _challenge_view(challenge: IdentityChallenge) -> dict[str, Any]:
    import json

    return {"challenge_id": challenge.id, "nonce": challenge.nonce, "audience": challenge.audience,
            "claims": json.loads(challenge.claims_json), "photo": challenge.wants_photo,
            "expires_at": challenge.expires_at,
            "answered": challenge.answered_at is not None}


@router.post("/cards", status_code=201, response_model=IssuedCardsView, openapi_extra=CARD_ROSTER_REQUEST,
             responses=error_responses({
                 **AUTH_ERRORS,
                 403: "`role_not_allowed` (not a school or the bureau, on chain), `member_not_active`",
                 409: "`card_exists` (a person of the roster already holds a live card of the kind), "
                      "`contract_reverted` (the registry refused the roster's cards, e.g. the school "
                      "was suspended meanwhile), `roster_refused` (a retry with the Idempotency-Key of "
                      "a roster the registry refused)",
                 413: "`roster_too_large`: more than 10,000 cards, or a ZIP that inflates too far",
                 422: "`invalid_roster` (every problem in details.errors), `malformed_roster`, "
                      "`empty_roster`, `bad_format` (not JSON, CSV or a ZIP), `invalid_input` (?kind "
                      "missing, or not student or teacher), `idempotency_key_reused`, "
                      "`bad_idempotency_key`",
                 **CHAIN_DOWN}))
async def issue_cards(request: Request, key: Issuer, services: Services,
                      kind: Annotated[Literal["student", "teacher"], Query()]) -> IssuedCardsView:
    """A roster of student or teacher cards: JSON, CSV, or a ZIP of roster.csv/roster.json and
    the photos it names (Content-Type application/zip)."""
    body = await request.body()  # within the limit of api.limits
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = _FORMATS.get(content_type)
    if fmt is None:
        raise InvalidInput("send the roster as application/json, text/csv or application/zip",
                           code="bad_format")

    def run() -> dict[str, Any]:
        entries = parse_card_roster(body, kind=kind, fmt=fmt)
        return services.identity.issue(key.org_id, kind, entries,
                                       idempotency_key=request.headers.get("idempotency-key")).to_dict()

    return IssuedCardsView.model_validate(await run_in_threadpool(run))


@router.get("/cards/{card_id}", response_model=CardView, response_model_exclude_unset=True,
            responses=error_responses({**AUTH_ERRORS, 403: "`role_not_allowed`", **CARD_NOT_FOUND,
                                       422: "`invalid_input`: purpose missing or not 3 to 200 "
                                            "characters, personal not a boolean; " + BAD_PURPOSE,
                                       **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def get_card(card_id: str, key: Reader, services: Services, client: ClientAddress, purpose: Purpose,
             personal: bool = False) -> dict[str, Any]:
    """A card's record; with ?personal=true its personal fields too (the read is logged)."""
    identity = services.identity
    card = identity.readable_by(key.org_id, key.role, card_id)
    if personal:
        services.record_access(key.org_id, key.role, "audit_read" if key.role == "auditor" else "read",
                               "identity_card", card.id, purpose, client=client)
    return identity.view(card, personal=personal)


@router.get("/cards/{card_id}/photo", response_class=Response,
            responses={200: {"content": {media: {"schema": {"type": "string", "format": "binary"}}
                                         for media in ("image/jpeg", "image/png", "image/webp")}},
                       **error_responses({**AUTH_ERRORS, 403: "`role_not_allowed`", **CARD_NOT_FOUND,
                                          422: "`invalid_input`: purpose missing or not 3 to 200 "
                                               "characters; " + BAD_PURPOSE,
                                          **IDENTITY_CHAIN_DOWN_AT_FIRST_USE})})
def card_photo(card_id: str, key: Reader, services: Services, client: ClientAddress,
               purpose: Purpose) -> Response:
    identity = services.identity
    card = identity.readable_by(key.org_id, key.role, card_id)
    services.record_access(key.org_id, key.role, "read", "identity_photo", card.id, purpose, client=client)
    photo, media = identity.portrait_of(card)
    return Response(photo, media_type=media, headers={"Cache-Control": "no-store"})


@router.post("/cards/{card_id}/status", response_model=CardView, response_model_exclude_unset=True,
             responses=error_responses({**UNREADABLE_BODY, **AUTH_ERRORS, 403: "`role_not_allowed`",
                                        **CARD_NOT_FOUND,
                                        409: "`contract_reverted` (the registry refuses the change: "
                                             "the card has that status already, or is revoked or "
                                             "ended and changes no more)",
                                        422: "`invalid_input`", **CHAIN_DOWN}))
def change_card_status(card_id: str, change: CardStatusChange, key: Issuer,
                       services: Services) -> dict[str, Any]:
    card = services.identity.change_status(key.org_id, card_id, change.action, reason=change.reason)
    return services.identity.view(card, personal=False)


@router.post("/cards/{card_id}/graduate", status_code=201, response_model=IssuedCardsView,
             responses=error_responses({**UNREADABLE_BODY, **AUTH_ERRORS, 403: "`role_not_allowed`",
                                        **CARD_NOT_FOUND,
                                        409: "`card_not_live` (the student card is revoked or ended), "
                                             "`card_exists` (the person already holds a live graduate "
                                             "card), `contract_reverted` (the registry refuses the "
                                             "graduate card)",
                                        422: "`not_a_student_card`, `invalid_input`", **CHAIN_DOWN}))
def graduate(card_id: str, graduation: Graduation, key: Issuer, services: Services) -> dict[str, Any]:
    """The student card becomes a graduate card (the same person, history and holder key)."""
    return services.identity.graduate(key.org_id, card_id, graduation_date=graduation.graduation_date,
                                      valid_until=graduation.valid_until).to_dict()


@router.post("/cards/{card_id}/claim-code", response_model=NewClaimCode,
             responses=error_responses({**AUTH_ERRORS, 403: "`role_not_allowed`", **CARD_NOT_FOUND,
                                        409: "`card_not_live`", **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def new_claim_code(card_id: str, key: Issuer, services: Services) -> dict[str, Any]:
    """A fresh claim code (a lost or compromised key): redeemed with a new key, it rotates the
    card's key on chain. Hand it over only after checking who asks."""
    return {"card_id": card_id, "claim_code": services.identity.new_claim_code(key.org_id, card_id)}


@router.get("/cards/{card_id}/history", response_model=CardHistory, response_model_exclude_unset=True,
            responses=error_responses({
                401: AUTH_ERRORS[401] + "; for the card's holder: " + HOLDER_ERRORS[401],
                403: "`role_not_allowed`", **CARD_NOT_FOUND,
                422: "`invalid_input` (check is not `chain`)", **CHAIN_DOWN}))
def card_history(card_id: str, who: ReaderOrHolder, services: Services, client: ClientAddress,
                 check: Literal["chain"] | None = None) -> dict[str, Any]:
    """Every change of the card on chain, oldest first (?check=chain re-reads each from the chain).
    For the issuer, the bureau and auditors (API key), and for the card's holder (holder proof)."""
    identity = services.identity
    if isinstance(who, HolderAccess):
        card = who.card
        services.record_access("holder", "holder", "read", "identity_history", card.id,
                               "the holder reads their own card's history", client=client)
    else:
        card = identity.readable_by(who.org_id, who.role, card_id)
        services.record_access(who.org_id, who.role, "audit_read", "identity_history", card.id,
                               "card history", client=client)
    return identity.history(card.id, indexer=services.node.indexer(), check_chain=check == "chain")


@router.post("/cards/{card_id}/documents", status_code=201, response_model=DocumentView,
             response_model_exclude_unset=True, openapi_extra=DOCUMENT_REQUEST,
             responses=error_responses({
                 **AUTH_ERRORS, 403: "`role_not_allowed`", **CARD_NOT_FOUND,
                 409: "`card_not_active` (suspended, revoked or ended), `no_encryption_key` (the "
                      "holder's wallet sent no encryption key with its claim)",
                 413: "`too_large` (the body), `document_too_large` (more than 8 MiB)",
                 422: "`empty_document`, `bad_filename`, `bad_media_type`, `invalid_input` (JSON "
                      "that is not the documented object, content_base64 that is not base64)",
                 **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
async def send_document(card_id: str, request: Request, key: Reader, services: Services,
                        filename: Annotated[str | None, Query(
                            min_length=1, max_length=255,
                            description="the file's name, for a raw body (encrypted with it)")] = None
                        ) -> dict[str, Any]:
    """Send a document to the card's holder, encrypted to their key (a JWE only their wallet
    opens); the node keeps only the ciphertext."""
    body = await request.body()  # within the limit of api.limits

    def run() -> dict[str, Any]:
        card = services.identity.readable_by(key.org_id, key.role, card_id)
        upload = documents.parse_upload(body, request.headers.get("content-type", ""), filename=filename)
        return documents.view(services.holder_documents.send(card, key.org_id, upload), content=False)

    return await run_in_threadpool(run)


@router.get("/cards/{card_id}/documents", response_model=DocumentList, response_model_exclude_unset=True,
            responses=error_responses({**HOLDER_ERRORS, 404: "`card_not_found`",
                                       **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def list_documents(holder: Holder, services: Services) -> dict[str, Any]:
    """The documents sent to the card, for its holder (authenticated by a holder proof)."""
    return {"card_id": holder.card.id, "documents": [
        documents.view(d, content=False) for d in services.holder_documents.for_card(holder.card)]}


@router.get("/cards/{card_id}/documents/{document_id}", response_model=DocumentView,
            responses=error_responses({**HOLDER_ERRORS, 404: "`card_not_found`, `document_not_found`",
                                       **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def get_document(document_id: str, holder: Holder, services: Services,
                 client: ClientAddress) -> dict[str, Any]:
    """One document with its JWE, for the card's holder; their wallet decrypts it."""
    found = services.holder_documents.get(holder.card, document_id)
    services.record_access("holder", "holder", "read", "identity_document", found.id,
                           "the holder opens a document sent to them", client=client)
    return documents.view(found, content=True)


@public.post("/claims/redeem", response_model=ClaimedCardView,
             responses=error_responses({**UNREADABLE_BODY, **RATE_LIMITED,
                                        404: "`claim_not_found` (also a code already redeemed)",
                                        409: "`card_not_live` (the card is revoked or ended), "
                                             "`claim_already_redeemed` (another redemption of the "
                                             "code won at the same moment)",
                                        422: "`malformed` (holder_jwk is not an Ed25519 public JWK), "
                                             "`bad_encryption_jwk` (encryption_jwk is not an OKP X25519 "
                                             "public JWK), `encryption_jwk_private` (it holds a private "
                                             "key), `invalid_input`",
                                        **CHAIN_DOWN}))
def redeem_card(body: CardRedeem, services: Services, client: ClientAddress) -> dict[str, Any]:
    """The holder receives the card, bound to their key, and its photo."""
    claimed = services.identity.claim(body.code, body.holder_jwk, body.encryption_jwk)
    services.record_access("holder", "holder", "redeem", "identity_card", claimed.card_id, client=client)
    return claimed.to_dict()


@router.post("/challenges", status_code=201, response_model=ChallengeView,
             responses=error_responses({**UNREADABLE_BODY, **AUTH_ERRORS,
                                        422: "`bad_audience`, `bad_claims`, `invalid_input`",
                                        **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def new_challenge(body: NewChallenge, key: Member, services: Services) -> dict[str, Any]:
    """A relying party's challenge; the holder's wallet answers it with a key-bound presentation."""
    challenge = services.identity.new_challenge(key.org_id, body.audience, body.claims,
                                                body.expires_in_seconds, photo=body.photo)
    return _challenge_view(challenge)


@public.get("/challenges/{challenge_id}", response_model=ChallengeView,
            responses=error_responses({**RATE_LIMITED, 404: "`challenge_not_found`",
                                       **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def get_challenge(challenge_id: str, services: Services) -> dict[str, Any]:
    """What the wallet needs to answer (it reads the challenge from a QR code or link)."""
    return _challenge_view(services.identity.challenge(challenge_id))


@public.post("/challenges/{challenge_id}/answer", status_code=204, response_class=Response,
             responses=error_responses({**UNREADABLE_BODY, **RATE_LIMITED, 404: "`challenge_not_found`",
                                        409: "`challenge_expired`, `challenge_used` (answered before)",
                                        413: "`photo_too_large` (a photo over 2 MiB)",
                                        422: "`invalid_input` (also photo_base64 that is not base64), "
                                             "`bad_photo` (not a JPEG, PNG or WebP portrait), "
                                             "`photo_not_asked` (a photo the challenge does not ask for)",
                                        **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def answer_challenge(challenge_id: str, body: ChallengeAnswer, services: Services) -> Response:
    """The holder's wallet answers a challenge it read from the relying party's QR code (with
    the card's portrait file, when the challenge asks for it); the relying party then asks
    for the verdict (POST /v1/identity/verify with no presentation, or an exam's check-in)."""
    services.identity.submit_answer(challenge_id, body.presentation, photo=_photo(body.photo_base64))
    return Response(status_code=204)


@router.post("/verify", response_model=RecognitionView, response_model_exclude_unset=True,
             responses=error_responses({**UNREADABLE_BODY, **AUTH_ERRORS,
                                        404: "`challenge_not_found` (also another organisation's "
                                             "challenge)",
                                        422: "`invalid_input` (also photo_base64 that is not base64)",
                                        **CHAIN_DOWN}))
def recognise(body: Recognise, key: Member, services: Services) -> dict[str, Any]:
    """Who answered the challenge, checked against the chain; the challenge is spent. With no
    presentation, the wallet's answer is checked, and with no photo the photo it sent."""
    result = services.identity.recognise(key.org_id, body.challenge_id, body.presentation,
                                         photo=_photo(body.photo_base64))
    return result.to_dict()
