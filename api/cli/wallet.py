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
import sys
from pathlib import Path
from typing import Any

from api.cli.common import Subcommands, print_table, write_private
from ledger.settings import WalletSettings
from wallet.client import MAX_DAYS, MIN_DAYS, ApiClient
from wallet.holder import ShareRecord, Wallet, WalletError, dotted
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
    with ApiClient(_api_url(args)) as client:
        answer = client.redeem_card(args.code, wallet.holder_jwk)
    record = wallet.add_card(answer)
    print(f"received a {answer.get('kind', '')} card from {record.issuer_name or 'an unnamed issuer'}")
    print(f"card id {record.credential_id} (its portrait is kept beside it)")
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
            client.answer(args.challenge, presentation)
            print(f"answered {challenge['audience']}'s challenge with card {record.credential_id}")
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
    p.set_defaults(func=cmd_present)

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
