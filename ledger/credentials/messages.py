"""What each verification outcome means, in English and Chinese.

Schools, graduates and employers read these on the verification page and in API answers.
"""

from __future__ import annotations

from typing import Any

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
}


def message(code: str, details: dict[str, Any] | None = None) -> tuple[str, str]:
    en, zh = MESSAGES.get(code, (code.replace("_", " ").capitalize() + ".", code))
    details = details or {}
    if code in ("revoked", "suspended", "superseded") and details.get("since"):
        en = en[:-1] + f" (since {details['since']})."
        zh = zh[:-1] + f"（自 {details['since']} 起）。"
    if code == "expired" and details.get("valid_until"):
        en = en[:-1] + f" (valid until {details['valid_until']})."
        zh = zh[:-1] + f"（有效期至 {details['valid_until']}）。"
    return en, zh
