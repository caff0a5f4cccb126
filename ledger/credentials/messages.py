"""What each verification outcome means, in English and Chinese.

Schools, graduates and employers read these on the verification page and in API answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger.credentials.types import CHINA_TZ

MESSAGES: dict[str, tuple[str, str]] = {
    "ok": ("Passed.", "通过。"),
    "not_checked": ("Not checked, because an earlier check failed.", "未检查：前一项检查未通过。"),
    "not_required": ("Not required for this check.", "此项无需检查。"),
    "malformed": ("The credential is not a well-formed SD-JWT.", "凭证格式不正确（不是有效的 SD-JWT）。"),
    "issuer_unknown": ("The issuer is unknown: its signing key is not registered by a member of "
                       "this network.", "签发机构未知：签名密钥未由本网络成员登记。"),
    "signature_invalid": ("The issuer's signature is invalid: the credential was altered or not "
                          "signed by this issuer.", "签发机构签名无效：凭证被篡改或并非该机构签发。"),
    "claim_tampered": ("A disclosed claim was altered or does not belong to this credential.",
                       "披露的信息被篡改，或不属于此凭证。"),
    "not_anchored": ("The credential is not anchored on the ledger.", "凭证未在区块链上存证。"),
    # each way the anchor check fails (ledger.credentials.verify.ANCHOR_FAILURES)
    "anchor_proof_missing": (
        "The credential came without its anchor proof, and a check against the chain alone cannot "
        "find it: verify the credential file (eduledger wallet export, or the issuer's file), which "
        "carries it.",
        "凭证未附带区块链存证证明，仅凭区块链无法查到：请核验附有证明的凭证文件（eduledger wallet export "
        "导出的文件或签发机构提供的文件）。"),
    "anchor_proof_other_credential": ("The anchor proof in the file is for another credential.",
                                      "文件中的存证证明属于另一份凭证。"),
    "anchor_other_registry": (
        "The anchor proof names another chain or registry than the one this verifier trusts.",
        "存证证明指向的区块链或存证合约不是本核验方信任的那一个。"),
    "anchor_proof_invalid": ("The anchor proof is broken: its Merkle path does not lead to its root.",
                             "存证证明无效：默克尔路径不能得出其根哈希。"),
    "anchor_root_unknown": ("The anchor proof's root is not on the chain: the batch was never anchored "
                            "(or not yet).", "存证证明的根哈希不在链上：该批次从未（或尚未）存证。"),
    "anchor_other_member": ("The batch was anchored by another member than the issuer, so it does not "
                            "vouch for this credential.", "该批次由签发机构以外的成员存证，不能证明此凭证。"),
    "anchor_block_mismatch": ("The anchor proof names another block than the one the batch was anchored in.",
                              "存证证明所写的区块与该批次实际存证的区块不符。"),
    "anchor_tx_mismatch": ("The anchor proof names a transaction that did not anchor this batch.",
                           "存证证明所写的交易并未存证该批次。"),
    "issuer_not_authorised": (
        "When the credential was anchored, the issuer was not an active member allowed to issue this type.",
        "存证时，签发机构不是有权签发此类凭证的有效成员。"),
    "signing_key_invalid": ("The issuer's signing key was not valid when the credential was anchored.",
                            "存证时，签发机构的签名密钥无效。"),
    "revoked": ("The issuer has revoked this credential.", "签发机构已撤销此凭证。"),
    "suspended": ("The issuer has suspended this credential.", "签发机构已暂停此凭证。"),
    "superseded": ("This credential has been replaced by a corrected one.", "此凭证已被更正后的新凭证取代。"),
    "expired": ("The credential has expired.", "凭证已过期。"),
    "not_yet_valid": ("The credential is not valid yet.", "凭证尚未生效。"),
    "holder_binding_missing": ("The presentation is not signed by the holder.", "出示未经持有人签名确认。"),
    "holder_binding_invalid": ("The holder's signature on the presentation is invalid.",
                               "持有人对出示的签名无效。"),
    "share_expired": ("This share link has expired.", "此分享链接已过期。"),
    "share_withdrawn": ("The holder has withdrawn this share link.", "持有人已撤回此分享链接。"),
    "share_not_found": ("There is no such share link.", "分享链接不存在。"),
    "verify_code_not_found": ("No share has this verification code: check what you typed.",
                              "没有与此验证码对应的分享：请检查输入是否有误。"),
    "bad_verify_code": ("A verification code is 16 letters and digits, like 7KQ3-M9XD-2HPA-WT4E "
                        "(there is no 0, 1, O, I, L or U in it).",
                        "验证码为 16 位字母和数字，形如 7KQ3-M9XD-2HPA-WT4E（其中没有 0、1、O、I、L、U）。"),
}


# Why an issuer revoked, suspended or replaced a credential: the reason code kept on chain
# (POST /v1/credentials/{id}/status "reason"), in words (zh, en). Other codes are shown as codes.
STATUS_REASONS: dict[int, tuple[str, str]] = {
    0: ("未说明原因", "no reason given"),
    1: ("信息有误，已更正", "the information was wrong and has been corrected"),
    2: ("正在核查", "under review"),
    3: ("签发错误", "issued in error"),
    4: ("以不正当手段取得", "obtained by improper means"),
    5: ("学业不端", "academic misconduct"),
    6: ("学籍或学位已被撤销", "the enrolment or degree was rescinded"),
    7: ("应持有人申请", "at the holder's request"),
}


def status_reason(code: Any) -> tuple[str, str]:
    """A status reason code in words (zh, en)."""
    if isinstance(code, int) and code in STATUS_REASONS:
        return STATUS_REASONS[code]
    return f"原因代码 {code}", f"reason code {code}"


def china_date(value: Any) -> str:
    """An RFC 3339 time as its date in China (the day a person there saw it happen)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d")


def message(code: str, details: dict[str, Any] | None = None) -> tuple[str, str]:
    en, zh = MESSAGES.get(code, (code.replace("_", " ").capitalize() + ".", code))
    details = details or {}
    if code in ("revoked", "suspended", "superseded") and "reason_code" in details:
        reason_zh, reason_en = status_reason(details["reason_code"])
        en, zh = en[:-1] + f": {reason_en}.", zh[:-1] + f"，原因：{reason_zh}。"
    if code in ("revoked", "suspended", "superseded") and details.get("since"):
        day = china_date(details["since"])
        en = en[:-1] + f" (on {day}, Beijing time)."
        zh = zh[:-1] + f"（{day}，北京时间）。"
    if code == "anchor_proof_missing" and details.get("looked_up"):
        en = ("The credential came without its anchor proof, and this node knows of no anchored batch "
              "holding it: it is not anchored, or through another node (verify its credential file).")
        zh = ("凭证未附带存证证明，本节点也没有包含它的已存证批次：它未存证，"
              "或经其他节点存证（请核验其凭证文件）。")
    if code == "anchor_block_mismatch" and "block" in details:
        en = en[:-1] + f" (it says {details.get('claimed_block')}; the chain says {details['block']})."
        zh = zh[:-1] + f"（证明写的是 {details.get('claimed_block')}，链上是 {details['block']}）。"
    if code == "expired" and details.get("valid_until"):
        en = en[:-1] + f" (valid until {details['valid_until']})."
        zh = zh[:-1] + f"（有效期至 {details['valid_until']}）。"
    return en, zh
