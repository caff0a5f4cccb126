"""Where a network's contracts live and which organisation is which member.

Written once by ``network init`` as ``<data dir>/network.json``, last of all: a data
directory without it was never initialised, whatever else it holds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict

from ledger.consortium.names import bilingual_name
from ledger.errors import ConfigError, NotFound
from ledger.fileio import atomic_write

__all__ = ["DEPLOYMENT_FILE", "Deployment", "MemberRecord"]

DEPLOYMENT_FILE = "network.json"


class MemberRecord(TypedDict):
    """An organisation as admitted at set-up (the chain holds its current role and status)."""

    member_id: int
    name: str
    role: str
    # The English name from the consortium definition (absent in a network.json written before)
    name_en: NotRequired[str]
    account: str
    signing_key: str


@dataclass
class Deployment:
    chain_id: int
    consortium: str
    anchor_registry: str
    deployed_block: int
    organisations: dict[str, MemberRecord] = field(default_factory=dict)
    # The IdentityRegistry; None in a network.json written before it existed.
    identity_registry: str | None = None

    def save(self, data_dir: Path) -> None:
        atomic_write(data_dir / DEPLOYMENT_FILE,
                     json.dumps(asdict(self), indent=2, ensure_ascii=False).encode("utf-8"),
                     mode=0o644)

    @classmethod
    def load(cls, data_dir: Path) -> Deployment:
        path = data_dir / DEPLOYMENT_FILE
        if not path.exists():
            raise NotFound(f"no network deployed in {data_dir} (run: eduledger network init)",
                           code="no_network")
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid deployment record: {exc}") from None

    def member(self, org_id: str) -> MemberRecord | None:
        return self.organisations.get(org_id)

    def names_of(self, member_id: int, name: str) -> tuple[str, str]:
        """(Chinese, English) name of a member whose name on chain is `name`."""
        org = self.org_of_member(member_id)
        return bilingual_name(name, self.organisations[org].get("name_en") if org else None)

    def org_of_member(self, member_id: int) -> str | None:
        return next((org for org, info in self.organisations.items() if info["member_id"] == member_id),
                    None)
