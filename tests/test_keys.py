"""Organisation keystores: encryption at rest, errors, file safety, no leaks."""

from __future__ import annotations

import json
import logging
import os
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.backends import CoinCurveECCBackend, get_backend

from ledger.errors import ConfigError, InvalidInput, KeystoreError
from ledger.keys import (
    DEFAULT_SCRYPT_N,
    OrganisationKeys,
    change_passphrase,
    clear_keystore_cache,
    create_keystore,
    ecc_backend,
    keystore_path,
    list_keystores,
    load_keystore,
    read_keystore_info,
)

# Registers the anvil fixture for this module even before tests/conftest.py loads it.
pytest_plugins = ["tests.conftest_services"]

PASS = "correct horse battery staple"
FAST_N = 2**14  # real scrypt, lower cost, so the suite stays quick


def _private_hexes(keys: OrganisationKeys) -> list[str]:
    ed_raw = keys.ed25519_private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return [keys.account.key.hex(), ed_raw.hex()]


def _no_private(text: str, keys: OrganisationKeys) -> None:
    lowered = text.lower()
    for secret in _private_hexes(keys):
        assert secret.lower() not in lowered
        assert secret.lower().removeprefix("0x") not in lowered


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_keystore_cache()
    yield
    clear_keystore_cache()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "keystore"


@pytest.fixture
def created(store: Path) -> OrganisationKeys:
    return create_keystore(store, "school-1", PASS, scrypt_n=FAST_N)


# --------------------------------------------------------------------------- backend


def test_eth_keys_uses_coincurve_backend(created: OrganisationKeys):
    assert isinstance(get_backend(), CoinCurveECCBackend)
    assert isinstance(ecc_backend(), CoinCurveECCBackend)
    assert isinstance(created.account._key_obj.backend, CoinCurveECCBackend)


# --------------------------------------------------------------------------- round trip


def test_round_trip(store: Path, created: OrganisationKeys):
    loaded = load_keystore(store, "school-1", PASS, use_cache=False)
    assert loaded.org_id == "school-1"
    assert loaded.address == created.address == created.account.address
    assert loaded.account.key == created.account.key
    assert loaded.ed25519_public_bytes == created.ed25519_public_bytes
    assert len(loaded.ed25519_public_bytes) == 32

    # The Ed25519 key signs credentials that verify with the stored public key.
    message = b"credential payload"
    signature = loaded.sign_credential_bytes(message)
    created.ed25519_private.public_key().verify(signature, message)

    # The Ethereum key signs for the stored address.
    signed = loaded.account.sign_message(encode_defunct(text="hello"))
    assert Account.recover_message(encode_defunct(text="hello"), signature=signed.signature) == (
        created.address
    )


def test_file_layout_and_standard_v3_keystore(store: Path, created: OrganisationKeys):
    doc = json.loads(keystore_path(store, "school-1").read_text())
    assert doc["org_id"] == "school-1"
    assert doc["address"] == created.address
    assert doc["ed25519_public_key"] == created.ed25519_public_bytes.hex()
    assert doc["created_at"].endswith("Z")
    assert doc["ethereum"]["version"] == 3
    assert doc["ethereum"]["crypto"]["kdf"] == "scrypt"
    assert doc["ed25519"]["cipher"] == "aes-256-gcm"
    assert doc["ed25519"]["kdf"] == "scrypt"
    assert len(bytes.fromhex(doc["ed25519"]["kdfparams"]["salt"])) == 16
    assert len(bytes.fromhex(doc["ed25519"]["nonce"])) == 12
    # Any Ethereum tool can open the v3 part with the passphrase.
    assert bytes(Account.decrypt(doc["ethereum"], PASS)) == created.account.key


def test_default_cost_is_eth_account_default(store: Path):
    keys = create_keystore(store, "bureau", PASS)
    doc = json.loads(keystore_path(store, "bureau").read_text())
    eth_params = doc["ethereum"]["crypto"]["kdfparams"]
    assert DEFAULT_SCRYPT_N == 2**18
    assert eth_params["n"] == 2**18
    ed_params = doc["ed25519"]["kdfparams"]
    assert (ed_params["n"], ed_params["r"], ed_params["p"]) == (2**18, 8, 1)
    assert load_keystore(store, "bureau", PASS).address == keys.address


def test_passphrase_from_settings(store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("EDULEDGER_KEYSTORE_PASSPHRASE", raising=False)
    monkeypatch.delenv("EDULEDGER_KEYSTORE_PASSPHRASE_FILE", raising=False)
    with pytest.raises(ConfigError):
        create_keystore(store, "partner-1", scrypt_n=FAST_N)

    secret_file = tmp_path / "passphrase"
    secret_file.write_text("from a file\n")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE_FILE", str(secret_file))
    keys = create_keystore(store, "partner-1", scrypt_n=FAST_N)
    assert load_keystore(store, "partner-1", "from a file").address == keys.address

    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "wrong one")
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        load_keystore(store, "partner-1")


