"""The organisations' keys of one data directory, unlocked on demand."""

from __future__ import annotations

from pathlib import Path

from eth_account.signers.local import LocalAccount

from ledger.keys.keystore import OrganisationKeys, load_keystore

__all__ = ["Keyring"]


class Keyring:
    """``KeySource`` over the keystores in `directory`, all under one passphrase (unlocked
    keystores are cached by ``load_keystore``; the passphrase is never shown)."""

    def __init__(self, directory: Path, passphrase: str) -> None:
        self.directory = directory
        self._passphrase = passphrase

    def keys_for(self, org_id: str) -> OrganisationKeys:
        return load_keystore(self.directory, org_id, self._passphrase)

    def account_for(self, org_id: str) -> LocalAccount:
        return self.keys_for(org_id).account

    def __repr__(self) -> str:
        return f"Keyring({str(self.directory)!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Keyring cannot be pickled: it holds a passphrase")
