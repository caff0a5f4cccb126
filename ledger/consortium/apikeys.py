"""Organisation API keys: random secrets handed out once, stored only as hashes.

The keys are 256-bit random tokens, so a plain SHA-256 is the right hash: there is no
password to stretch, and lookups stay one indexed query.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from sqlmodel import select

from ledger.consortium.definition import ConsortiumDefinition
from ledger.consortium.models import ApiKey
from ledger.errors import PermissionDenied
from ledger.fileio import atomic_write
from ledger.settings import Settings
from ledger.store import make_engine, migrate, session_scope

KEY_PREFIX = "edk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key(org_id: str) -> str:
    return f"{KEY_PREFIX}{org_id}_{secrets.token_urlsafe(32)}"


def issue_api_keys(settings: Settings, definition: ConsortiumDefinition) -> Path:
    """One key per organisation: hashes into SQL, plaintext into api-keys.json (0600)."""
    engine = make_engine(settings.resolved_database_url())
    migrate(engine)
    plain = {org.id: new_key(org.id) for org in definition.organisations}
    with session_scope(engine) as session:
        for org in definition.organisations:
            session.add(ApiKey(org_id=org.id, role=org.role, key_hash=hash_key(plain[org.id]),
                               label="initial"))
    path = settings.data_dir / "api-keys.json"
    atomic_write(path, json.dumps(plain, indent=2).encode("utf-8"))
    engine.dispose()
    return path


def authenticate(engine: object, key: str) -> ApiKey:
    """The live API key row for a presented key, or PermissionDenied."""
    with session_scope(engine) as session:  # type: ignore[arg-type]
        row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or row.revoked_at is not None:
        raise PermissionDenied("unknown or revoked API key", code="bad_api_key")
    return row