def test_empty_passphrase_rejected(store: Path):
    with pytest.raises(InvalidInput):
        create_keystore(store, "school-2", "", scrypt_n=FAST_N)


# --------------------------------------------------------------------------- errors


def test_wrong_passphrase(store: Path, created: OrganisationKeys):
    with pytest.raises(KeystoreError) as info:
        load_keystore(store, "school-1", "not the passphrase")
    assert str(info.value) == "wrong passphrase for keystore of school-1"
    assert info.value.code == "wrong_passphrase"
    assert "not the passphrase" not in repr(info.value.to_dict())


def test_wrong_passphrase_after_cached_load(store: Path, created: OrganisationKeys):
    first = load_keystore(store, "school-1", PASS)
    assert load_keystore(store, "school-1", PASS) is first  # cached
    with pytest.raises(KeystoreError, match="^wrong passphrase for keystore of school-1$"):
        load_keystore(store, "school-1", PASS + "!")


def test_missing_file(store: Path):
    with pytest.raises(KeystoreError) as info:
        load_keystore(store, "nobody", PASS)
    assert str(keystore_path(store, "nobody")) in str(info.value)
    assert info.value.code == "keystore_not_found"


@pytest.mark.parametrize(
    "content",
    ["{not json", "", "[]", '{"format": "something else"}', "\x00\x01\x02"],
    ids=["broken-json", "empty", "list", "foreign", "binary"],
)
def test_corrupt_file(store: Path, created: OrganisationKeys, content: str):
    path = keystore_path(store, "school-1")
    path.write_text(content)
    with pytest.raises(KeystoreError) as info:
        load_keystore(store, "school-1", PASS)
    assert str(path) in str(info.value)
    with pytest.raises(KeystoreError, match=str(path)):
        list_keystores(store)


def test_truncated_file(store: Path, created: OrganisationKeys):
    path = keystore_path(store, "school-1")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(KeystoreError, match="corrupt"):
        load_keystore(store, "school-1", PASS)


def test_tampered_ed25519_key_detected(store: Path, created: OrganisationKeys):
    path = keystore_path(store, "school-1")
    doc = json.loads(path.read_text())
    ct = bytearray(bytes.fromhex(doc["ed25519"]["ciphertext"]))
    ct[0] ^= 1
    doc["ed25519"]["ciphertext"] = ct.hex()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="corrupt"):
        load_keystore(store, "school-1", PASS)


def test_swapped_public_fields_detected(store: Path, created: OrganisationKeys):
    other = create_keystore(store, "school-2", PASS, scrypt_n=FAST_N)
    path = keystore_path(store, "school-1")
    doc = json.loads(path.read_text())
    doc["address"] = other.address
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="does not match the stored address"):
        load_keystore(store, "school-1", PASS)


def test_file_of_another_org_detected(store: Path, created: OrganisationKeys):
    src = keystore_path(store, "school-1")
    dst = keystore_path(store, "school-9")
    dst.write_bytes(src.read_bytes())
    with pytest.raises(KeystoreError, match="belongs to 'school-1'"):
        load_keystore(store, "school-9", PASS)


def test_absurd_scrypt_cost_refused(store: Path, created: OrganisationKeys):
    path = keystore_path(store, "school-1")
    doc = json.loads(path.read_text())
    doc["ed25519"]["kdfparams"]["n"] = 2**30
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="scrypt parameters"):
        load_keystore(store, "school-1", PASS)


def test_existing_keystore_not_overwritten(store: Path, created: OrganisationKeys):
    before = keystore_path(store, "school-1").read_bytes()
    with pytest.raises(KeystoreError, match="already exists") as info:
        create_keystore(store, "school-1", PASS, scrypt_n=FAST_N)
    assert info.value.code == "keystore_exists"
    assert keystore_path(store, "school-1").read_bytes() == before


@pytest.mark.parametrize("org_id", ["", "../evil", "a/b", ".hidden", "x" * 200, "a..b"])
def test_invalid_org_id(store: Path, org_id: str):
    with pytest.raises(InvalidInput):
        create_keystore(store, org_id, PASS, scrypt_n=FAST_N)
    assert not store.exists() or not any(store.iterdir())


# --------------------------------------------------------------------------- files


