"""PDF signatures through pyHanko: a PAdES signature (CMS, ETSI.CAdES.detached) embedded in
the PDF, with a visible stamp, and the embedded signatures read back with their integrity.

Signing is an incremental update, so a PDF may be signed several times (a teacher signs
the grade sheet, then the school seals it); each signature gets its own field and stamp.
The stamp text is Chinese and English, set in a CJK OpenType font (Noto Sans CJK SC, the
Debian package fonts-noto-cjk; its face is taken out of the font collection once, into the
cache directory). Without that font the stamp is set in English alone.

Reading answers, for each embedded signature, what pyHanko's validator finds of its
integrity (the digest of the signed byte ranges, the signature over the signed attributes,
what changed in the file after it), its certificate and its raw signature value. Who signed
and whether they were valid then is not decided here but from the chain.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import InvalidInput

with warnings.catch_warnings():  # pyHanko imports cryptography's deprecated DSA module
    warnings.simplefilter("ignore")
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.font.api import FontEngineFactory
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.sign import fields, signers
    from pyhanko.sign.diff_analysis.policy_api import ModificationLevel
    from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko.stamp import TextStampStyle
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import SimpleCertificateStore

__all__ = ["PdfSignatureRead", "is_pdf", "read_pdf_signatures", "sign_pdf", "stamp_lines"]

log = logging.getLogger("eduledger.signatures")

FIELD_PREFIX = "eduledger-signature-"
_CJK_COLLECTIONS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
_CJK_FACE = "Noto Sans CJK SC"
_font_lock = threading.Lock()
_font_path: list[Path | None] = []  # [] = not looked for yet
STAMP_WIDTH, STAMP_HEIGHT, MARGIN = 250, 90, 36


def is_pdf(document: bytes) -> bool:
    return document[:1024].lstrip().startswith(b"%PDF-")


def _font_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eduledger" / "fonts"


def cjk_font() -> Path | None:
    """A single-face CJK OpenType font for stamps, or None when the system has none."""
    with _font_lock:
        if _font_path:
            return _font_path[0]
        found: Path | None = None
        target = _font_cache() / "NotoSansCJKsc-Regular.otf"
        if target.is_file():
            found = target
        else:
            for collection in _CJK_COLLECTIONS:
                if Path(collection).is_file():
                    try:
                        found = _extract_face(Path(collection), target)
                        break
                    except (OSError, ValueError) as exc:
                        log.warning("cannot take the CJK face out of %s: %s", collection, exc)
        if found is None:
            log.warning("no CJK font (install fonts-noto-cjk): signature stamps are set in English only")
        _font_path.append(found)
        return found


def _extract_face(collection: Path, target: Path) -> Path:
    from fontTools.ttLib import TTCollection

    fonts = TTCollection(str(collection)).fonts
    face = next((f for f in fonts if f["name"].getDebugName(1) == _CJK_FACE), fonts[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    face.save(str(partial))
    partial.replace(target)
    return target


def _asn1_cert(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _reader(document: bytes) -> PdfFileReader:
    if not is_pdf(document):
        raise InvalidInput("the document is not a PDF file", code="not_a_pdf")
    try:
        reader = PdfFileReader(io.BytesIO(document), strict=False)
        reader.root  # noqa: B018 - parse the trailer and catalogue now
    except Exception as exc:  # pyHanko raises many kinds of errors on a broken file
        raise InvalidInput(f"the PDF cannot be read: {str(exc)[:200]}", code="malformed_pdf") from None
    if reader.encrypted:
        raise InvalidInput("the PDF is encrypted; sign or verify the unencrypted file", code="encrypted_pdf")
    return reader


def sign_pdf(
    document: bytes,
    *,
    private_key: Ed25519PrivateKey,
    certificate: x509.Certificate,
    chain: list[x509.Certificate],
    stamp_lines: list[str],
    stamp_lines_en: list[str],
    reason: str,
    location: str | None = None,
) -> bytes:
    """`document` with one more signature (Ed25519, PAdES) and its visible stamp."""
    reader = _reader(document)
    try:
        existing = len(reader.embedded_signatures)
        writer = IncrementalPdfFileWriter(io.BytesIO(document), strict=False)
    except Exception as exc:  # a file pyHanko can read but not update
        raise InvalidInput(f"the PDF cannot be signed: {str(exc)[:200]}", code="malformed_pdf") from None
    key_der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=_asn1_cert(certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [_asn1_cert(c) for c in chain]),
    )
    font = cjk_font()
    lines = stamp_lines if font is not None else stamp_lines_en
    style = TextStampStyle(
        stamp_text="\n".join(line.replace("%", "%%") for line in lines),
        border_width=2,
        text_box_style=TextBoxStyle(font=_font_factory(font)) if font is not None else TextBoxStyle(),
    )
    # Stamps of later signatures stack upwards from the bottom right corner of page 1.
    y = MARGIN + existing * (STAMP_HEIGHT + 8)
    box = (595 - MARGIN - STAMP_WIDTH, y, 595 - MARGIN, y + STAMP_HEIGHT)
    name = f"{FIELD_PREFIX}{existing + 1}"
    meta = PdfSignatureMetadata(
        field_name=name,
        md_algorithm="sha512",
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    try:
        out = PdfSigner(
            meta,
            signer=signer,
            stamp_style=style,
            new_field_spec=fields.SigFieldSpec(name, on_page=0, box=box),
        ).sign_pdf(writer)
    except Exception as exc:  # a PDF pyHanko reads but cannot place a field in
        raise InvalidInput(f"the PDF cannot be signed: {str(exc)[:200]}", code="malformed_pdf") from None
    return bytes(out.getvalue())


def stamp_lines(
    *, seal: bool, signer_name: str, role_zh: str, role_en: str, detail: str | None, when: int
) -> tuple[list[str], list[str]]:
    """The stamp's text, Chinese and English (and English alone, for want of a CJK font).
    The time is the signer's own clock in Beijing time; the anchor on chain is the evidence."""
    from datetime import UTC

    from ledger.credentials.types import CHINA_TZ

    stamped = datetime.fromtimestamp(when, UTC).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
    what_zh, what_en = ("电子签章", "Electronic seal") if seal else ("电子签名", "Electronic signature")
    lines = [
        signer_name,
        f"{what_zh} {what_en}",
        f"{role_zh} {role_en}" + (f" · {detail}" if detail else ""),
        f"北京时间 Beijing time {stamped} (UTC+8)",
        "eduledger 区块链存证 anchored on chain",
    ]
    ascii_name = signer_name.encode("ascii", "ignore").decode().strip(" ()") or "eduledger member"
    lines_en = [
        ascii_name,
        what_en,
        role_en + (f" - {detail}" if detail else ""),
        f"Beijing time {stamped} (UTC+8)",
        "anchored on chain (eduledger)",
    ]
    return lines, lines_en


