"""QR codes for share links: PNG and SVG out, PNG in.

Codes use error correction level M (15 % of the symbol may be damaged), the usual choice
for links shown on a screen or printed on paper. Text is encoded as UTF-8 in byte mode,
so Chinese text round-trips (zxing-cpp, and phone scanners, detect UTF-8 by themselves).
"""

from __future__ import annotations

import io
from typing import Any

import qrcode
import qrcode.constants
import qrcode.image.svg

from ledger.errors import InvalidInput

ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
# Version 40 at level M holds 2331 bytes; beyond that no QR code exists.
MAX_BYTES = 2331
# A card's answer to a challenge is shown on the holder's own screen, held to the scanner:
# level L (7 %) is enough there, and it holds 2953 bytes.
LEVELS = {"M": (qrcode.constants.ERROR_CORRECT_M, MAX_BYTES), "L": (qrcode.constants.ERROR_CORRECT_L, 2953)}
SVG_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _qr(text: str, box_size: int, border: int, level: str = "M") -> qrcode.QRCode[Any]:
    if not isinstance(text, str) or not text:
        raise InvalidInput("a QR code needs some text", code="invalid_qr_text")
    correction, most = LEVELS[level]
    if len(text.encode("utf-8")) > most:
        raise InvalidInput(
            f"text too long for a QR code ({len(text.encode('utf-8'))} bytes, at most {most})",
            code="invalid_qr_text",
        )
    if not (isinstance(box_size, int) and 1 <= box_size <= 100):
        raise InvalidInput(f"box_size must be 1..100, not {box_size!r}", code="invalid_qr_option")
    if not (isinstance(border, int) and 0 <= border <= 100):
        raise InvalidInput(f"border must be 0..100, not {border!r}", code="invalid_qr_option")
    code: qrcode.QRCode[Any] = qrcode.QRCode(
        error_correction=correction, box_size=box_size, border=border
    )
    code.add_data(text)
    code.make(fit=True)
    return code


def qr_png(text: str, *, box_size: int = 8, border: int = 4, level: str = "M") -> bytes:
    """A PNG image (black on white) of a QR code holding `text`.

    `box_size` is the number of pixels per module, `border` the quiet zone in modules
    (4 is the minimum the QR standard asks for).
    """
    image = _qr(text, box_size, border, level).make_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(text: str, *, border: int = 4) -> str:
    """A standalone SVG document of a QR code holding `text`: one <path>, scalable.

    Its size is given in millimetres (1 mm per module at box_size 10) and by a viewBox,
    so it can be embedded in a page or printed at any size.
    """
    image = _qr(text, 10, border).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    body = image.to_string(encoding="unicode")
    return SVG_XML_DECLARATION + body + "\n"


def decode_qr_png(png: bytes) -> list[str]:
    """The texts of the QR codes found in a PNG (or any image Pillow reads); [] if none."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as opened:
            image = opened.convert("L")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInput(f"not a readable image: {exc}", code="invalid_image") from None
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [barcode.text for barcode in found if barcode.valid]