def test_file_mode_0600_and_dir_0700(store: Path, created: OrganisationKeys):
    mode = stat.S_IMODE(os.stat(keystore_path(store, "school-1")).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700


def test_file_mode_0600_despite_permissive_umask(store: Path):
    old = os.umask(0)
    try:
        create_keystore(store, "school-3", PASS, scrypt_n=FAST_N)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(keystore_path(store, "school-3")).st_mode) == 0o600


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_atomic_write_leaves_nothing_on_failure(
    store: Path, monkeypatch: pytest.MonkeyPatch, failing: str
):
    store.mkdir(mode=0o700)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(KeystoreError, match="cannot write keystore file"):
        create_keystore(store, "school-4", PASS, scrypt_n=FAST_N)
    monkeypatch.undo()
    assert list(store.iterdir()) == []  # neither the keystore nor a temp file
    with pytest.raises(KeystoreError, match="no keystore file"):
        load_keystore(store, "school-4", PASS)


def test_failed_rewrite_keeps_old_file(
    store: Path, created: OrganisationKeys, monkeypatch: pytest.MonkeyPatch
):
    path = keystore_path(store, "school-1")
    before = path.read_bytes()

    real_replace = os.replace

    def boom(src, dst, *args, **kwargs):
        # Half of the new file is on disk when the "crash" happens.
        assert Path(src).read_bytes()
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeystoreError):
        change_passphrase(store, "school-1", PASS, "new passphrase", scrypt_n=FAST_N)
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_bytes() == before
    assert sorted(p.name for p in store.iterdir()) == [path.name]
    assert load_keystore(store, "school-1", PASS, use_cache=False).address == created.address


def test_change_passphrase(store: Path, created: OrganisationKeys):
    created_at = read_keystore_info(store, "school-1").created_at
    change_passphrase(store, "school-1", PASS, "new passphrase", scrypt_n=FAST_N)
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        load_keystore(store, "school-1", PASS)
    loaded = load_keystore(store, "school-1", "new passphrase")
    assert loaded.account.key == created.account.key
    assert loaded.ed25519_public_bytes == created.ed25519_public_bytes
    assert read_keystore_info(store, "school-1").created_at == created_at
    assert stat.S_IMODE(os.stat(keystore_path(store, "school-1")).st_mode) == 0o600


def test_list_keystores(store: Path, created: OrganisationKeys):
    assert list_keystores(store.parent / "absent") == []
    other = create_keystore(store, "bureau", PASS, scrypt_n=FAST_N)
    (store / "notes.txt").write_text("not a keystore")
    infos = list_keystores(store)
    assert [i.org_id for i in infos] == ["bureau", "school-1"]
    assert infos[0].address == other.address
    assert infos[1].ed25519_public_bytes == created.ed25519_public_bytes
    assert infos[1].path == keystore_path(store, "school-1")


# --------------------------------------------------------------------------- no leaks


def test_repr_and_str_do_not_leak(created: OrganisationKeys):
    for text in (repr(created), str(created), f"{created}", f"{created!r}"):
        _no_private(text, created)
        assert "school-1" in text
        assert created.address in text
        assert created.ed25519_public_bytes.hex() in text


def test_logging_does_not_leak(created: OrganisationKeys, caplog: pytest.LogCaptureFixture):
    logger = logging.getLogger("eduledger.test")
    with caplog.at_level(logging.DEBUG, logger="eduledger.test"):
        logger.info("keys %s", created)
        logger.info("keys %r", created)
        logger.info("keys %s", [created])
        logger.info("keys %s", {"org": created})
    assert caplog.text
    _no_private(caplog.text, created)


def test_keystore_file_does_not_contain_private_keys(store: Path, created: OrganisationKeys):
    _no_private(keystore_path(store, "school-1").read_text(), created)


def test_errors_do_not_leak(store: Path, created: OrganisationKeys):
    path = keystore_path(store, "school-1")
    doc = json.loads(path.read_text())
    doc["address"] = "0x" + "00" * 20
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError) as info:
        load_keystore(store, "school-1", PASS)
    text = f"{info.value} {info.value!r} {info.value.to_dict()}"
    _no_private(text, created)
    assert PASS not in text


def test_not_picklable(created: OrganisationKeys):
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(created)


# --------------------------------------------------------------------------- real node


@pytest.mark.anvil
def test_org_account_transacts_on_anvil(store: Path, created: OrganisationKeys, anvil_url: str):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil_url))
    assert w3.eth.chain_id == 31337
    keys = load_keystore(store, "school-1", PASS)

    funder = w3.eth.accounts[0]
    fund = w3.eth.send_transaction(
        {"from": funder, "to": keys.address, "value": Web3.to_wei(1, "ether")}
    )
    assert w3.eth.wait_for_transaction_receipt(fund, timeout=30)["status"] == 1

    fee = w3.eth.gas_price * 2
    tx = {
        "chainId": 31337,
        "nonce": w3.eth.get_transaction_count(keys.address),
        "to": funder,
        "value": Web3.to_wei(0.1, "ether"),
        "gas": 21000,
        "maxFeePerGas": fee,
        "maxPriorityFeePerGas": 1,
        "type": 2,
    }
    signed = keys.account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1
    assert receipt["from"] == keys.address
