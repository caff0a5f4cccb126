"""Portrait photos of identity cards: checked, committed to, and kept off chain encrypted.

A portrait is a JPEG, PNG or WebP file of at most ``MAX_PHOTO_BYTES``, that decodes as an
image of a sensible size (``MIN_SIDE`` to ``MAX_SIDE`` pixels a side). The file is kept as
it was given (its bytes are what the commitment is of), never re-encoded.

On chain goes only ``portrait = keccak256(salt || sha256(photo file))``, with a 32-byte salt
known to the issuer and the holder (the card carries it): the commitment says nothing of the
photo, and a relying party that is shown the photo and the salt checks it against the chain.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings

from ledger.errors import InvalidInput, TooLarge
from ledger.merkle import keccak256

__all__ = ["MAX_PHOTO_BYTES", "PHOTO_TYPES", "check_photo", "new_portrait_salt", "portrait_commitment"]

MAX_PHOTO_BYTES = 2 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 64, 6000
PHOTO_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def check_photo(data: bytes, *, name: str = "the photo") -> str:
    """The photo's media type, or InvalidInput (``bad_photo``) / TooLarge with the reason."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise InvalidInput(f"{name} is empty", code="bad_photo")
    if len(data) > MAX_PHOTO_BYTES:
        raise TooLarge(f"{name} is {len(data)} bytes; a portrait is at most {MAX_PHOTO_BYTES // 1024} KiB",
                       code="photo_too_large")
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind, (width, height) = image.format, image.size
                image.verify()  # the whole file decodes (a truncated or corrupt one fails)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise InvalidInput(f"{name} is not a JPEG, PNG or WebP image", code="bad_photo") from None
    if kind not in PHOTO_TYPES:
        raise InvalidInput(f"{name} is a {kind} image; a portrait is JPEG, PNG or WebP", code="bad_photo")
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InvalidInput(f"{name} is {width}x{height} pixels; each side must be {MIN_SIDE} to {MAX_SIDE}",
                           code="bad_photo")
    return PHOTO_TYPES[kind]


def new_portrait_salt() -> bytes:
    return secrets.token_bytes(32)


def portrait_commitment(salt: bytes, photo: bytes) -> bytes:
    """keccak256(salt || sha256(photo)): what the identity registry holds of a portrait."""
    if len(salt) != 32:
        raise InvalidInput("a portrait salt is 32 bytes", code="bad_portrait_salt")
    return keccak256(salt + hashlib.sha256(photo).digest())
