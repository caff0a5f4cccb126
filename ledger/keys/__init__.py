"""Organisation keys: an Ethereum account key and an Ed25519 credential-signing key,
kept in keystore files encrypted at rest (see `ledger.keys.keystore`)."""

from ledger.keys.interfaces import AccountSource, KeySource
from ledger.keys.keyring import Keyring
from ledger.keys.keystore import (
    DEFAULT_SCRYPT_N,
    KeystoreInfo,
    OrganisationKeys,
    change_passphrase,
    clear_keystore_cache,
    create_keystore,
    ecc_backend,
    keystore_path,
    list_keystores,
    load_keystore,
    read_keystore_info,
    validate_org_id,
)

__all__ = [
    "DEFAULT_SCRYPT_N",
    "AccountSource",
    "KeySource",
    "Keyring",
    "KeystoreInfo",
    "OrganisationKeys",
    "change_passphrase",
    "clear_keystore_cache",
    "create_keystore",
    "ecc_backend",
    "keystore_path",
    "list_keystores",
    "load_keystore",
    "read_keystore_info",
    "validate_org_id",
]
