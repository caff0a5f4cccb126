"""`eduledger wallet ...`: the holder's commands.

Each command returns an exit code and raises a LedgerError subclass (WalletError) on
failure; the main CLI prints its message on one line and exits 2.

The wallet passphrase comes from EDULEDGER_WALLET_PASSPHRASE or the file named by
EDULEDGER_WALLET_PASSPHRASE_FILE; the wallet directory from --wallet-dir,
EDULEDGER_WALLET_DIR or ~/.eduledger/wallet; the API from --api or EDULEDGER_API_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from api.cli.common import Subcommands, print_table, write_private
from ledger.credentials.types import CHINA_TZ
from ledger.settings import WalletSettings
from wallet.client import MAX_DAYS, MIN_DAYS, ApiClient
from wallet.holder import EncryptionKey, ShareRecord, Wallet, WalletError, dotted
from wallet.qr import qr_png, qr_svg

API_ENV = "EDULEDGER_API_URL"


def _api_url(args: argparse.Namespace, fallback: str = "") -> str:
    url = getattr(args, "api", None) or fallback or WalletSettings().api_url
    if not url:
        raise WalletError(f"no API URL: give --api URL or set {API_ENV}", code="no_api_url")
    return str(url)


def _open(args: argparse.Namespace) -> Wallet:
    return Wallet.open(args.wallet_dir)


SHOW_WIDTH = 100


def _value(value: Any) -> str:
    """A claim value on one line; a long object or list is summarised (its parts follow)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if len(text) <= SHOW_WIDTH:
        return text
    if isinstance(value, dict):
        return f"{{{len(value)} fields}}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    return text


def _check_output(path: str | None, option: str) -> Path | None:
    if not path:
        return None
    target = Path(path).expanduser()
    if target.is_dir():
        raise WalletError(f"{option} {target} is a directory; give a file name", code="invalid_output")
    if not target.parent.is_dir():
        raise WalletError(f"{option}: no directory {target.parent}", code="invalid_output")
    return target


