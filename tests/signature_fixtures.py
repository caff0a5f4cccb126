"""Documents and helpers for signature tests: a grade-sheet PDF made with reportlab, a CSV,
a teacher with a card claimed into a real wallet, and an independent PDF signature check
(pypdf reads the byte ranges and the CMS, asn1crypto parses it, cryptography verifies the
Ed25519 signature: no pyHanko)."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from tests.identity_fixtures import photo, teacher
from wallet.holder import Wallet

pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))


def grade_sheet(term: str = "2025-2026学年第一学期", rows: int = 5) -> bytes:
    """A grade sheet PDF: class 七年级2班, a few students' marks."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.setFont("STSong-Light", 16)
    page.drawString(72, 780, f"成绩单 Grade sheet · 七年级2班 · {term}")
    page.setFont("STSong-Light", 12)
    for i in range(rows):
        page.drawString(72, 740 - 20 * i, f"学生{i:04d}   数学 {80 + i}   物理 {75 + i}")
    page.showPage()
    page.save()
    return out.getvalue()


def marks_csv() -> bytes:
    return "学生,数学,物理\n学生0001,91,88\n学生0002,85,90\n".encode()


def teacher_wallet(served: Any, directory: Path, n: int = 1) -> tuple[Wallet, str]:
    """A teacher card issued by school-a and claimed into a new wallet: (wallet, card id)."""
    school = served.as_org("school-a")
    row = {k: v for k, v in teacher(n).items() if k != "photo"} | {
        "photo_base64": base64.b64encode(photo(n)).decode()
    }
    issued = served.http.post("/v1/identity/cards", params={"kind": "teacher"}, json=[row], headers=school)
    assert issued.status_code == 201, issued.text
    card = issued.json()["cards"][0]
    wallet = Wallet.create(directory, "wallet passphrase", scrypt_n=2**10)
    claimed = served.http.post(
        "/v1/identity/claims/redeem", json={"code": card["claim_code"], "holder_jwk": wallet.holder_jwk}
    )
    assert claimed.status_code == 200, claimed.text
    wallet.add_card(claimed.json())
    return wallet, card["card_id"]


def independent_pdf_check(document: bytes) -> list[dict[str, Any]]:
    """Each PDF signature checked without pyHanko: the signed byte ranges' SHA-512 is the
    CMS messageDigest, and the Ed25519 signature over the DER of the signed attributes
    verifies with the certificate's key. Returns the signer certificates' subjects."""
    reader = PdfReader(io.BytesIO(document))
    found = []
    for field in (reader.get_fields() or {}).values():
        value = field.get("/V")
        if field.get("/FT") != "/Sig" or value is None:
            continue
        sig = value.get_object()
        start1, len1, start2, len2 = (int(x) for x in sig["/ByteRange"])
        signed = document[start1 : start1 + len1] + document[start2 : start2 + len2]
        # /Contents is the DER padded with zeros; load reads one value and ignores the padding
        # (stripping the zeros would also cut a signature that happens to end in 0x00).
        content = cms.ContentInfo.load(bytes(sig["/Contents"]))
        signed_data = content["content"]
        signer = signed_data["signer_infos"][0]
        attrs = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
        assert attrs["message_digest"].native == hashlib.sha512(signed).digest()
        der_cert = signed_data["certificates"][0].chosen.dump()
        for choice in signed_data["certificates"]:
            if choice.chosen.serial_number == signer["sid"].chosen["serial_number"].native:
                der_cert = choice.chosen.dump()
        cert = x509.load_der_x509_certificate(der_cert)
        public = cert.public_key()
        assert isinstance(public, Ed25519PublicKey)
        signed_attrs = signer["signed_attrs"].untag().dump(force=True)  # as a SET OF (RFC 5652 5.4)
        public.verify(signer["signature"].native, signed_attrs)
        found.append(
            {
                "subject": cert.subject.rfc4514_string(),
                "signed_bytes": len(signed),
                "covers_file": start2 + len2 == len(document),
            }
        )
    return found
