"""`eduledger sign` and `eduledger verify-signature`.

An organisation seals in-process against its data directory (the node must not be serving),
as `eduledger issue` does. A card holder signs with `--wallet`: the wallet's key signs here
(it never leaves the wallet) and the card's school's node (`--api`) timestamps the signature.
`verify-signature` asks a node's API (`--api`) or reads a data directory (`--data-dir`).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
from pathlib import Path
from typing import Any

from api.cli.common import Subcommands, node_settings
from ledger.errors import InvalidInput


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", code="unreadable") from None


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}", code="unwritable_output") from None


def _is_pdf(data: bytes) -> bool:
    from ledger.signatures.pdf import is_pdf

    return is_pdf(data)


def _print_verdict(verdict: dict[str, Any]) -> None:
    """Print each verdict line, a summary per signature in Chinese and English."""
    for item in verdict["signatures"]:
        signer = item.get("signer") or {}
        if signer.get("type") == "card":
            who = (
                f"{signer.get('role_zh')} {signer.get('role_en')} card {signer.get('card_id')} · "
                f"{signer.get('school', {}).get('name')}"
            )
        elif signer:
            who = f"{signer.get('name')} ({signer.get('role_zh')} {signer.get('role_en')})"
        else:
            who = "?"
        when = item.get("timestamp", {}).get("block_time_beijing") or "未存证 not anchored"
        mark = "VALID 有效" if item["valid"] else "NOT VALID 无效: " + ", ".join(item["failures"])
        print(f"{item['format']:<4} {mark}\n     signed by 签名人: {who}\n     anchored 存证时间: {when}")
        later = item.get("now") or {}
        if later.get("card_status") not in (None, "active"):
            print(f"     since 此后: card {later['card_status']} (block {later.get('last_change_block')})")
    if not verdict["signatures"]:
        print("NOT SIGNED 未签名")


def cmd_sign(args: argparse.Namespace) -> int:
    data = _read(args.file)
    if args.wallet:
        return _sign_with_wallet(args, data)
    if not args.org:
        raise InvalidInput(
            "name the sealing organisation (--org), or sign as a card holder (--wallet --card)",
            code="no_signer",
        )
    from ledger.node import Node, NodeServices

    node = Node(node_settings(args))
    try:
        sealed = NodeServices(node).signatures.seal(
            args.org,
            data,
            fmt=args.format,
            name=Path(args.file).name,
            media_type=mimetypes.guess_type(args.file)[0],
        )
    finally:
        node.close()
    if sealed.signed_pdf is not None:
        _write(args.out, sealed.signed_pdf)
    else:
        _write(args.out, (sealed.signature or "").encode() + b"\n")
    print(
        json.dumps(
            {"format": sealed.format, "out": args.out, "timestamp": sealed.timestamp},
            ensure_ascii=False,
            indent=2,
        )
    )
    return 0


def _sign_with_wallet(args: argparse.Namespace, data: bytes) -> int:
    from api.cli.wallet import _api_url
    from wallet.client import ApiClient
    from wallet.holder import Wallet, WalletError

    if not args.card:
        raise WalletError("name the card that signs (--card)", code="no_card")
    wallet = Wallet.open(args.wallet_dir)
    with ApiClient(_api_url(args), timeout=60) as api:
        if _is_pdf(data) and not args.detached:
            signer = wallet.card_signer(args.card)
            cert = api.signing_certificate(
                signer["card_id"], wallet.holder_jwk, signer["key_salt"], wallet.signing_proof(args.card)
            )
            signed = wallet.sign_pdf(args.card, data, cert["certificate_pem"], cert["chain_pem"])
            recorded = api.record_signature(signed_pdf=signed)
            _write(args.out, signed)
        else:
            token = wallet.sign_detached(
                args.card, data, name=Path(args.file).name, media_type=mimetypes.guess_type(args.file)[0]
            )
            recorded = api.record_signature(signature=token)
            _write(args.out, token.encode() + b"\n")
    _print_verdict({"signatures": recorded})
    return 0 if all(r.get("valid") for r in recorded) else 1


def cmd_verify_signature(args: argparse.Namespace) -> int:
    data = _read(args.file)
    signature = _read(args.signature).decode("ascii", "replace").strip() if args.signature else None
    if args.api:
        from wallet.client import ApiClient

        with ApiClient(args.api, timeout=60) as api:
            verdict = api.verify_signature(data, Path(args.file).name, signature)
    else:
        from ledger.node import Node, NodeServices

        node = Node(node_settings(args))
        try:
            verdict = NodeServices(node, indexing=False).signatures.verify(data, signature)
        finally:
            node.close()
    if args.json:
        print(json.dumps(verdict, ensure_ascii=False, indent=2))
    else:
        _print_verdict(verdict)
    if not verdict["valid"]:
        print(f"failures: {', '.join(verdict['failures'])}", file=sys.stderr)
    return 0 if verdict["valid"] else 1


def add_signature_commands(sub: Subcommands) -> None:
    sign = sub.add_parser("sign", help="seal a file as an organisation, or sign it with a card (--wallet)")
    sign.add_argument("file")
    sign.add_argument("--out", required=True, help="the signed PDF, or the detached signature")
    sign.add_argument("--org", help="the sealing organisation (in-process, against --data-dir)")
    sign.add_argument("--format", choices=["pdf", "jws", "sm2"], help="default: pdf for a PDF, else jws")
    sign.add_argument("--data-dir")
    sign.add_argument("--wallet", action="store_true", help="sign with a card held in the wallet")
    sign.add_argument("--card", help="the card that signs (its id, or a prefix of it)")
    sign.add_argument("--detached", action="store_true", help="a detached signature even for a PDF")
    sign.add_argument("--wallet-dir")
    sign.add_argument("--api", help="the API of the card's school (default EDULEDGER_API_URL)")
    sign.set_defaults(func=cmd_sign)

    verify = sub.add_parser("verify-signature", help="who signed a file, when, and was the signer valid then")
    verify.add_argument("file")
    verify.add_argument("--signature", help="the detached signature of a file that is not a PDF")
    verify.add_argument("--api", help="ask this node's API")
    verify.add_argument("--data-dir", help="or read this node's data directory")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify_signature)
