"""Person keys, personal-data encryption and portrait checks of identity cards."""

from __future__ import annotations

import hashlib
import io
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from ledger.errors import ConfigError, InvalidInput, KeystoreError, TooLarge
from ledger.identity.personal import NodeSecrets, normalise_number
from ledger.identity.photos import MAX_PHOTO_BYTES, check_photo, portrait_commitment
from ledger.merkle import keccak256

FAST_N = 2**10
ID = "11010519491231002X"


def secrets_in(directory: Path, passphrase: str = "secret passphrase") -> NodeSecrets:
    directory.mkdir(parents=True, exist_ok=True)
    return NodeSecrets(directory, passphrase, scrypt_n=FAST_N)


@pytest.fixture
def node_secrets(tmp_path: Path) -> NodeSecrets:
    return secrets_in(tmp_path)


# One node's secrets for the property tests (hypothesis runs a test many times in one fixture).
_PROPERTY_SECRETS = secrets_in(Path(tempfile.mkdtemp(prefix="eduledger-personal-")))


def image(fmt: str, size: tuple[int, int] = (120, 160)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, fmt)
    return out.getvalue()


# -- person keys ----------------------------------------------------------------------------------


def test_a_person_key_is_keyed_stable_and_says_nothing_of_the_number(node_secrets: NodeSecrets,
                                                                     tmp_path: Path) -> None:
    key = node_secrets.person_key("national_id", ID)
    assert len(key) == 64 and ID not in key
    assert node_secrets.person_key("national_id", " 11010519491231002x ") == key  # normalised
    assert node_secrets.person_key("national_id", "１１０１０５１９４９１２３１００２Ｘ") == key  # full-width
    assert node_secrets.person_key("student_number", ID) != key  # kinds are apart
    # The same secrets file gives the same key; another node's secret another one.
    assert secrets_in(tmp_path).person_key("national_id", ID) == key
    assert secrets_in(tmp_path / "other").person_key("national_id", ID) != key
    assert stat.S_IMODE((tmp_path / "identity-secrets.json").stat().st_mode) == 0o600
    assert b"secret passphrase" not in (tmp_path / "identity-secrets.json").read_bytes()


def test_the_secrets_open_with_their_passphrase_only(node_secrets: NodeSecrets, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError) as wrong:
        NodeSecrets(tmp_path, "another passphrase", scrypt_n=FAST_N)
    assert wrong.value.code == "wrong_passphrase"
    (tmp_path / "identity-secrets.json").write_text("{}")
    with pytest.raises(ConfigError):
        NodeSecrets(tmp_path, "secret passphrase", scrypt_n=FAST_N)


@given(st.text(min_size=1, max_size=40).filter(lambda s: "".join(s.split())))
def test_numbers_normalise_idempotently_or_are_refused(text: str) -> None:
    try:
        once = normalise_number(text)
    except InvalidInput:
        return
    assert normalise_number(once) == once and " " not in once and once == once.upper()


def test_bad_numbers_and_kinds_are_refused(node_secrets: NodeSecrets) -> None:
    for bad in ("", "   ", "x" * 65, "a\x00b"):
        with pytest.raises(InvalidInput):
            node_secrets.person_key("national_id", bad)
    with pytest.raises(InvalidInput):
        node_secrets.person_key("passport", ID)


# -- personal data ----------------------------------------------------------------------------------


@given(st.binary(max_size=2000))
def test_personal_fields_round_trip_under_their_own_key(plaintext: bytes) -> None:
    cipher = _PROPERTY_SECRETS.cipher()
    wrapped = cipher.new_wrapped_key("person-1")
    sealed = cipher.encrypt(wrapped, "person-1", "card.name", plaintext)
    assert cipher.decrypt(wrapped, "person-1", "card.name", sealed) == plaintext
    if len(plaintext) > 8:
        assert plaintext not in sealed


def test_a_ciphertext_opens_only_where_it_belongs(node_secrets: NodeSecrets) -> None:
    cipher = node_secrets.cipher()
    wrapped = cipher.new_wrapped_key("person-1")
    sealed = cipher.encrypt(wrapped, "person-1", "card.name", "张三".encode())
    for person, what, key in (("person-2", "card.name", wrapped), ("person-1", "card.number", wrapped),
                              ("person-1", "card.name", cipher.new_wrapped_key("person-1"))):
        with pytest.raises(ConfigError) as refused:
            cipher.decrypt(key, person, what, sealed)
        assert refused.value.code == "personal_data_unreadable"
    # Erasure: without the wrapped key nothing opens; with another node's master key neither.
    other = secrets_in(node_secrets.path.parent / "elsewhere")
    with pytest.raises(ConfigError):
        other.cipher().decrypt(wrapped, "person-1", "card.name", sealed)


# -- photos -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "media"),
                         [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_photos_of_the_three_formats_pass(fmt: str, media: str) -> None:
    assert check_photo(image(fmt)) == media


def test_bad_photos_are_refused_with_a_reason() -> None:
    jpeg = image("JPEG")
    cases = [(b"", "bad_photo"), (b"not an image at all", "bad_photo"), (jpeg[: len(jpeg) // 2], "bad_photo"),
             (image("GIF"), "bad_photo"), (image("PNG", (20, 20)), "bad_photo"),
             (b"\xff\xd8" + b"\x00" * (MAX_PHOTO_BYTES + 1), "photo_too_large")]
    for bad, code in cases:
        with pytest.raises(InvalidInput) as refused:
            check_photo(bad)
        assert refused.value.code == code
    with pytest.raises(TooLarge):
        check_photo(b"\x00" * (MAX_PHOTO_BYTES + 1))


def test_a_decompression_bomb_is_not_decoded() -> None:
    bomb = io.BytesIO()
    Image.new("1", (30000, 30000)).save(bomb, "PNG")  # tiny file, 900 megapixels
    with pytest.raises(InvalidInput) as refused:
        check_photo(bomb.getvalue())
    assert refused.value.code == "bad_photo"


def test_the_portrait_commitment_is_salted() -> None:
    photo = image("JPEG")
    a, b = portrait_commitment(b"\x01" * 32, photo), portrait_commitment(b"\x02" * 32, photo)
    assert a != b and len(a) == 32
    assert a == keccak256(b"\x01" * 32 + hashlib.sha256(photo).digest())
    with pytest.raises(InvalidInput):
        portrait_commitment(b"short", photo)
