"""Issuer identifiers, derived from the chain.

`did:eduledger:<chain id>:<consortium address>:<member id>` names a member of one
consortium; its DID document lists the member's credential-signing keys as registered on
chain. A key id is the DID plus the key itself, so a verifier needs nothing but the chain
to find the key and its validity.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Engine
from sqlmodel import select

from ledger.chain import ChainAPI
from ledger.consortium.deployment import Deployment
from ledger.contracts.bindings import ConsortiumContract
from ledger.credentials.jose import ed25519_jwk
from ledger.errors import InvalidInput, NotFound
from ledger.indexer import Indexer
from ledger.indexer.models import ChainEvent
from ledger.store import session_scope

METHOD = "eduledger"
_DID = re.compile(r"^did:eduledger:(\d{1,12}):(0x[0-9a-f]{40}):(\d{1,9})$")
_KID = re.compile(r"^(did:eduledger:[^#]+)#ed25519-([0-9a-f]{64})$")


def issuer_did(chain_id: int, consortium: str, member_id: int) -> str:
    return f"did:{METHOD}:{chain_id}:{consortium.lower()}:{member_id}"


def parse_did(did: str) -> tuple[int, str, int]:
    match = _DID.match(did)
    if not match:
        raise InvalidInput(f"not an eduledger DID: {did[:120]!r}", code="bad_did")
    return int(match[1]), match[2], int(match[3])


def key_id(did: str, public_key: bytes) -> str:
    return f"{did}#ed25519-{public_key.hex()}"


def parse_key_id(kid: Any) -> tuple[str, bytes]:
    match = _KID.match(kid) if isinstance(kid, str) else None
    if not match:
        raise InvalidInput("the credential's key id is not an eduledger key id", code="issuer_unknown")
    return match[1], bytes.fromhex(match[2])


def did_document(did: str, name: str, keys: list[dict[str, Any]]) -> dict[str, Any]:
    """keys: [{"public_key": bytes, "valid_from_block": int, "valid_until_block": int | None}]"""
    methods = []
    for key in keys:
        methods.append({
            "id": key_id(did, key["public_key"]),
            "type": "JsonWebKey",
            "controller": did,
            "publicKeyJwk": ed25519_jwk(key["public_key"]),
            "validFromBlock": key["valid_from_block"],
            "validUntilBlock": key["valid_until_block"],
        })
    current = [m["id"] for m, k in zip(methods, keys, strict=True) if k["valid_until_block"] is None]
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/jwk/v1"],
        "id": did,
        "name": name,
        "verificationMethod": methods,
        "assertionMethod": current,
    }


def member_did_document(did: str, *, client: ChainAPI, deployment: Deployment | None, engine: Engine,
                        indexer: Indexer) -> dict[str, Any]:
    """The DID document of a member of this node's consortium, read from the chain.

    Which keys a member ever registered comes from the event index (a copy of the chain's
    SigningKeyAdded events); each key's validity is read from the contract itself.
    """
    chain_id, consortium_address, member_id = parse_did(did)
    if (deployment is None or chain_id != client.chain_id
            or consortium_address != deployment.consortium.lower()):
        raise NotFound(f"{did} is not a member of this network", code="did_not_found")
    consortium = ConsortiumContract.at(client, deployment.consortium)
    if not 1 <= member_id <= consortium.member_count():
        raise NotFound(f"{did} is not a member of this network", code="did_not_found")
    member = consortium.member(member_id)
    indexer.run_once()
    with session_scope(engine) as session:
        events = session.exec(select(ChainEvent).where(
            ChainEvent.contract == deployment.consortium.lower(),
            ChainEvent.event == "SigningKeyAdded").order_by(ChainEvent.block_number)  # type: ignore[arg-type]
        ).all()
    keys = []
    for event in events:
        args = json.loads(event.args_json)
        if int(args.get("memberId", 0)) != member_id:
            continue
        info = consortium.key_info(bytes.fromhex(args["key"][2:]))
        keys.append({"public_key": info.key, "valid_from_block": info.valid_from,
                     "valid_until_block": info.valid_until})
    document = did_document(did, member.name, keys)
    document["role"] = member.role.name.lower()
    document["status"] = member.status.name.lower()
    return document
