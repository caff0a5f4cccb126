"""The signer seam: how a capability gets an organisation's keys without knowing where
they are kept (``ledger.keys.Keyring`` opens the encrypted keystores of a data directory;
tests may hand in keys they made)."""

from __future__ import annotations

from typing import Protocol

from eth_account.signers.local import LocalAccount

from ledger.keys.keystore import OrganisationKeys

__all__ = ["AccountSource", "KeySource"]


class AccountSource(Protocol):
    def account_for(self, org_id: str) -> LocalAccount:
        """The organisation's Ethereum account, which signs its transactions."""
        ...


class KeySource(AccountSource, Protocol):
    def keys_for(self, org_id: str) -> OrganisationKeys:
        """The organisation's unlocked keys (its account and its credential-signing key)."""
        ...
