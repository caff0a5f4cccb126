"""SD-JWT (RFC 9901) issuance, selection, key binding and verification.

Published vectors are copied verbatim from their sources, named at each constant:

* RFC 9901 "Selective Disclosure for JSON Web Tokens" (November 2025), whose text is
  draft-ietf-oauth-selective-disclosure-jwt-22
  (https://www.rfc-editor.org/rfc/rfc9901; github.com/oauth-wg/oauth-selective-disclosure-jwt,
  draft-ietf-oauth-selective-disclosure-jwt-22/draft-ietf-oauth-selective-disclosure-jwt.txt).
  The RFC wraps long strings at 72 columns; they are re-joined here.
* draft-ietf-oauth-selective-disclosure-jwt-07, section 5.1.1.2 (a digest example that later
  drafts replaced).
* RFC 8037 appendix A (Ed25519 JWK and JWS).
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.credentials import jose
from ledger.credentials import sdjwt as sd
from ledger.credentials.jose import SdJwtError, b64url, b64url_decode, sign_jws
from ledger.credentials.sdjwt import (
    add_key_binding,
    disclosure_digest,
    disclosure_paths,
    issue,
    issuer_jwt_hash,
    parse,
    select,
    verify,
)
from ledger.errors import InvalidInput
from ledger.merkle import keccak256

B64URL_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"

ISSUER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
HOLDER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
HOLDER_JWK = jose.ed25519_jwk(HOLDER_KEY.public_key())
NOW = 1_750_000_000


def issuer_key(header: dict[str, Any], payload: dict[str, Any]) -> Any:
    return ISSUER_KEY.public_key()


def code_of(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(SdJwtError) as info:
        fn(*args, **kwargs)
    return info.value.code


def transcript(student: str = "2021000001") -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "TranscriptCredential"],
        "issuer": "did:web:uni.example",
        "validFrom": "2025-07-01T00:00:00Z",
        "credentialSubject": {
            "name": "Zhang Wei 张伟",
            "studentId": student,
            "program": "Computer Science",
            "gpa": 3.71,
            "graduated": True,
            "minor": None,
            "courses": [{"code": "CS101", "grade": "A"}, {"code": "MA201", "grade": "B+"}],
            "awards": [],
            "extra": {},
        },
    }


# --- published vectors ---------------------------------------------------------------

# RFC 9901 section 4.2.1 (disclosure) and 4.2.3 (its digest).
RFC_FAMILY_NAME = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
RFC_FAMILY_NAME_DIGEST = "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"
# RFC 9901 section 4.2.1: the same claim encoded differently (\u00f6 escape, no white
# space, newlines) - valid, and each with its own digest.
RFC_FAMILY_NAME_VARIANTS = [
    "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNXHUwMGY2Yml1cyJd",
    "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsImZhbWlseV9uYW1lIiwiTcO2Yml1cyJd",
    "WwoiXzI2YmM0TFQtYWM2cTJLSTZjQlc1ZXMiLAoiZmFtaWx5X25hbWUiLAoiTcO2Yml1cyIKXQ",
]
# RFC 9901 section 4.2.2 (array element disclosure) and 4.2.4.2 (its digest).
RFC_FR = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0"
RFC_FR_DIGEST = "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"
# draft-ietf-oauth-selective-disclosure-jwt-07 section 5.1.1.2. (The brief quoted this
# digest with "U8b"; the published and computed value has "U7b".)
DRAFT07_DISCLOSURE = "WyI2cU1RdlJMNWhhaiIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
DRAFT07_DIGEST = "uutlBuYeMDyjLLTpf6Jxi7yNkEF35jdyWMn9U7b_RYY"

# RFC 9901 section 5.1: (claim, disclosure, SHA-256 hash, contents).
RFC_5_1_DISCLOSURES = [
    (
        "given_name",
        "WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3IiwgImdpdmVuX25hbWUiLCAiSm9obiJd",
        "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4",
        ["2GLC42sKQveCfGfryNRN9w", "given_name", "John"],
    ),
    (
        "family_name",
        "WyJlbHVWNU9nM2dTTklJOEVZbnN4QV9BIiwgImZhbWlseV9uYW1lIiwgIkRvZSJd",
        "TGf4oLbgwd5JQaHyKVQZU9UdGE0w5rtDsrZzfUaomLo",
        ["eluV5Og3gSNII8EYnsxA_A", "family_name", "Doe"],
    ),
    (
        "email",
        "WyI2SWo3dE0tYTVpVlBHYm9TNXRtdlZBIiwgImVtYWlsIiwgImpvaG5kb2VAZXhhbXBsZS5jb20iXQ",
        "JzYjH4svliH0R3PyEMfeZu6Jt69u5qehZo7F7EPYlSE",
        ["6Ij7tM-a5iVPGboS5tmvVA", "email", "johndoe@example.com"],
    ),
    (
        "phone_number",
        "WyJlSThaV205UW5LUHBOUGVOZW5IZGhRIiwgInBob25lX251bWJlciIsICIrMS0yMDItNTU1LTAxMDEiXQ",
        "PorFbpKuVu6xymJagvkFsFXAbRoc2JGlAUA2BA4o7cI",
        ["eI8ZWm9QnKPpNPeNenHdhQ", "phone_number", "+1-202-555-0101"],
    ),
    (
        "phone_number_verified",
        "WyJRZ19PNjR6cUF4ZTQxMmExMDhpcm9BIiwgInBob25lX251bWJlcl92ZXJpZmllZCIsIHRydWVd",
        "XQ_3kPKt1XyX7KANkqVR6yZ2Va5NrPIvPYbyMvRKBMM",
        ["Qg_O64zqAxe412a108iroA", "phone_number_verified", True],
    ),
    (
        "address",
        "WyJBSngtMDk1VlBycFR0TjRRTU9xUk9BIiwgImFkZHJlc3MiLCB7InN0cmVl"
        "dF9hZGRyZXNzIjogIjEyMyBNYWluIFN0IiwgImxvY2FsaXR5IjogIkFueXRv"
        "d24iLCAicmVnaW9uIjogIkFueXN0YXRlIiwgImNvdW50cnkiOiAiVVMifV0",
        "XzFrzwscM6Gn6CJDc6vVK8BkMnfG8vOSKfpPIZdAfdE",
        [
            "AJx-095VPrpTtN4QMOqROA",
            "address",
            {"street_address": "123 Main St", "locality": "Anytown", "region": "Anystate", "country": "US"},
        ],
    ),
    (
        "birthdate",
        "WyJQYzMzSk0yTGNoY1VfbEhnZ3ZfdWZRIiwgImJpcnRoZGF0ZSIsICIxOTQwLTAxLTAxIl0",
        "gbOsI4Edq2x2Kw-w5wPEzakob9hV1cRD0ATN3oQL9JM",
        ["Pc33JM2LchcU_lHggv_ufQ", "birthdate", "1940-01-01"],
    ),
    (
        "updated_at",
        "WyJHMDJOU3JRZmpGWFE3SW8wOXN5YWpBIiwgInVwZGF0ZWRfYXQiLCAxNTcwMDAwMDAwXQ",
        "CrQe7S5kqBAHt-nMYXgc6bdt2SH5aTY1sU_M-PgkjPI",
        ["G02NSrQfjFXQ7Io09syajA", "updated_at", 1570000000],
    ),
    (
        None,
        "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIlVTIl0",
        "pFndjkZ_VCzmyTa6UjlZo3dh-ko8aIKQc9DlGzhaVYo",
        ["lklxF5jMYlGTPUovMNIvCA", "US"],
    ),
    (
        None,
        "WyJuUHVvUW5rUkZxM0JJZUFtN0FuWEZBIiwgIkRFIl0",
        "7Cf6JkPudry3lcbwHgeZ8khAv1U1OSlerP0VkBJrWZ0",
        ["nPuoQnkRFq3BIeAm7AnXFA", "DE"],
    ),
]
# RFC 9901 section 5.1: the Issuer-signed JWT (ES256, "typ": "example+sd-jwt").
RFC_5_1_JWT = (
    "eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImV4YW1wbGUrc2Qtand0In0.eyJfc2QiOiBb"
    "IkNyUWU3UzVrcUJBSHQtbk1ZWGdjNmJkdDJTSDVhVFkxc1VfTS1QZ2tqUEkiLCAiSnpZ"
    "akg0c3ZsaUgwUjNQeUVNZmVadTZKdDY5dTVxZWhabzdGN0VQWWxTRSIsICJQb3JGYnBL"
    "dVZ1Nnh5bUphZ3ZrRnNGWEFiUm9jMkpHbEFVQTJCQTRvN2NJIiwgIlRHZjRvTGJnd2Q1"
    "SlFhSHlLVlFaVTlVZEdFMHc1cnREc3JaemZVYW9tTG8iLCAiWFFfM2tQS3QxWHlYN0tB"
    "TmtxVlI2eVoyVmE1TnJQSXZQWWJ5TXZSS0JNTSIsICJYekZyendzY002R242Q0pEYzZ2"
    "Vks4QmtNbmZHOHZPU0tmcFBJWmRBZmRFIiwgImdiT3NJNEVkcTJ4Mkt3LXc1d1BFemFr"
    "b2I5aFYxY1JEMEFUTjNvUUw5Sk0iLCAianN1OXlWdWx3UVFsaEZsTV8zSmx6TWFTRnpn"
    "bGhRRzBEcGZheVF3TFVLNCJdLCAiaXNzIjogImh0dHBzOi8vaXNzdWVyLmV4YW1wbGUu"
    "Y29tIiwgImlhdCI6IDE2ODMwMDAwMDAsICJleHAiOiAxODgzMDAwMDAwLCAic3ViIjog"
    "InVzZXJfNDIiLCAibmF0aW9uYWxpdGllcyI6IFt7Ii4uLiI6ICJwRm5kamtaX1ZDem15"
    "VGE2VWpsWm8zZGgta284YUlLUWM5RGxHemhhVllvIn0sIHsiLi4uIjogIjdDZjZKa1B1"
    "ZHJ5M2xjYndIZ2VaOGtoQXYxVTFPU2xlclAwVmtCSnJXWjAifV0sICJfc2RfYWxnIjog"
    "InNoYS0yNTYiLCAiY25mIjogeyJqd2siOiB7Imt0eSI6ICJFQyIsICJjcnYiOiAiUC0y"
    "NTYiLCAieCI6ICJUQ0FFUjE5WnZ1M09IRjRqNFc0dmZTVm9ISVAxSUxpbERsczd2Q2VH"
    "ZW1jIiwgInkiOiAiWnhqaVdXYlpNUUdIVldLVlE0aGJTSWlyc1ZmdWVjQ0U2dDRqVDlG"
    "MkhaUSJ9fX0.ow2VRoOnXDjBhV-c2XUX9zWmHhbd5hao3xa39DfE4UX_wlsBlh5KBsmK"
    "eDd59GgpIbWFIomQWRy3A4L-St_6aQ"
)
RFC_5_1_SD_JWT = RFC_5_1_JWT + "~" + "".join(d + "~" for _, d, _, _ in RFC_5_1_DISCLOSURES)
# RFC 9901 section 5.1: the SD-JWT payload.
RFC_5_1_PAYLOAD = {
    "_sd": [
        "CrQe7S5kqBAHt-nMYXgc6bdt2SH5aTY1sU_M-PgkjPI",
        "JzYjH4svliH0R3PyEMfeZu6Jt69u5qehZo7F7EPYlSE",
        "PorFbpKuVu6xymJagvkFsFXAbRoc2JGlAUA2BA4o7cI",
        "TGf4oLbgwd5JQaHyKVQZU9UdGE0w5rtDsrZzfUaomLo",
        "XQ_3kPKt1XyX7KANkqVR6yZ2Va5NrPIvPYbyMvRKBMM",
        "XzFrzwscM6Gn6CJDc6vVK8BkMnfG8vOSKfpPIZdAfdE",
        "gbOsI4Edq2x2Kw-w5wPEzakob9hV1cRD0ATN3oQL9JM",
        "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4",
    ],
    "iss": "https://issuer.example.com",
    "iat": 1683000000,
    "exp": 1883000000,
    "sub": "user_42",
    "nationalities": [
        {"...": "pFndjkZ_VCzmyTa6UjlZo3dh-ko8aIKQc9DlGzhaVYo"},
        {"...": "7Cf6JkPudry3lcbwHgeZ8khAv1U1OSlerP0VkBJrWZ0"},
    ],
    "_sd_alg": "sha-256",
    "cnf": {
        "jwk": {
            "kty": "EC",
            "crv": "P-256",
            "x": "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc",
            "y": "ZxjiWWbZMQGHVWKVQ4hbSIirsVfuecCE6t4jT9F2HZQ",
        }
    },
}
# RFC 9901 section 5.2: the presentation's Disclosures (family_name, address, given_name,
# US), its KB-JWT, and the KB-JWT payload.
RFC_5_2_DISCLOSURES = [RFC_5_1_DISCLOSURES[i][1] for i in (1, 5, 0, 8)]
RFC_5_2_KB_JWT = (
    "eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImtiK2p3dCJ9.eyJub25jZSI6ICIxMjM0NTY3ODkwIiwgImF1ZCI6ICJodH"
    "RwczovL3ZlcmlmaWVyLmV4YW1wbGUub3JnIiwgImlhdCI6IDE3NDg1MzcyNDMsICJzZF"
    "9oYXNoIjogIkczSTh6LWNGTUFUQUsyZXA4TVhXay12bmpJM1g2LWFhaFllVTlUdnp6M0"
    "UifQ.PqD8kiTmgP5PDvnRB8PzuzHYU5hH8bEw88jFN9aT5a5CblBjVcFig044UoWeJU6"
    "cUqBPAXVh0XAL8of4_Sp71g"
)
RFC_5_2_PRESENTATION = RFC_5_1_JWT + "~" + "".join(d + "~" for d in RFC_5_2_DISCLOSURES) + RFC_5_2_KB_JWT
RFC_5_2_KB_PAYLOAD = {
    "nonce": "1234567890",
    "aud": "https://verifier.example.org",
    "iat": 1748537243,
    "sd_hash": "G3I8z-cFMATAK2ep8MXWk-vnjI3X6-aahYeU9Tvzz3E",
}
# RFC 9901 section 5.2: the Processed SD-JWT Payload.
RFC_5_2_PROCESSED = {
    "iss": "https://issuer.example.com",
    "iat": 1683000000,
    "exp": 1883000000,
    "sub": "user_42",
    "nationalities": ["US"],
    "cnf": RFC_5_1_PAYLOAD["cnf"],
    "family_name": "Doe",
    "address": {
        "street_address": "123 Main St",
        "locality": "Anytown",
        "region": "Anystate",
        "country": "US",
    },
    "given_name": "John",
}
# RFC 9901 section 6.3 (recursive disclosures): payload and Disclosures.
RFC_6_3_PAYLOAD = {
    "_sd": ["HvrKX6fPV0v9K_yCVFBiLFHsMaxcD_114Em6VT8x1lg"],
    "iss": "https://issuer.example.com",
    "iat": 1683000000,
    "exp": 1883000000,
    "sub": "6c5c0a49-b589-431d-bae7-219122a9ec2c",
    "_sd_alg": "sha-256",
}
RFC_6_3_STREET = "WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3IiwgInN0cmVldF9hZGRyZXNzIiwgIlNjaHVsc3RyLiAxMiJd"
RFC_6_3_DISCLOSURES = [
    (RFC_6_3_STREET, "9gjVuXtdFROCgRrtNcGUXmF65rdezi_6Er_j76kmYyM"),
    (
        "WyJlbHVWNU9nM2dTTklJOEVZbnN4QV9BIiwgImxvY2FsaXR5IiwgIlNjaHVscGZvcnRhIl0",
        "6vh9bq-zS4GKM_7GpggVbYzzu6oOGXrmNVGPHP75Ud0",
    ),
    (
        "WyI2SWo3dE0tYTVpVlBHYm9TNXRtdlZBIiwgInJlZ2lvbiIsICJTYWNoc2VuLUFuaGFsdCJd",
        "KURDPh4ZC19-3tiz-Df39V8eidy1oV3a3H1Da2N0g88",
    ),
    (
        "WyJlSThaV205UW5LUHBOUGVOZW5IZGhRIiwgImNvdW50cnkiLCAiREUiXQ",
        "WN9r9dCBJ8HTCsS2jKASxTjEyW5m5x65_Z_2ro2jfXM",
    ),
    (
        "WyJRZ19PNjR6cUF4ZTQxMmExMDhpcm9BIiwgImFkZHJlc3MiLCB7Il9zZCI6"
        "IFsiNnZoOWJxLXpTNEdLTV83R3BnZ1ZiWXp6dTZvT0dYcm1OVkdQSFA3NVVk"
        "MCIsICI5Z2pWdVh0ZEZST0NnUnJ0TmNHVVhtRjY1cmRlemlfNkVyX2o3Nmtt"
        "WXlNIiwgIktVUkRQaDRaQzE5LTN0aXotRGYzOVY4ZWlkeTFvVjNhM0gxRGEy"
        "TjBnODgiLCAiV045cjlkQ0JKOEhUQ3NTMmpLQVN4VGpFeVc1bTV4NjVfWl8y"
        "cm8yamZYTSJdfV0",
        "HvrKX6fPV0v9K_yCVFBiLFHsMaxcD_114Em6VT8x1lg",
    ),
]
RFC_6_3_ADDRESS = {
    "street_address": "Schulstr. 12",
    "locality": "Schulpforta",
    "region": "Sachsen-Anhalt",
    "country": "DE",
}

# RFC 8037 appendix A.1/A.2 (Ed25519 key) and A.4 (JWS over "Example of Ed25519 signing").
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_SIGNING_INPUT = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"


@pytest.mark.parametrize(
    ("disclosure", "digest"),
    [
        (RFC_FAMILY_NAME, RFC_FAMILY_NAME_DIGEST),
        (RFC_FR, RFC_FR_DIGEST),
        (DRAFT07_DISCLOSURE, DRAFT07_DIGEST),
        *[(d, h) for _, d, h, _ in RFC_5_1_DISCLOSURES],
        *RFC_6_3_DISCLOSURES,
    ],
)
def test_published_disclosure_digests(disclosure: str, digest: str) -> None:
    assert disclosure_digest(disclosure) == digest


def test_rfc_object_property_and_array_element_disclosures() -> None:
    fam = sd._decode_disclosure(RFC_FAMILY_NAME)
    assert (fam.salt, fam.name, fam.value, fam.digest) == (
        "_26bc4LT-ac6q2KI6cBW5es",
        "family_name",
        "Möbius",
        RFC_FAMILY_NAME_DIGEST,
    )
    fr = sd._decode_disclosure(RFC_FR)
    assert (fr.salt, fr.name, fr.value, fr.digest) == ("lklxF5jMYlGTPUovMNIvCA", None, "FR", RFC_FR_DIGEST)
    # same claim, other encodings: same content, different digests (the string is what is signed)
    digests = {RFC_FAMILY_NAME_DIGEST}
    for variant in RFC_FAMILY_NAME_VARIANTS:
        d = sd._decode_disclosure(variant)
        assert (d.salt, d.name, d.value) == ("_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius")
        digests.add(d.digest)
    assert len(digests) == 4


def test_rfc_5_1_sd_jwt_parses_to_the_published_payload_and_disclosures() -> None:
    p = parse(RFC_5_1_SD_JWT)
    assert p.header == {"alg": "ES256", "typ": "example+sd-jwt"}
    assert p.payload == RFC_5_1_PAYLOAD
    assert p.kb_jwt is None and p.presentation_without_kb == RFC_5_1_SD_JWT
    assert [
        (d.name, d.encoded, d.digest, [d.salt, *([d.name] if d.name else []), d.value]) for d in p.disclosures
    ] == [tuple(x) for x in RFC_5_1_DISCLOSURES]
    paths = dict(disclosure_paths(RFC_5_1_SD_JWT))
    assert paths[("nationalities", 0)] == "US" and paths[("nationalities", 1)] == "DE"
    assert paths[("address",)]["locality"] == "Anytown"
    assert len(paths) == 10
    # issuer_jwt_hash is over the JWT alone
    assert issuer_jwt_hash(RFC_5_1_SD_JWT) == keccak256(RFC_5_1_JWT.encode())


def test_rfc_5_2_sd_hash_and_presentation() -> None:
    p = parse(RFC_5_2_PRESENTATION)
    assert p.kb_jwt == RFC_5_2_KB_JWT
    assert sd.sd_hash(p.presentation_without_kb) == RFC_5_2_KB_PAYLOAD["sd_hash"]
    _, kb_payload, _, _ = jose.decode_jws_unverified(RFC_5_2_KB_JWT)
    assert kb_payload == RFC_5_2_KB_PAYLOAD
    # what the holder shows: (path, value) of each presented disclosure
    assert select(
        RFC_5_1_SD_JWT,
        lambda path, v: path in {("family_name",), ("address",), ("given_name",), ("nationalities", 0)},
    ) == (RFC_5_1_JWT + "~" + "".join(RFC_5_1_DISCLOSURES[i][1] + "~" for i in (0, 1, 5, 8)))


def _resign(payload: dict[str, Any]) -> str:
    return sign_jws({"alg": "EdDSA", "typ": "example+sd-jwt"}, payload, ISSUER_KEY)


def test_rfc_5_payload_and_disclosures_verify_once_signed_with_ed25519() -> None:
    # The RFC's JWT is ES256; signing its payload with our key lets verify() process the
    # RFC's own Disclosures end to end.
    jwt = _resign(RFC_5_1_PAYLOAD)
    v = verify(jwt + "~" + "".join(d + "~" for d in RFC_5_2_DISCLOSURES), issuer_key=issuer_key)
    assert v.claims == RFC_5_2_PROCESSED
    assert list(v.claims) == list(RFC_5_2_PROCESSED)  # same order as the RFC prints it
    assert v.undisclosed_count == 6  # 5 hidden object properties + "DE"
    v = verify(jwt + "~" + "".join(d + "~" for _, d, _, _ in RFC_5_1_DISCLOSURES), issuer_key=issuer_key)
    assert v.undisclosed_count == 0
    assert v.claims["nationalities"] == ["US", "DE"]
    assert v.claims["phone_number_verified"] is True and v.claims["updated_at"] == 1570000000


def test_rfc_6_3_recursive_disclosures() -> None:
    jwt = _resign(RFC_6_3_PAYLOAD)
    address = RFC_6_3_DISCLOSURES[4][0]
    everything = jwt + "~" + "".join(d + "~" for d, _ in RFC_6_3_DISCLOSURES)
    assert verify(everything, issuer_key=issuer_key).claims["address"] == RFC_6_3_ADDRESS
    # the parent alone shows the structure, not the children
    v = verify(jwt + "~" + address + "~", issuer_key=issuer_key)
    assert v.claims["address"] == {} and v.undisclosed_count == 4
    # a child without its parent does not connect (RFC 9901 4.2.6): rejected
    assert code_of(verify, jwt + "~" + RFC_6_3_STREET + "~", issuer_key=issuer_key) == "claim_tampered"
    assert verify(jwt + "~" + address + "~" + RFC_6_3_STREET + "~", issuer_key=issuer_key).claims[
        "address"
    ] == {"street_address": "Schulstr. 12"}


def test_rfc8037_ed25519_jwk_and_signature() -> None:
    key = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    assert jose.ed25519_jwk(key.public_key()) == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert jose.ed25519_jwk(b64url_decode(RFC8037_X))["x"] == RFC8037_X
    assert b64url(key.sign(RFC8037_SIGNING_INPUT.encode())) == RFC8037_SIGNATURE
    pub = jose.jwk_to_ed25519({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
    header, _payload_not_json = {"alg": "EdDSA"}, None
    jose.check_signature(header, RFC8037_SIGNING_INPUT.encode(), b64url_decode(RFC8037_SIGNATURE), pub)


# --- issuance ------------------------------------------------------------------------


def test_issue_format() -> None:
    payload = transcript()
    issued = issue(payload, key=ISSUER_KEY, kid="did:web:uni.example#k1", holder_jwk=HOLDER_JWK)
    assert issued.compact == issued.issuer_jwt + "~" + "".join(d.encoded + "~" for d in issued.disclosures)
    header, signed = jose.verify_jws(issued.issuer_jwt, ISSUER_KEY.public_key())
    assert header == {"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": "did:web:uni.example#k1"}
    assert signed["_sd_alg"] == "sha-256" and signed["cnf"] == {"jwk": HOLDER_JWK}
    for name in ("@context", "type", "issuer", "validFrom"):
        assert signed[name] == payload[name]  # clear text outside credentialSubject
    subject = signed["credentialSubject"]
    assert list(subject) == ["_sd"] and subject["_sd"] == sorted(subject["_sd"]) and len(subject["_sd"]) == 9
    # 9 properties + 2 courses + 2x2 course properties
    assert len(issued.disclosures) == 15
    seen_salts = set()
    for d in issued.disclosures:
        assert d.digest == disclosure_digest(d.encoded)
        assert sd._decode_disclosure(d.encoded) == d
        assert len(d.salt) == 22 and len(b64url_decode(d.salt)) == 16
        seen_salts.add(d.salt)
    assert len(seen_salts) == 15
    courses = next(d for d in issued.disclosures if d.name == "courses")
    assert [set(e) for e in courses.value] == [{"..."}, {"..."}]
    assert [d.name for d in issued.disclosures][:7] == [
        "name",
        "studentId",
        "program",
        "gpa",
        "graduated",
        "minor",
        "courses",
    ]
    assert parse(issued.compact).disclosures == issued.disclosures
    assert json.loads(b64url_decode(issued.disclosures[0].encoded)) == [
        issued.disclosures[0].salt,
        "name",
        "Zhang Wei 张伟",
    ]


def test_round_trip_all_disclosed() -> None:
    payload = transcript()
    issued = issue(payload, key=ISSUER_KEY, kid="k1", holder_jwk=HOLDER_JWK)
    v = verify(issued.compact, issuer_key=issuer_key)
    assert v.claims == {**payload, "cnf": {"jwk": HOLDER_JWK}}
    assert list(v.claims["credentialSubject"]) == list(payload["credentialSubject"])
    assert v.undisclosed_count == 0 and v.key_binding is None and v.holder_jwk == HOLDER_JWK
    assert v.issuer_jwt == issued.issuer_jwt and v.header["typ"] == "dc+sd-jwt"
    assert v.payload == jose.decode_jws_unverified(issued.issuer_jwt)[1]
    assert [p for p, _ in v.disclosed] == [p for p, _ in disclosure_paths(issued.compact)]
    assert dict(v.disclosed)[("credentialSubject", "courses", 1, "grade")] == "B+"
    # no holder binding: no cnf
    plain = issue(payload, key=ISSUER_KEY, kid="k1")
    v = verify(plain.compact, issuer_key=issuer_key)
    assert v.claims == payload and v.holder_jwk is None and "cnf" not in v.payload


def test_issue_sd_root_array_other_root_and_decoys() -> None:
    payload = {"iss": "x", "credentialSubject": [{"a": 1}, "b", [2, 3]]}
    issued = issue(payload, key=ISSUER_KEY, kid="k")
    assert verify(issued.compact, issuer_key=issuer_key).claims == payload
    payload = {"iss": "x", "vc": {"a": {"b": 1}}, "credentialSubject": "clear"}
    issued = issue(payload, key=ISSUER_KEY, kid="k", sd_root="vc", typ="example+sd-jwt", decoys=3)
    v = verify(issued.compact, issuer_key=issuer_key)
    assert v.claims == payload and v.undisclosed_count == 6  # 3 decoys in each of the 2 objects
    assert v.header["typ"] == "example+sd-jwt"
    hidden = verify(select(issued.compact, lambda p, v: False), issuer_key=issuer_key)
    assert (
        hidden.claims == {"iss": "x", "vc": {}, "credentialSubject": "clear"}
        and hidden.undisclosed_count == 4
    )
    # decoys are added to empty objects too
    issued = issue({"credentialSubject": {}}, key=ISSUER_KEY, kid="k", decoys=2)
    assert len(jose.decode_jws_unverified(issued.issuer_jwt)[1]["credentialSubject"]["_sd"]) == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"credentialSubject": {"_sd": 1}},
        {"credentialSubject": {"a": {"...": "x"}}},
        {"credentialSubject": {1: "int key"}},
        {"credentialSubject": {"a": float("nan")}},
        {"credentialSubject": {"a": {1, 2}}},
        {"credentialSubject": {"a": "\ud800"}},
        {"credentialSubject": {"a": 10**5000}},
        {"credentialSubject": "scalar root"},
        {"other": 1},
        {"credentialSubject": {}, "_sd_alg": "sha-256"},
        {"credentialSubject": {}, "_sd": []},
        {"credentialSubject": {}, "x": {"...": 1}},
        {"credentialSubject": {}, "x": float("inf")},
        {"credentialSubject": {}, "x": object()},
    ],
)
def test_issue_rejects_non_json_or_reserved_input(payload: dict[str, Any]) -> None:
    assert code_of(issue, payload, key=ISSUER_KEY, kid="k") == "malformed"


def test_issue_rejects_deep_nesting_and_bad_holder_jwk() -> None:
    deep: Any = "leaf"
    for _ in range(sd.MAX_DEPTH + 1):
        deep = {"d": deep}
    assert code_of(issue, {"credentialSubject": deep}, key=ISSUER_KEY, kid="k") == "malformed"
    deep_clear: Any = []
    for _ in range(sd.MAX_DEPTH + 1):
        deep_clear = [deep_clear]
    assert code_of(issue, {"credentialSubject": {}, "x": deep_clear}, key=ISSUER_KEY, kid="k") == "malformed"
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert code_of(issue, {"credentialSubject": cyclic}, key=ISSUER_KEY, kid="k") == "malformed"
    assert code_of(issue, {"credentialSubject": {}, "x": cyclic}, key=ISSUER_KEY, kid="k") == "malformed"
    for bad in ({"kty": "EC"}, {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, {**HOLDER_JWK, "d": "x"}):
        assert code_of(issue, transcript(), key=ISSUER_KEY, kid="k", holder_jwk=bad) == "malformed"
    assert (
        code_of(issue, {**transcript(), "cnf": {}}, key=ISSUER_KEY, kid="k", holder_jwk=HOLDER_JWK)
        == "malformed"
    )


# --- selection (hypothesis) ----------------------------------------------------------

names = st.text(max_size=5).filter(lambda s: s not in ("_sd", "..."))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
values = st.recursive(
    scalars, lambda ch: st.lists(ch, max_size=4) | st.dictionaries(names, ch, max_size=4), max_leaves=16
)
subjects = st.one_of(st.dictionaries(names, values, max_size=5), st.lists(values, max_size=4))


def _all_paths(value: Any, path: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    out = []
    for k, v in items:
        out.append((*path, k))
        out.extend(_all_paths(v, (*path, k)))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        value = value[k]
    return value


def _restrict(value: Any, path: tuple[Any, ...], kept: set[tuple[Any, ...]]) -> Any:
    if isinstance(value, dict):
        return {k: _restrict(v, (*path, k), kept) for k, v in value.items() if (*path, k) in kept}
    if isinstance(value, list):
        return [_restrict(v, (*path, i), kept) for i, v in enumerate(value) if (*path, i) in kept]
    return value


def _hidden_digests(value: Any, path: tuple[Any, ...], kept: set[tuple[Any, ...]], decoys: int) -> int:
    """Digests a verifier sees without a Disclosure, for a visible container."""
    items = (
        list(value.items())
        if isinstance(value, dict)
        else list(enumerate(value))
        if isinstance(value, list)
        else []
    )
    n = decoys if isinstance(value, dict) else 0
    for k, v in items:
        if (*path, k) in kept:
            n += _hidden_digests(v, (*path, k), kept, decoys)
        else:
            n += 1
    return n


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=subjects, decoys=st.integers(0, 2), data=st.data())
def test_select_then_verify_restricts_claims(subject: Any, decoys: int, data: st.DataObject) -> None:
    payload = {"iss": "did:web:x", "credentialSubject": subject}
    issued = issue(payload, key=ISSUER_KEY, kid="k", decoys=decoys, holder_jwk=HOLDER_JWK)
    root = ("credentialSubject",)
    all_paths = _all_paths(subject, root)
    assert sorted(map(repr, (p for p, _ in disclosure_paths(issued.compact)))) == sorted(map(repr, all_paths))
    chosen = data.draw(st.sets(st.sampled_from(all_paths)) if all_paths else st.just(set()))

    def keep(path: tuple[Any, ...], value: Any) -> bool:
        assert value == _get(payload, path)
        return path in chosen

    presentation = select(issued.compact, keep)
    kept = {p[:i] for p in chosen for i in range(2, len(p) + 1)}  # parents implied
    v = verify(presentation, issuer_key=issuer_key)
    assert v.claims == {
        **payload,
        "credentialSubject": _restrict(subject, root, kept),
        "cnf": {"jwk": HOLDER_JWK},
    }
    assert {p for p, _ in v.disclosed} == kept
    assert v.undisclosed_count == _hidden_digests(subject, root, kept, decoys)
    assert (
        issuer_jwt_hash(presentation)
        == issuer_jwt_hash(issued.compact)
        == keccak256(issued.issuer_jwt.encode())
    )
    assert len(parse(presentation).disclosures) == len(kept)
    # and with key binding
    bound = add_key_binding(presentation, holder_key=HOLDER_KEY, aud="https://verifier", nonce="n-1", iat=NOW)
    vb = verify(
        bound, issuer_key=issuer_key, require_key_binding=True, aud="https://verifier", nonce="n-1", now=NOW
    )
    assert (
        vb.claims == v.claims
        and vb.key_binding is not None
        and vb.key_binding["sd_hash"] == sd.sd_hash(presentation)
    )
    assert issuer_jwt_hash(bound) == issuer_jwt_hash(issued.compact)


def test_select_keeps_parents_and_order_and_drops_kb() -> None:
    issued = issue(transcript(), key=ISSUER_KEY, kid="k", holder_jwk=HOLDER_JWK)
    pres = select(issued.compact, lambda p, v: p[-1] == "grade")
    kept = [d.name for d in parse(pres).disclosures]
    assert kept == ["courses", None, "grade", None, "grade"]
    v = verify(pres, issuer_key=issuer_key)
    assert v.claims["credentialSubject"] == {"courses": [{"grade": "A"}, {"grade": "B+"}]}
    assert v.undisclosed_count == 8 + 2
    bound = add_key_binding(pres, holder_key=HOLDER_KEY, aud="a", nonce="n")
    assert select(bound, lambda p, v: True) == pres  # the KB-JWT is dropped, nothing else to add
    assert select(issued.compact, lambda p, v: True) == issued.compact
    assert select(issued.compact, lambda p, v: False) == issued.issuer_jwt + "~"


# --- tampering -----------------------------------------------------------------------


def _replace(s: str, i: int, alphabet: str = B64URL_ALPHABET) -> str:
    c = s[i]
    new = alphabet[(alphabet.index(c) + 1) % len(alphabet)] if c in alphabet else alphabet[0]
    return s[:i] + new + s[i + 1 :]


@pytest.fixture(scope="module")
def bound_presentation() -> tuple[str, str, list[str], str]:
    issued = issue(
        {"iss": "i", "credentialSubject": {"a": "x", "b": [1, {"c": None}]}},
        key=ISSUER_KEY,
        kid="k",
        holder_jwk=HOLDER_JWK,
    )
    pres = select(issued.compact, lambda p, v: True)
    bound = add_key_binding(pres, holder_key=HOLDER_KEY, aud="aud", nonce="nonce", iat=NOW)
    jwt, *discs, kb = bound.split("~")
    return bound, jwt, discs, kb


def _verify_bound(s: str) -> Any:
    return verify(s, issuer_key=issuer_key, require_key_binding=True, aud="aud", nonce="nonce", now=NOW)


def test_every_single_character_change_gets_the_right_code(
    bound_presentation: tuple[str, str, list[str], str],
) -> None:
    bound, jwt, discs, kb = bound_presentation
    assert _verify_bound(bound).claims["credentialSubject"] == {"a": "x", "b": [1, {"c": None}]}
    # issuer-signed JWT: the signature fails - or, where the change stops it decoding, malformed
    for i in range(len(jwt)):
        if jwt[i] == ".":
            continue
        changed = _replace(jwt, i)
        try:
            jose.decode_jws_unverified(changed)
            expected = "signature_invalid"
        except SdJwtError:
            expected = "malformed"
        assert code_of(_verify_bound, changed + bound[len(jwt) :]) == expected, i
    # any Disclosure: its digest is no longer in the signed payload
    start = len(jwt) + 1
    for d in discs:
        for i in range(len(d)):
            changed = bound[: start + i] + _replace(d, i)[i] + bound[start + i + 1 :]
            assert code_of(_verify_bound, changed) == "claim_tampered", (d, i)
        start += len(d) + 1
    # KB-JWT: holder binding invalid, whatever part is changed
    for i in range(len(kb)):
        if kb[i] == ".":
            continue
        changed = bound[: len(bound) - len(kb)] + _replace(kb, i)
        assert code_of(_verify_bound, changed) == "holder_binding_invalid", i


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_edits_never_raise_anything_else(
    data: st.DataObject, bound_presentation: tuple[str, str, list[str], str]
) -> None:
    s = bound_presentation[0]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(s)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        c = data.draw(st.sampled_from(B64URL_ALPHABET + ".~=+/ é\x00"))
        s = (
            s[:i] + c + s[i:]
            if op == "insert"
            else s[:i] + s[i + 1 :]
            if op == "delete"
            else s[:i] + c + s[i + 1 :]
        )
    assume(s != bound_presentation[0])
    try:
        _verify_bound(s)
    except SdJwtError as exc:
        assert isinstance(exc, InvalidInput)
        assert exc.code in {
            "malformed",
            "signature_invalid",
            "claim_tampered",
            "holder_binding_missing",
            "holder_binding_invalid",
        }


def test_foreign_duplicate_and_misplaced_disclosures() -> None:
    a = issue(transcript("1"), key=ISSUER_KEY, kid="k")
    b = issue(transcript("2"), key=ISSUER_KEY, kid="k")
    assert (
        code_of(verify, a.compact + b.disclosures[1].encoded + "~", issuer_key=issuer_key) == "claim_tampered"
    )
    assert (
        code_of(verify, a.compact + a.disclosures[1].encoded + "~", issuer_key=issuer_key) == "claim_tampered"
    )
    # a child presented without its parent does not connect
    child = next(d for d in a.disclosures if d.name == "grade")
    assert (
        code_of(verify, a.issuer_jwt + "~" + child.encoded + "~", issuer_key=issuer_key) == "claim_tampered"
    )
    # the same for the holder-side helpers
    assert code_of(disclosure_paths, a.compact + b.disclosures[0].encoded + "~") == "claim_tampered"
    assert code_of(select, a.compact + a.disclosures[0].encoded + "~", lambda p, v: True) == "claim_tampered"


def _signed_with(payload: dict[str, Any]) -> str:
    return sign_jws({"alg": "EdDSA", "typ": "vc+sd-jwt", "kid": "k"}, payload, ISSUER_KEY)


def _disc(*parts: Any) -> tuple[str, str]:
    enc = b64url(json.dumps(list(parts)).encode())
    return enc, disclosure_digest(enc)


def test_structural_attacks_on_digests() -> None:
    name, name_d = _disc("salt1", "name", "Alice")
    elem, elem_d = _disc("salt2", "x")
    # the same digest twice in the signed payload
    jwt = _signed_with({"credentialSubject": {"_sd": [name_d, name_d]}})
    assert code_of(verify, jwt + "~" + name + "~", issuer_key=issuer_key) == "claim_tampered"
    jwt = _signed_with({"a": {"_sd": [name_d]}, "b": [{"...": name_d}]})
    assert code_of(verify, jwt + "~", issuer_key=issuer_key) == "claim_tampered"
    # an array-element disclosure referenced from _sd, and the other way round
    jwt = _signed_with({"_sd": [elem_d]})
    assert code_of(verify, jwt + "~" + elem + "~", issuer_key=issuer_key) == "claim_tampered"
    jwt = _signed_with({"a": [{"...": name_d}]})
    assert code_of(verify, jwt + "~" + name + "~", issuer_key=issuer_key) == "claim_tampered"
    # a disclosed name clashing with a clear one
    jwt = _signed_with({"_sd": [name_d], "name": "Bob"})
    assert code_of(verify, jwt + "~" + name + "~", issuer_key=issuer_key) == "claim_tampered"
    # a digest reused through a disclosure's value
    nested, nested_d = _disc("salt3", "n", {"_sd": [name_d]})
    jwt = _signed_with({"_sd": [nested_d, name_d]})
    assert code_of(verify, jwt + "~" + nested + "~" + name + "~", issuer_key=issuer_key) == "claim_tampered"
    # reserved names and bad shapes in a (referenced) disclosure are malformed
    for bad in (
        _disc("s", "_sd", 1),
        _disc("s", "...", 1),
        _disc(1, "a", 1),
        _disc("s", 1, 2),
        _disc("s"),
        _disc("s", "a", "b", "c"),
    ):
        jwt = _signed_with({"_sd": [bad[1]]})
        assert code_of(verify, jwt + "~" + bad[0] + "~", issuer_key=issuer_key) == "malformed"
    # _sd must be an array of strings; unknown _sd_alg
    for payload in ({"_sd": "x"}, {"_sd": [1]}, {"_sd_alg": "sha-512"}):
        assert code_of(verify, _signed_with(payload) + "~", issuer_key=issuer_key) == "malformed"
    # a "..." object that is not a digest reference stays a plain object
    jwt = _signed_with({"a": [{"...": 1}, {"...": "x", "y": 2}], "_sd": [name_d]})
    v = verify(jwt + "~" + name + "~", issuer_key=issuer_key)
    assert v.claims == {"a": [{"...": 1}, {"...": "x", "y": 2}], "name": "Alice"}


def test_wrong_issuer_key_alg_and_callback_errors() -> None:
    issued = issue(transcript(), key=ISSUER_KEY, kid="k")
    assert (
        code_of(verify, issued.compact, issuer_key=lambda h, p: OTHER_KEY.public_key()) == "signature_invalid"
    )
    seen = []

    def resolver(header: dict[str, Any], payload: dict[str, Any]) -> Any:
        seen.append((header["kid"], payload["issuer"]))
        raise LookupError("unknown issuer")

    with pytest.raises(LookupError):
        verify(issued.compact, issuer_key=resolver)
    assert seen == [("k", "did:web:uni.example")]
    # alg other than EdDSA (including none) is refused even with a "valid" signature
    h, p, _, sig = jose.decode_jws_unverified(issued.issuer_jwt)
    for alg in ("none", "ES256", "HS256"):
        forged_head = b64url(json.dumps({**h, "alg": alg}).encode())
        forged = forged_head + "." + issued.issuer_jwt.split(".")[1] + "." + b64url(sig)
        assert code_of(verify, forged + "~", issuer_key=issuer_key) == "signature_invalid"
    crit = sign_jws({"alg": "EdDSA", "crit": ["exp"]}, {"a": 1}, ISSUER_KEY)
    assert code_of(verify, crit + "~", issuer_key=issuer_key) == "signature_invalid"


# --- key binding ---------------------------------------------------------------------


def test_key_binding_checks() -> None:
    issued = issue(transcript(), key=ISSUER_KEY, kid="k", holder_jwk=HOLDER_JWK)
    pres = select(issued.compact, lambda p, v: p[1] == "name")
    bound = add_key_binding(pres, holder_key=HOLDER_KEY, aud="https://v.example", nonce="n0", iat=NOW)
    kw = {"issuer_key": issuer_key, "require_key_binding": True, "now": NOW}
    v = verify(bound, aud="https://v.example", nonce="n0", **kw)
    assert v.key_binding == {
        "iat": NOW,
        "aud": "https://v.example",
        "nonce": "n0",
        "sd_hash": sd.sd_hash(pres),
    }
    kb_header = jose.decode_jws_unverified(bound.rsplit("~", 1)[1])[0]
    assert kb_header == {"alg": "EdDSA", "typ": "kb+jwt"}
    # KB is checked even when not required and aud/nonce not given
    assert verify(bound, issuer_key=issuer_key, now=NOW).key_binding is not None
    assert code_of(verify, bound, aud="https://other", nonce="n0", **kw) == "holder_binding_invalid"
    assert code_of(verify, bound, aud="https://v.example", nonce="n1", **kw) == "holder_binding_invalid"
    # signed by another key than cnf.jwk
    forged = pres + sign_jws(
        {"alg": "EdDSA", "typ": "kb+jwt"},
        {"iat": NOW, "aud": "a", "nonce": "n", "sd_hash": sd.sd_hash(pres)},
        OTHER_KEY,
    )
    assert code_of(verify, forged, **kw) == "holder_binding_invalid"
    # wrong typ, wrong sd_hash (KB-JWT moved to another presentation), missing claims
    for header, payload in [
        ({"alg": "EdDSA", "typ": "JWT"}, {"iat": NOW, "aud": "a", "nonce": "n", "sd_hash": sd.sd_hash(pres)}),
        (
            {"alg": "EdDSA", "typ": "kb+jwt"},
            {"iat": NOW, "aud": "a", "nonce": "n", "sd_hash": sd.sd_hash(issued.compact)},
        ),
        ({"alg": "EdDSA", "typ": "kb+jwt"}, {"iat": NOW, "aud": "a", "sd_hash": sd.sd_hash(pres)}),
        (
            {"alg": "EdDSA", "typ": "kb+jwt"},
            {"iat": str(NOW), "aud": "a", "nonce": "n", "sd_hash": sd.sd_hash(pres)},
        ),
        (
            {"alg": "EdDSA", "typ": "kb+jwt"},
            {"iat": NOW, "aud": ["a"], "nonce": "n", "sd_hash": sd.sd_hash(pres)},
        ),
    ]:
        assert code_of(verify, pres + sign_jws(header, payload, HOLDER_KEY), **kw) == "holder_binding_invalid"
    other_pres = select(issued.compact, lambda p, v: p[1] == "gpa")
    moved = other_pres + bound.rsplit("~", 1)[1]
    assert code_of(verify, moved, **kw) == "holder_binding_invalid"
    # iat window
    assert (
        code_of(verify, bound, issuer_key=issuer_key, now=NOW + 3600, kb_max_age=600)
        == "holder_binding_invalid"
    )
    assert verify(bound, issuer_key=issuer_key, now=NOW + 300, kb_max_age=600).key_binding
    assert code_of(verify, bound, issuer_key=issuer_key, now=NOW - 301) == "holder_binding_invalid"
    # garbage KB-JWT
    assert code_of(verify, pres + "abc", **kw) == "holder_binding_invalid"
    assert code_of(verify, pres + "a.b.c.d", **kw) == "holder_binding_invalid"


def test_key_binding_missing() -> None:
    bound_cred = issue(transcript(), key=ISSUER_KEY, kid="k", holder_jwk=HOLDER_JWK)
    assert (
        code_of(verify, bound_cred.compact, issuer_key=issuer_key, require_key_binding=True)
        == "holder_binding_missing"
    )
    unbound = issue(transcript(), key=ISSUER_KEY, kid="k")
    assert (
        code_of(verify, unbound.compact, issuer_key=issuer_key, require_key_binding=True)
        == "holder_binding_missing"
    )
    assert verify(bound_cred.compact, issuer_key=issuer_key).key_binding is None
    # a KB-JWT on a credential without cnf cannot be checked
    kb = sign_jws(
        {"alg": "EdDSA", "typ": "kb+jwt"},
        {"iat": NOW, "aud": "a", "nonce": "n", "sd_hash": sd.sd_hash(unbound.compact)},
        HOLDER_KEY,
    )
    assert code_of(verify, unbound.compact + kb, issuer_key=issuer_key, now=NOW) == "holder_binding_invalid"
    # add_key_binding refuses what a verifier would refuse
    assert (
        code_of(add_key_binding, unbound.compact, holder_key=HOLDER_KEY, aud="a", nonce="n")
        == "holder_binding_missing"
    )
    assert (
        code_of(add_key_binding, bound_cred.compact, holder_key=OTHER_KEY, aud="a", nonce="n")
        == "holder_binding_invalid"
    )
    twice = add_key_binding(bound_cred.compact, holder_key=HOLDER_KEY, aud="a", nonce="n")
    assert code_of(add_key_binding, twice, holder_key=HOLDER_KEY, aud="a", nonce="n") == "malformed"


# --- anchored leaf -------------------------------------------------------------------


def test_issuer_jwt_hash() -> None:
    issued = issue(transcript(), key=ISSUER_KEY, kid="k", holder_jwk=HOLDER_JWK)
    leaf = issuer_jwt_hash(issued.compact)
    assert leaf == keccak256(issued.issuer_jwt.encode("ascii")) == issuer_jwt_hash(issued.issuer_jwt)
    assert len(leaf) == 32
    for keep in (lambda p, v: False, lambda p, v: len(p) == 2, lambda p, v: True):
        pres = select(issued.compact, keep)
        assert issuer_jwt_hash(pres) == leaf
        assert issuer_jwt_hash(add_key_binding(pres, holder_key=HOLDER_KEY, aud="a", nonce="n")) == leaf
    assert issuer_jwt_hash(issue(transcript(), key=ISSUER_KEY, kid="k").compact) != leaf  # fresh salts
    for bad in ("", "~", "a.b~", "a.b.c.d", "a.b.c=", None, b"a.b.c"):
        assert code_of(issuer_jwt_hash, bad) == "malformed"


# --- malformed input -----------------------------------------------------------------


def _jwt(header: Any, payload: Any) -> str:
    return (
        b64url(json.dumps(header).encode())
        + "."
        + b64url(json.dumps(payload).encode())
        + "."
        + b64url(b"s" * 64)
    )


@pytest.mark.parametrize(
    "compact",
    [
        "",
        "~",
        "no tilde at all",
        "eyJhbGciOiJFZERTQSJ9.e30.AAAA",  # a JWT with no '~'
        "a.b~",
        "a.b.c~",
        "!!!.###.$$$~",
        _jwt({"alg": "EdDSA"}, {}) + "~~",  # empty disclosure
        _jwt({"alg": "EdDSA"}, {}).replace(".", "=.", 1) + "~",  # padding
        _jwt({"alg": "EdDSA"}, [1, 2]) + "~",  # payload not an object
        _jwt(["alg"], {}) + "~",  # header not an object
        _jwt({"typ": "x"}, {}) + "~",  # no alg
        b64url(b"{not json") + "." + b64url(b"{}") + ".AA~",
        b64url(b'{"alg":"EdDSA","alg":"none"}') + "." + b64url(b"{}") + ".AA~",  # duplicate member
        b64url(b'{"alg":"EdDSA"}') + "." + b64url(b'{"a":NaN}') + ".AA~",
        b64url(b'{"alg":"EdDSA"}') + "." + b64url(b"\xff\xfe") + ".AA~",
        b64url(b'{"alg":"EdDSA"}') + "." + b64url(b"[" * 100_000) + ".AA~",
        "A" * (256 * 1024) + ".e30.AA~",
        _jwt({"alg": "EdDSA"}, {}) + "~" + "WyJhIiwiYiJd~" * 2001,
    ],
)
def test_malformed_inputs(compact: str) -> None:
    assert code_of(parse, compact) == "malformed"
    assert code_of(verify, compact, issuer_key=issuer_key) == "malformed"
    assert code_of(disclosure_paths, compact) == "malformed"
    assert code_of(select, compact, lambda p, v: True) == "malformed"


def test_malformed_non_strings_and_bad_disclosure_in_parse() -> None:
    for bad in (None, b"x~", 5, ["a~"]):
        assert code_of(parse, bad) == "malformed"
        assert code_of(verify, bad, issuer_key=issuer_key) == "malformed"
    issued = issue(transcript(), key=ISSUER_KEY, kid="k")
    # parse decodes every disclosure; verify reports an undecodable one as not referenced
    junk = issued.compact + b64url(b"not json") + "~"
    assert code_of(parse, junk) == "malformed"
    assert code_of(verify, junk, issuer_key=issuer_key) == "claim_tampered"
    assert code_of(parse, issued.compact + "Zm9v=~") == "malformed"


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.text(alphabet=B64URL_ALPHABET + ".~", max_size=300)))
def test_random_strings_are_malformed(text: str) -> None:
    for fn in (parse, disclosure_paths):
        try:
            fn(text)
        except SdJwtError as exc:
            assert exc.code == "malformed"
    try:
        verify(text, issuer_key=issuer_key)
        raise AssertionError("a random string verified")
    except SdJwtError as exc:
        assert exc.code in {"malformed", "signature_invalid"}
    try:
        issuer_jwt_hash(text)
    except SdJwtError as exc:
        assert exc.code == "malformed"


def test_size_limits_are_inclusive() -> None:
    issued = issue(
        {"credentialSubject": [str(i) for i in range(sd.MAX_DISCLOSURES)]}, key=ISSUER_KEY, kid="k"
    )
    assert len(parse(issued.compact).disclosures) == sd.MAX_DISCLOSURES
    assert len(issued.compact) <= sd.MAX_COMPACT_CHARS
    assert (
        len(verify(issued.compact, issuer_key=issuer_key).claims["credentialSubject"]) == sd.MAX_DISCLOSURES
    )


# --- jose ----------------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_b64url_round_trip(data: bytes) -> None:
    enc = b64url(data)
    assert "=" not in enc and "+" not in enc and "/" not in enc
    assert b64url_decode(enc) == data
    assert enc == __import__("base64").urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    "bad", ["A", "AB=", "AB==", "A+B/", "AB C", "AB\n", "ÀB", "AF", "AAB", "AAF", None, b"AA"]
)
def test_b64url_decode_is_strict(bad: Any) -> None:
    # "AF" and "AAF" carry non-zero trailing bits (the canonical forms are "AA"/"AAE"...)
    assert code_of(b64url_decode, bad) == "malformed"


def test_jose_sign_verify_and_jwk() -> None:
    token = sign_jws({"alg": "EdDSA", "typ": "JWT"}, {"sub": "é", "n": 1}, ISSUER_KEY)
    header_b64 = token.split(".")[0]
    assert b64url_decode(header_b64) == b'{"alg":"EdDSA","typ":"JWT"}'
    assert b64url_decode(token.split(".")[1]) == '{"sub":"é","n":1}'.encode()
    assert jose.verify_jws(token, ISSUER_KEY.public_key()) == (
        {"alg": "EdDSA", "typ": "JWT"},
        {"sub": "é", "n": 1},
    )
    h, p, si, sig = jose.decode_jws_unverified(token)
    assert si == token.rsplit(".", 1)[0].encode() and len(sig) == 64
    assert code_of(jose.verify_jws, token, OTHER_KEY.public_key()) == "signature_invalid"
    short = token.rsplit(".", 1)[0] + "." + b64url(b"x" * 10)
    assert code_of(jose.verify_jws, short, ISSUER_KEY.public_key()) == "signature_invalid"
    with pytest.raises(ValueError):
        sign_jws({"alg": "none"}, {}, ISSUER_KEY)
    jwk = jose.ed25519_jwk(HOLDER_KEY.public_key())
    assert jose.jwk_to_ed25519(jwk).public_bytes_raw() == HOLDER_KEY.public_key().public_bytes_raw()
    for bad in (
        {},
        [],
        {"kty": "OKP", "crv": "X25519", "x": jwk["x"]},
        {"kty": "RSA", "crv": "Ed25519", "x": jwk["x"]},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"][:-2]},
        {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"] + "="},
        {**jwk, "d": "secret"},
    ):
        assert code_of(jose.jwk_to_ed25519, bad) == "malformed"
    assert code_of(jose.ed25519_jwk, b"short") == "malformed"
    err = SdJwtError("x", code="claim_tampered")
    assert (
        isinstance(err, InvalidInput) and err.http_status == 422 and err.to_dict()["code"] == "claim_tampered"
    )
    assert sd.SdJwtError is SdJwtError


def test_deep_json_is_refused_before_the_c_decoder_sees_it() -> None:
    # py_ecc (imported with web3/eth) raises the recursion limit to 100,000; CPython's C
    # JSON decoder then overflows the C stack on deep nesting instead of raising.
    import sys
    import time

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 100_000))
    try:
        for text in ("[" * 200_000, '{"a":' * 50_000, '[1,"x",' * 101 + "1" + "]" * 101):
            assert code_of(jose.json_loads, text.encode()) == "malformed"
        head = b64url(b'{"alg":"EdDSA"}')
        assert (
            code_of(verify, head + "." + b64url(b"[" * 150_000) + ".AA~", issuer_key=issuer_key)
            == "malformed"
        )
    finally:
        sys.setrecursionlimit(old)
    assert jose.json_loads(("[" * 100 + "]" * 100).encode()) is not None
    assert jose.json_loads(('["' + "[" * 5000 + '"]').encode()) == ["[" * 5000]  # brackets in strings
    # the string-skipping scan stays linear on crafted unterminated strings
    start = time.process_time()
    for text in ("[" * 101 + '"' + '\\"' * 100_000, "[" * 101 + '"a' * 100_000):
        assert code_of(jose.json_loads, text.encode()) == "malformed"
    assert time.process_time() - start < 2


def _strict_json(raw: bytes) -> Any:
    """The reference for json_loads: the standard library, refusing NaN and Infinity."""
    def refuse(name: str) -> Any:
        raise ValueError(name)

    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


def _json_outcome(loads: Any, raw: bytes) -> tuple[str, str]:
    # repr tells 1 from 1.0 and True, -0.0 from 0.0, and compares nested values exactly
    try:
        return "ok", repr(loads(raw))
    except (ValueError, SdJwtError):
        return "refused", ""


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=20,
)


@given(_JSON_VALUES, st.booleans(), st.booleans(), st.sampled_from(["", " ", "\n", "\t\r\n "]))
def test_json_fast_path_reads_json_as_the_standard_library(
    value: Any, ascii_only: bool, compact: bool, space: str
) -> None:
    # json_loads reads disclosures and payloads with jiter, and must read them exactly as
    # the strict decoder would (floats to the last bit, big integers, escapes)
    separators = (",", ":") if compact else None
    raw = (space + json.dumps(value, ensure_ascii=ascii_only, separators=separators) + space).encode()
    assert _json_outcome(jose.json_loads, raw) == _json_outcome(_strict_json, raw)
    assert _json_outcome(jose.json_loads, raw)[0] == "ok"


@given(st.dictionaries(st.text(max_size=5), _JSON_VALUES, min_size=1, max_size=5), _JSON_VALUES,
       st.booleans())
def test_json_fast_path_refuses_duplicate_names(obj: dict[str, Any], other: Any, nested: bool) -> None:
    # jiter keeps the last of duplicate names; json_loads must refuse them, compact or not
    name = next(iter(obj))
    text = "{" + json.dumps(name) + ":" + json.dumps(other, separators=(",", ":")) + "," + \
        json.dumps(obj, ensure_ascii=False, separators=(",", ":"))[1:]
    raw = ("[1," + text + "]" if nested else text).encode()
    assert code_of(jose.json_loads, raw) == "malformed"


@given(st.text(alphabet='[]{}:",.0123456789eE+-tfrulnaIiyN\\/ \t\n\x00\x1f\x7fé\ud800', max_size=40))
@settings(max_examples=500)
def test_json_fast_path_refuses_what_the_standard_library_refuses(text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")  # lone surrogates make invalid UTF-8
    assert _json_outcome(jose.json_loads, raw) == _json_outcome(_strict_json, raw)


@pytest.mark.parametrize(
    "raw",
    [b'["\\ud800"]', b'["\\ud83d\\ude00"]', b"[1e400]", b"-0", b"[-0.0]", b"1" * 4300, b"1" * 4301,
     b"\xef\xbb\xbf[1]", b'["a\tb"]', b'["\xed\xa0\x80"]', b"[NaN]", b"[-Infinity]", b"[1,]", b"[01]",
     b'["x",{"a":1,"a":2}]', b'{"a":1,"a":1}', b'{"\\u0061":1,"a":1}', b'{"a":{"b":[],"b":[]}}',
     b'{"a":1e400}', b'{"a":' + b"1" * 30 + b"}", b'{"a":1.0}', b'{"a":1e16}', b'{"\\u00e9":"\\n"}',
     b"[" * 101 + b"]" * 101, b"[" * 100 + b"]" * 100, b"[" * 50 + b"{}" + b"]" * 50],
)
def test_json_fast_path_edge_cases(raw: bytes) -> None:
    def strict(raw: bytes) -> Any:
        try:
            if jose._too_deep(raw.decode()):
                raise ValueError("too deep")
            return jose._DECODER.decode(raw.decode())
        except RecursionError as exc:
            raise ValueError("too deep") from exc

    assert _json_outcome(jose.json_loads, raw) == _json_outcome(strict, raw)


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_b64url_decode_all_is_b64url_decode_of_each(parts: list[bytes]) -> None:
    encoded = [b64url(p) for p in parts]
    assert jose.b64url_decode_all(encoded) == parts
    assert jose.b64url_decode_all(encoded, alphabet_checked=True) == parts


@pytest.mark.parametrize("bad", ["A", "AB=", "A+B/", "AB C", "AF", "AAF", "A.B", "AA~", "ÀB", ""])
def test_b64url_decode_all_refuses_what_b64url_decode_refuses(bad: str) -> None:
    # a bad part anywhere among good ones; "" alone decodes (to b""), as with b64url_decode
    if bad == "":
        assert jose.b64url_decode_all(["AA", ""]) == [b"\0", b""]
        return
    for at in range(3):
        parts = ["AAEC", "AA"]
        parts.insert(at, bad)
        assert code_of(jose.b64url_decode_all, parts) == "malformed"


def test_sha256_is_over_the_ascii_disclosure() -> None:
    enc = RFC_FAMILY_NAME
    assert disclosure_digest(enc) == b64url(hashlib.sha256(enc.encode("ascii")).digest())
    assert disclosure_digest(enc) != b64url(hashlib.sha256(b64url_decode(enc)).digest())


# --- interoperability with the reference implementation (PyPI sd-jwt) ----------------


def test_interop_reference_verifier_accepts_ours() -> None:
    pytest.importorskip("sd_jwt")
    from jwcrypto.jwk import JWK
    from sd_jwt.verifier import SDJWTVerifier

    issuer_jwk = JWK.from_json(json.dumps(jose.ed25519_jwk(ISSUER_KEY.public_key())))
    issued = issue(transcript(), key=ISSUER_KEY, kid="k", holder_jwk=HOLDER_JWK, decoys=1)
    for keep in (lambda p, v: True, lambda p, v: p[-1] == "grade", lambda p, v: False):
        pres = select(issued.compact, keep)
        ours = verify(pres, issuer_key=issuer_key).claims
        theirs = SDJWTVerifier(pres, lambda iss, header: issuer_jwk).get_verified_payload()
        assert theirs == ours


def test_interop_we_accept_reference_issued_and_presented() -> None:
    pytest.importorskip("sd_jwt")
    from jwcrypto.jwk import JWK
    from sd_jwt.common import SDObj
    from sd_jwt.holder import SDJWTHolder
    from sd_jwt.issuer import SDJWTIssuer

    issuer_jwk = JWK.generate(kty="OKP", crv="Ed25519")
    holder_jwk = JWK.generate(kty="OKP", crv="Ed25519")
    claims = {
        "iss": "https://issuer.example",
        SDObj("given_name"): "Möbius",
        "address": {SDObj("locality"): "Anytown", SDObj("country"): "DE"},
        "nationalities": [SDObj("DE"), "FR", SDObj("US")],
    }
    ref = SDJWTIssuer(claims, issuer_jwk, holder_key=holder_jwk, sign_alg="EdDSA", add_decoy_claims=True)
    pub = jose.jwk_to_ed25519(json.loads(issuer_jwk.export_public()))
    v = verify(ref.sd_jwt_issuance, issuer_key=lambda h, p: pub)
    assert v.claims["given_name"] == "Möbius"
    assert v.claims["address"] == {"locality": "Anytown", "country": "DE"}
    assert v.claims["nationalities"] == ["DE", "FR", "US"]
    holder = SDJWTHolder(ref.sd_jwt_issuance)
    holder.create_presentation(
        {"address": {"country": True}, "nationalities": [True, None, False]},
        nonce="n-42",
        aud="https://verifier",
        holder_key=holder_jwk,
        sign_alg="EdDSA",
    )
    v = verify(
        holder.sd_jwt_presentation,
        issuer_key=lambda h, p: pub,
        require_key_binding=True,
        aud="https://verifier",
        nonce="n-42",
    )
    assert v.claims["address"] == {"country": "DE"} and v.claims["nationalities"] == ["DE", "FR"]
    assert "given_name" not in v.claims and v.key_binding is not None
    assert (
        code_of(verify, holder.sd_jwt_presentation, issuer_key=lambda h, p: pub, aud="https://elsewhere")
        == "holder_binding_invalid"
    )
