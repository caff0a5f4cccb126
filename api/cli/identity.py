"""`eduledger identity ...`: an organisation's commands about identity cards, over a node's API.

``send-document`` sends a file to a card's holder: the node encrypts it to the holder's
encryption key (a JWE only the holder's wallet opens) and keeps only the ciphertext. The
API comes from --api or EDULEDGER_API_URL, the organisation's API key from EDULEDGER_API_KEY.
"""

from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path

from api.cli.common import Subcommands
from ledger.errors import ConfigError, InvalidInput
from ledger.settings import ClientSettings
from wallet.client import ApiClient

__all__ = ["add_identity_commands"]


def cmd_send_document(args: argparse.Namespace) -> int:
    settings = ClientSettings()
    url = args.api or settings.api_url
    if not url:
        raise ConfigError("no API URL: give --api URL or set EDULEDGER_API_URL")
    if settings.api_key is None or not settings.api_key.get_secret_value():
        raise ConfigError("no API key: set EDULEDGER_API_KEY to the organisation's key")
    path = Path(args.file)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", code="unreadable_document") from None
    media = args.media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    with ApiClient(url, timeout=60) as client:
        sent = client.send_document(settings.api_key.get_secret_value(), args.card, content,
                                    filename=args.name or path.name, media_type=media)
    print(f"sent {path.name} ({media}, {len(content)} bytes) to card {args.card}: document "
          f"{sent['document_id']}, encrypted to the holder's key {sent['kid']}")
    return 0


def add_identity_commands(subparsers: Subcommands) -> argparse.ArgumentParser:
    identity = subparsers.add_parser(
        "identity", help="identity cards: an organisation's commands over a node's API",
        description="The API comes from --api or EDULEDGER_API_URL, the organisation's API key "
                    "from EDULEDGER_API_KEY.")
    sub = identity.add_subparsers(dest="identity_command", required=True, metavar="COMMAND")
    p = sub.add_parser("send-document", help="send a file to a card's holder, encrypted to their key")
    p.add_argument("card", metavar="CARD", help="the card id (0x and 64 hex digits)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--name", help="the name the holder sees (default: the file's)")
    p.add_argument("--media-type", help="its media type (default: guessed from the name)")
    p.add_argument("--api", metavar="URL", help="base URL of the node's API (default: $EDULEDGER_API_URL)")
    p.set_defaults(func=cmd_send_document)
    return identity
