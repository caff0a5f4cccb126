"""What the verification of a share shows a person, prepared once as plain text for both the
share page (``api.pages.share_page``) and its printable PDF report (``api.report_pdf``).

In the habit of CHSI's online verification reports (学信网在线验证报告): the verdict first;
the credential's issuer in Chinese and English; issued, anchored, checked and link-expiry
times in Beijing time; the disclosed claims, a transcript's lines as a table in the order of
term and course code (never their positions, which would tell where hidden lines were); a
revoked or suspended credential's reason in words and its date in China; the evidence on
chain (transaction, block and its time, registry contract, chain) and the commands that check
it against any node without trusting the page; the verification code to type in instead of
scanning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.credentials.messages import china_date, status_reason
from ledger.credentials.types import CHINA_TZ, CLAIM_LABELS, VALUE_LABELS, CredentialType

__all__ = ["CHECK_LABELS", "OUTCOME", "ShareReport", "beijing_time", "share_report", "shown_text",
           "shown_time"]

CHECK_LABELS = {
    "format": ("格式", "Format"), "issuer": ("签发机构", "Issuer"),
    "signature": ("签名", "Signature"), "disclosures": ("披露内容", "Disclosed claims"),
    "anchor": ("区块链存证", "Ledger anchor"), "membership": ("机构资格", "Issuer membership"),
    "signing_key": ("签名密钥", "Signing key"), "status": ("状态", "Status"),
    "validity": ("有效期", "Validity"), "holder_binding": ("持有人确认", "Holder binding"),
    "share": ("分享链接", "Share link"),
}
OUTCOME = {"passed": ("✔", "通过 Passed"), "failed": ("✘", "未通过 Failed"),
           "skipped": ("–", "未检查 Not checked")}
# The columns of a transcript's table, in this order; other fields of a line follow.
COURSE_COLUMNS = ("term", "code", "name", "credits", "grade", "kind")
STATUS_WORDS = {"revoked": ("已撤销", "Revoked"), "suspended": ("已暂停", "Suspended"),
                "superseded": ("已被更正取代", "Superseded by a correction")}


def beijing_time(moment: datetime) -> str:
    """A time as people here read it: Beijing time, with the zone said."""
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S") + " 北京时间 (UTC+8)"


def shown_time(value: Any) -> str:
    """An RFC 3339 time from a result, as a person reads it (Beijing time); else as given."""
    if isinstance(value, datetime):
        return beijing_time(value if value.tzinfo else value.replace(tzinfo=UTC))
    text = shown_text(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return beijing_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def shown_text(value: Any) -> str:
    """A value as the page shows it: nothing for None."""
    return "" if value is None else str(value)


@dataclass
class ShareReport:
    valid: bool
    reasons: list[dict[str, str]]
    credential_type: str
    issuer_zh: str
    issuer_en: str
    issuer_id: str
    issued_at: str
    anchored_at: str
    checked_at: str
    claims: list[dict[str, str]]
    course_columns: list[dict[str, str]]
    courses: list[list[str]]
    checks: list[dict[str, str]]
    status: dict[str, str] | None = None
    evidence: dict[str, str] | None = None
    share: dict[str, str] = field(default_factory=dict)
    commands: list[dict[str, str]] = field(default_factory=list)

    @property
    def verdict_zh(self) -> str:
        return "凭证有效" if self.valid else "凭证无效"

    @property
    def verdict_en(self) -> str:
        return "Credential is valid" if self.valid else "Credential is NOT valid"


def _label_of(key: str) -> tuple[str, str]:
    return CLAIM_LABELS.get(key) or CLAIM_LABELS.get(key.split(".")[-1]) or (key, key)


def _coded(context: str, value: Any) -> str:
    """A claim value as text; a coded one (必修/选修, a level, a category) in both languages."""
    labels = VALUE_LABELS.get(context, {})
    if isinstance(value, str) and value in labels:
        zh, en = labels[value]
        return f"{zh} {en}"
    return _value(value, context)


def _value(value: Any, context: str = "") -> str:
    """A claim value as text; the fields of an object are labelled in its context (a
    course's "name" is the course's name, not the credential's)."""
    if isinstance(value, dict):
        fields = []
        for key, inner in value.items():
            inner_context = f"{context}.{key}" if context else key
            zh, en = _label_of(inner_context)
            fields.append(f"{zh} {en}: {_coded(inner_context, inner)}")
        return " · ".join(fields)
    if isinstance(value, list):
        return " | ".join(_value(v, context) for v in value)
    return str(value)


def _parts(path: str) -> list[str]:
    return [p for p in path.split(".") if p != "credentialSubject"]


def _table_of_lines(
        disclosed: list[dict[str, Any]]) -> tuple[list[dict[str, str]], list[list[str]], set[str]]:
    """The disclosed lines of a list of objects (a transcript's courses) as a table: their
    columns, their rows sorted by content, and the disclosed paths the table shows."""
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    used: set[str] = set()
    whole: dict[str, list[Any]] = {}
    for item in disclosed:
        path, value = str(item["path"]), item["value"]
        parts = _parts(path)
        if len(parts) == 1 and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            whole[parts[0]] = value
        elif len(parts) == 2 and parts[1].isdigit() and isinstance(value, dict):
            lines.setdefault((parts[0], parts[1]), {}).update(value)
            used.add(path)
        elif len(parts) == 3 and parts[1].isdigit():
            lines.setdefault((parts[0], parts[1]), {})[parts[2]] = value
            used.add(path)
    # A list disclosed as a whole, with no line of it disclosed on its own: its lines as given.
    for name, values in whole.items():
        if not any(key[0] == name for key in lines):
            for n, value in enumerate(values):
                lines[(name, str(n))] = dict(value)
        used.add("credentialSubject." + name)
        used.add(name)
    if not lines:
        return [], [], used
    names = sorted({key[0] for key in lines})
    name = "courses" if "courses" in names else names[0]
    rows = [line for key, line in lines.items() if key[0] == name]
    keys = [k for k in COURSE_COLUMNS if any(k in r for r in rows)]
    keys += sorted({k for r in rows for k in r} - set(keys))
    columns = [dict(zip(("zh", "en"), _label_of(f"{name}.{k}"), strict=True)) for k in keys]
    table = [[_coded(f"{name}.{k}", row[k]) if k in row else "—" for k in keys] for row in rows]
    table.sort()  # by term, then code: the order of the page says nothing of hidden lines
    if name != "courses" or len(names) > 1:
        used = {p for p in used if _parts(p)[0] == name}
    return columns, table, used


def _claims(disclosed: list[dict[str, Any]], shown: set[str]) -> list[dict[str, str]]:
    """One row per disclosed claim that the table does not show; a container whose parts are
    disclosed one by one is shown through those parts, not twice."""
    paths = [str(item["path"]) for item in disclosed]
    rows = []
    for item in disclosed:
        path = str(item["path"])
        if path in shown:
            continue
        parts = _parts(path)
        if any(other.startswith(path + ".") for other in paths) and isinstance(item["value"], list | dict):
            continue
        if len(parts) > 1 and any(p.isdigit() for p in parts):
            # an element outside the table: labelled by its list, not by its position
            parts = [p for p in parts if not p.isdigit()]
        context = ".".join(parts)
        zh, en = _label_of(context)
        rows.append({"zh": zh, "en": en if en != zh else "", "value": _coded(context, item["value"])})
    return rows


def _check(check: Mapping[str, Any]) -> dict[str, str]:
    outcome = str(check["outcome"])
    mark, word = OUTCOME.get(outcome, ("?", outcome))
    zh, en = CHECK_LABELS.get(check["check"], (check["check"], check["check"]))
    return {"outcome": outcome, "mark": mark, "word": word, "zh": zh, "en": en,
            "message_zh": shown_text(check.get("message_zh")), "message_en": shown_text(check.get("message"))}


def _status(checks: list[dict[str, Any]]) -> dict[str, str] | None:
    """A revoked, suspended or superseded credential: what, why in words, and since when."""
    for check in checks:
        if check.get("check") == "status" and check.get("code") in STATUS_WORDS:
            details = check.get("details") or {}
            zh, en = STATUS_WORDS[str(check["code"])]
            reason_zh, reason_en = status_reason(details.get("reason_code"))
            since = details.get("since")
            return {"zh": zh, "en": en, "reason_zh": reason_zh, "reason_en": reason_en,
                    "date": china_date(since) if since else "", "time": shown_time(since) if since else ""}
    return None


def _evidence(result: Mapping[str, Any]) -> dict[str, str] | None:
    anchor = result.get("anchor")
    if not isinstance(anchor, Mapping):
        return None
    return {"tx_hash": shown_text(anchor.get("tx_hash")),
            "block_number": shown_text(anchor.get("block_number")),
            "block_time": shown_time(result.get("anchored_at")) if result.get("anchored_at") else "",
            "contract": shown_text(anchor.get("contract")), "chain_id": shown_text(anchor.get("chain_id")),
            "root": shown_text(anchor.get("root")), "leaf": shown_text(anchor.get("leaf"))}


def _commands(base: str, share_id: str, evidence: dict[str, str] | None) -> list[dict[str, str]]:
    """How to check this verdict without trusting this page: the node's own JSON-RPC (or any
    node of the network), the registry the consortium publishes."""
    if not base or not share_id:
        return []
    url = f"{base}/s/{share_id}"
    out = [{"zh": "本页的 JSON 形式（同一核验结果）", "en": "This verification as JSON",
            "command": f"curl -H 'Accept: application/json' {url}"}]
    if evidence is None:
        return out
    rpc = f"{base}/rpc"
    out += [
        {"zh": "下载出示的凭证，并仅凭区块链节点核验（合约地址请与联盟公布的核对）",
         "en": "Download the shared credential and check it against a chain node alone (compare the "
               "registry address with the one the consortium publishes)",
         "command": f"curl -o shared.json {url}/presentation.json && eduledger verify shared.json "
                    f"--rpc {rpc} --registry {evidence['contract']}"},
        {"zh": "向任一节点查询存证交易的回执（区块号、存证合约的日志）",
         "en": "Ask any node for the anchoring transaction's receipt (its block, the registry's log)",
         "command": f"curl -s -X POST {rpc} -H 'Content-Type: application/json' --data "
                    f"'{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getTransactionReceipt\","
                    f"\"params\":[\"{evidence['tx_hash']}\"]}}'"},
    ]
    return out


def share_report(result: Mapping[str, Any], *, base: str = "", now: datetime | None = None) -> ShareReport:
    """A share's verification (``Verification.to_dict()`` with the share, the JSON of the share
    page) as a person reads it. ``base``: this service's URL, for the links and commands."""
    ctype = result.get("credential_type")
    kind = CredentialType(ctype) if ctype in {t.value for t in CredentialType} else None
    issuer = result.get("issuer") or {}
    checks = list(result.get("checks") or [])
    share = result.get("share") or {}
    disclosed = list(result.get("disclosed") or [])
    columns, courses, shown = _table_of_lines(disclosed)
    evidence = _evidence(result)
    share_id = shown_text(share.get("id"))
    live = bool(share_id) and not ({"share_withdrawn", "share_expired"} & set(result.get("failures") or []))
    zh_name = shown_text(issuer.get("name_zh") or issuer.get("name"))
    return ShareReport(
        valid=bool(result.get("valid")),
        reasons=[{"zh": shown_text(c.get("message_zh")), "en": shown_text(c.get("message"))}
                 for c in checks if c.get("outcome") == "failed"],
        credential_type=f"{kind.label_zh} {kind.label_en}" if kind else "",
        issuer_zh=zh_name, issuer_en=shown_text(issuer.get("name_en")) if zh_name else "",
        issuer_id=shown_text(issuer.get("id")),
        issued_at=shown_time(result.get("issued_at")) if result.get("issued_at") else "",
        anchored_at=shown_time(result.get("anchored_at")) if result.get("anchored_at") else "",
        checked_at=beijing_time(now or datetime.now(UTC)),
        claims=_claims(disclosed, shown),
        course_columns=columns, courses=courses,
        checks=[_check(c) for c in checks],
        status=_status(checks), evidence=evidence,
        share={"id": share_id, "live": "yes" if live else "",
               "url": f"{base}/s/{share_id}" if share_id else "",
               "expires_at": shown_time(share.get("expires_at")) if share.get("expires_at") else "",
               "verify_code": shown_text(share.get("verify_code")) if live else "",
               "verify_url": f"{base}/verify"},
        commands=_commands(base, share_id, evidence) if live else [],
    )