def _write_file(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise WalletError(f"cannot write {path}: {exc.strerror}", code="invalid_output") from None


def _write_output(path: Path, data: bytes, share_url: str) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise WalletError(
            f"the share was made ({share_url}) but the QR code could not be written to {path}: "
            f"{exc.strerror}",
            code="invalid_output",
        ) from None


# --------------------------------------------------------------------------- commands


def cmd_create(args: argparse.Namespace) -> int:
    wallet = Wallet.create(args.wallet_dir)
    print(f"created a wallet in {wallet.directory}")
    print(f"holder key thumbprint {wallet.thumbprint}")
    return 0


def cmd_redeem(args: argparse.Namespace) -> int:
    wallet = _open(args)
    with ApiClient(_api_url(args)) as client:
        answer = client.redeem(args.code, wallet.holder_jwk)
    issuer = answer.get("issuer")
    record = wallet.add_credential(
        answer["credential"],
        credential_id=answer["credential_id"],
        type=str(answer.get("type") or ""),
        issuer=issuer if isinstance(issuer, dict) else str(issuer or ""),
        anchor=answer.get("anchor") if isinstance(answer.get("anchor"), dict) else None,
    )
    print(f"received {record.type or 'a credential'} from {record.issuer_name or 'an unnamed issuer'}")
    print(f"credential id {record.credential_id}")
    return 0


def cmd_claim_card(args: argparse.Namespace) -> int:
    wallet = _open(args)
    encryption = EncryptionKey.generate()  # documents to the card are encrypted to it
    with ApiClient(_api_url(args)) as client:
        answer = client.redeem_card(args.code, wallet.holder_jwk, encryption.jwk)
    record = wallet.add_card(answer, encryption)
    print(f"received a {answer.get('kind', '')} card from {record.issuer_name or 'an unnamed issuer'}")
    print(f"card id {record.credential_id} (its portrait is kept beside it)")
    print(f"documents to it are encrypted to key {encryption.kid}")
    return 0


def _beijing(text: object) -> str:
    """An RFC 3339 time from the API as people here read it: Beijing time, zone named."""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return str(text)
    return when.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S") + " 北京时间 (UTC+8)"


def _document_name(wallet: Wallet, document: dict[str, object]) -> str:
    try:
        return wallet.open_document(str(document.get("name_jwe", "")))[0].decode("utf-8")
    except (WalletError, UnicodeDecodeError):
        return "(cannot open: another wallet's key)"


def cmd_documents(args: argparse.Namespace) -> int:
    """The documents sent to a card, their names decrypted here."""
    wallet = _open(args)
    record = wallet.get(args.id)
    with ApiClient(_api_url(args)) as client:
        found = client.documents(wallet, record.credential_id)
    if not found:
        print(f"no documents for card {record.credential_id}")
        return 0
    rows: list[list[object]] = [["DOCUMENT", "NAME 名称", "TYPE", "BYTES", "FROM 发送方", "SENT 发送时间"]]
    rows += [[d.get("document_id"), _document_name(wallet, d), d.get("media_type"), d.get("size"),
              d.get("sender_org"), _beijing(d.get("created_at"))] for d in found]
    print_table(rows)
    return 0


def _new_file(path: Path, data: bytes) -> None:
    """Write a decrypted document to a new file only its owner reads (mode 0600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except FileExistsError:
        raise WalletError(f"{path} exists already; give another --out", code="invalid_output") from None
    except OSError as exc:
        raise WalletError(f"cannot write {path}: {exc.strerror}", code="invalid_output") from None


def cmd_open_document(args: argparse.Namespace) -> int:
    """Download a document sent to a card and decrypt it with the card's encryption key."""
    out = _check_output(args.out, "--out")
    wallet = _open(args)
    record = wallet.get(args.id)
    with ApiClient(_api_url(args)) as client:
        document = client.document(wallet, record.credential_id, args.document_id)
    content, header = wallet.open_document(str(document["jwe"]))
    name = wallet.open_document(str(document["name_jwe"]))[0].decode("utf-8", "replace")
    if out is None:
        out = Path(Path(name).name or "document")  # its own name, in the current directory
    _new_file(out, content)
    print(f"opened {name!r} ({header.get('cty', document.get('media_type'))}, {len(content)} bytes) "
          f"from {document.get('sender_org')}: written to {out}")
    return 0


def cmd_card_history(args: argparse.Namespace) -> int:
    """The card's history as the chain has it, read by its holder."""
    wallet = _open(args)
    record = wallet.get(args.id)
    with ApiClient(_api_url(args)) as client:
        trace = client.card_history(wallet, record.credential_id, check_chain=args.check_chain)
    print(f"card {trace['card_id']} ({trace.get('kind')}, {trace.get('status')}, issued by "
          f"{trace.get('issuer_org')})")
    chain = args.check_chain
    header: list[object] = ["BLOCK", "TIME 时间", "ACTION", "STATUS", "BY"]
    rows: list[list[object]] = [header + (["CHAIN"] if chain else [])]
    for entry in trace["history"]:
        rows.append([entry.get("block_number"), _beijing(entry.get("block_time")), entry.get("action"),
                     entry.get("status"), entry.get("actor")] + ([entry.get("chain")] if chain else []))
    print_table(rows)
    for label, other in (("continues", trace.get("predecessor")), ("continued by", trace.get("successor"))):
        if other:
            print(f"{label} card {other}")
    return 0


def cmd_present(args: argparse.Namespace) -> int:
    """Answer a relying party's challenge with a card: the presentation to a file or a QR code."""
    out = _check_output(args.out, "--out")
    png = _check_output(args.qr_png, "--qr-png")
    wallet = _open(args)
    record = wallet.get(args.id)
    with ApiClient(_api_url(args)) as client:
        challenge = client.challenge(args.challenge)
        presentation = wallet.answer_challenge(record.credential_id, challenge)
        if out is None and png is None:  # answered online: the relying party asks for the verdict
            # An exam's proctor asks for the portrait file, to see who is at the desk.
            photo = wallet.portrait(record.credential_id) if challenge.get("photo") and not args.no_photo \
                else None
            client.answer(args.challenge, presentation, photo=photo)
            print(f"answered {challenge['audience']}'s challenge with card {record.credential_id}"
                  + (" and its portrait photo, as it asks" if photo is not None else ""))
            return 0
    if out is not None:
        _write_file(out, presentation.encode("utf-8"))
        print(f"presentation for {challenge['audience']} written to {out}")
    if png is not None:
        _write_file(png, qr_png(presentation, box_size=4, level="L"))
        print(f"presentation as a QR code (PNG) in {png}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    credentials = _open(args).list_credentials()
    if not credentials:
        print("no credentials yet; redeem a claim code with `eduledger wallet redeem CODE --api URL`")
        return 0
    rows = [["ID", "TYPE", "ISSUER", "RECEIVED"]]
    rows += [[c.credential_id, c.type, c.issuer_name, c.received_at] for c in credentials]
    print_table(rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    wallet = _open(args)
    record = wallet.get(args.id)
    print(f"credential {record.credential_id}")
    print(f"type       {record.type}")
    print(f"issuer     {record.issuer_name}")
    print(f"received   {record.received_at}")
    claims = wallet.claims(record.credential_id)
    print(f"{len(claims)} disclosable claims (share them with --claims PATH ...):")
    for path, value in claims:
        print(f"  {dotted(path)} = {_value(value)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A credential as a file `eduledger verify` and POST /v1/verify check (mode 0600: it
    holds every claim); to standard output without --out."""
    out = _check_output(args.out, "--out")
    wallet = _open(args)
    record = wallet.get(args.id)
    doc = wallet.export(record.credential_id)
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    if doc["anchor"] is None:
        print(f"note: credential {record.credential_id} came without its anchor proof (its batch was "
              "not anchored yet); a node finds it when the file is checked with POST /v1/verify",
              file=sys.stderr)
    if out is None:
        sys.stdout.write(text)
        return 0
    write_private(str(out), text)
    print(f"credential {record.credential_id} written to {out} (every claim: keep it private)")
    print(f"check it: eduledger verify {out} --rpc URL --registry ADDRESS")
    return 0


def cmd_share(args: argparse.Namespace) -> int:
    png_path = _check_output(args.qr_png, "--qr-png")
    svg_path = _check_output(args.qr_svg, "--qr-svg")
    wallet = _open(args)
    record = wallet.get(args.id)
    with ApiClient(_api_url(args)) as client:
        presentation = wallet.present(record.credential_id, args.claims, aud=client.base_url)
        answer = client.create_share(presentation, args.days)
        share = wallet.record_share(record.credential_id, answer, api=client.base_url, claims=args.claims)
    print(f"share {share.share_id} of {record.credential_id} ({len(args.claims)} claims chosen)")
    print(f"url      {share.url}")
    print(f"expires  {share.expires_at}")
    if png_path is not None:
        _write_output(png_path, qr_png(share.url), share.url)
        print(f"QR code (PNG) saved to {png_path}")
    if svg_path is not None:
        _write_output(svg_path, qr_svg(share.url).encode("utf-8"), share.url)
        print(f"QR code (SVG) saved to {svg_path}")
    if png_path is None and svg_path is None and share.qr_png_url:
        print(f"QR code  {share.qr_png_url}")
    print(f"withdraw it with `eduledger wallet withdraw {share.share_id}`")
    return 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    wallet = _open(args)
    share = wallet.get_share(args.share_id)
    with ApiClient(_api_url(args, fallback=share.api)) as client:
        client.withdraw_share(share.share_id, share.withdraw_token)
    wallet.forget_share(share.share_id)
    print(f"withdrew share {share.share_id}: {share.url} no longer verifies")
    return 0


def _share_row(share: ShareRecord) -> list[str]:
    expiry = share.expires_at + (" (expired)" if share.expired else "")
    return [share.share_id, share.credential_id, expiry, share.url]


def cmd_shares(args: argparse.Namespace) -> int:
    shares = _open(args).list_shares()
    if not shares:
        print("no shares")
        return 0
    print_table([["SHARE", "CREDENTIAL", "EXPIRES", "URL"]] + [_share_row(s) for s in shares])
    return 0


# --------------------------------------------------------------------------- parser


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"a share lasts {MIN_DAYS} to {MAX_DAYS} days, not {days}")
    return days


def add_wallet_commands(subparsers: Subcommands) -> argparse.ArgumentParser:
    """Register `wallet` and its subcommands on the main parser's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--wallet-dir", metavar="DIR",
                        help="wallet directory (default: $EDULEDGER_WALLET_DIR or ~/.eduledger/wallet)")
    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--api", metavar="URL",
                     help=f"base URL of the eduledger API (default: ${API_ENV})")

    wallet = subparsers.add_parser(
        "wallet", help="the holder wallet: credentials, shares and QR codes",
        description="Hold credentials and share chosen claims by link and QR code. The "
                    "passphrase comes from EDULEDGER_WALLET_PASSPHRASE or "
                    "EDULEDGER_WALLET_PASSPHRASE_FILE.",
    )
    sub = wallet.add_subparsers(dest="wallet_command", required=True, metavar="COMMAND")

    p = sub.add_parser("create", parents=[common], help="create a wallet with a new holder key")
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("redeem", parents=[common, api], help="receive a credential with a claim code")
    p.add_argument("code", metavar="CODE")
    p.set_defaults(func=cmd_redeem)

    p = sub.add_parser("claim-card", parents=[common, api],
                       help="receive an identity card (and its portrait) with a claim code")
    p.add_argument("code", metavar="CODE")
    p.set_defaults(func=cmd_claim_card)

    p = sub.add_parser("present", parents=[common, api],
                       help="answer a relying party's challenge with an identity card")
    p.add_argument("id", metavar="CARD", help="card id (a unique prefix will do)")
    p.add_argument("--challenge", required=True, metavar="ID",
                   help="the challenge id (from its QR code or link)")
    p.add_argument("--out", metavar="FILE", help="write the presentation here instead of sending it")
    p.add_argument("--qr-png", metavar="FILE",
                   help="show the presentation as a QR code instead of sending it (offline checks; "
                        "only a card with few claims asked fits one)")
    p.add_argument("--no-photo", action="store_true",
                   help="do not send the card's portrait photo, even when the challenge asks for it")
    p.set_defaults(func=cmd_present)

    p = sub.add_parser("documents", parents=[common, api],
                       help="list the documents organisations sent to a card (encrypted to it)")
    p.add_argument("id", metavar="CARD", help="card id (a unique prefix will do)")
    p.set_defaults(func=cmd_documents)

    p = sub.add_parser("open-document", parents=[common, api],
                       help="download a document sent to a card and decrypt it")
    p.add_argument("id", metavar="CARD", help="card id (a unique prefix will do)")
    p.add_argument("document_id", metavar="DOCUMENT", help="document id (from `wallet documents`)")
    p.add_argument("--out", metavar="FILE",
                   help="write it here (default: its own name in the current directory); never overwrites")
    p.set_defaults(func=cmd_open_document)

    p = sub.add_parser("card-history", parents=[common, api],
                       help="a card's history on chain (issued, key bound or rotated, status changes)")
    p.add_argument("id", metavar="CARD", help="card id (a unique prefix will do)")
    p.add_argument("--check-chain", action="store_true", help="re-read every entry from the chain")
    p.set_defaults(func=cmd_card_history)

    p = sub.add_parser("list", parents=[common], help="list the credentials and cards held")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common], help="show a credential's claims and their paths")
    p.add_argument("id", metavar="ID", help="credential id (a unique prefix will do)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", parents=[common],
                       help="write a credential as a file that `eduledger verify` checks")
    p.add_argument("id", metavar="ID", help="credential id (a unique prefix will do)")
    p.add_argument("--out", metavar="FILE", help="write it here (mode 0600); default: standard output")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("share", parents=[common, api],
                       help="share chosen claims as a link and QR code that expire")
    p.add_argument("id", metavar="ID", help="credential id (a unique prefix will do)")
    p.add_argument("--claims", nargs="+", required=True, metavar="PATH",
                   help="dotted claim paths from `wallet show`, e.g. credentialSubject.courses.3")
    p.add_argument("--days", type=_days, required=True, metavar="N",
                   help=f"days until the link expires ({MIN_DAYS}-{MAX_DAYS})")
    p.add_argument("--qr-png", metavar="FILE", help="save the QR code as a PNG")
    p.add_argument("--qr-svg", metavar="FILE", help="save the QR code as an SVG")
    p.set_defaults(func=cmd_share)

    p = sub.add_parser("withdraw", parents=[common, api],
                       help="withdraw a share now (default API: the one it was made on)")
    p.add_argument("share_id", metavar="SHARE_ID", help="share id (a unique prefix will do)")
    p.set_defaults(func=cmd_withdraw)

    p = sub.add_parser("shares", parents=[common], help="list the shares made and not withdrawn")
    p.set_defaults(func=cmd_shares)
    return wallet