def _font_factory(path: Path) -> FontEngineFactory:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory

    return GlyphAccumulatorFactory(str(path), font_size=9)


@dataclass(frozen=True)
class PdfSignatureRead:
    """One embedded signature as read from the file."""

    field: str
    certificate: x509.Certificate | None
    signature_value: bytes
    claimed_time: datetime | None
    intact: bool  # the signed byte ranges hash to the signed digest
    valid: bool  # the signature over the signed attributes verifies with the certificate's key
    unchanged: bool  # nothing but signatures and form fields was added after it
    algorithm: str


def read_pdf_signatures(document: bytes) -> list[PdfSignatureRead]:
    """Every embedded signature of `document`, oldest first, with what its integrity is."""
    reader = _reader(document)
    try:
        embedded = list(reader.embedded_signatures)
    except Exception as exc:  # a broken signature dictionary
        raise InvalidInput(
            f"the PDF's signatures cannot be read: {str(exc)[:200]}", code="malformed_pdf"
        ) from None
    found = []
    for signature in embedded:
        found.append(_read_one(signature))
    return found


def _read_one(signature: object) -> PdfSignatureRead:
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    assert isinstance(signature, EmbeddedPdfSignature)
    try:
        cert_asn1 = signature.signer_cert
        certificate = x509.load_der_x509_certificate(cert_asn1.dump())
        value = bytes(signature.signer_info["signature"].native)
        claimed = signature.self_reported_timestamp
        algorithm = str(signature.signer_info["signature_algorithm"]["algorithm"].native)
    except Exception:  # a CMS object without what a signature needs
        return PdfSignatureRead(signature.field_name, None, b"", None, False, False, False, "?")
    try:
        roots = [c for c in signature.signed_data["certificates"] if c.name == "certificate"]
        context = ValidationContext(
            trust_roots=[c.chosen for c in roots] or [cert_asn1],
            allow_fetching=False,
            revocation_mode="soft-fail",
        )
        status = validate_pdf_signature(signature, signer_validation_context=context)
        coverage_ok = (
            status.coverage is not None and status.coverage >= SignatureCoverageLevel.ENTIRE_REVISION
        )
        level = status.modification_level
        unchanged = coverage_ok and (
            status.coverage is SignatureCoverageLevel.ENTIRE_FILE
            or (level is not None and level <= ModificationLevel.FORM_FILLING)
        )
        intact, valid = bool(status.intact), bool(status.valid)
    except Exception as exc:  # the validator refuses what it cannot parse: not a valid signature
        log.info("PDF signature %s does not validate: %s", signature.field_name, exc)
        intact = valid = unchanged = False
    return PdfSignatureRead(
        signature.field_name, certificate, value, claimed, intact, valid, unchanged, algorithm
    )
