"""The holder's client for the eduledger API: redeem a claim code, make and withdraw shares.

Every failure is a WalletError: an HTTP error carries the server's machine code and
message (and `details["status"]`); a server that cannot be reached gives
code "api_unreachable"; a response that is not what the API documents gives "bad_response".
"""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from wallet.holder import WalletError

MIN_DAYS = 1
MAX_DAYS = 180
MAX_MESSAGE = 300


def _clean(text: str) -> str:
    """A server-supplied message made safe to print on one terminal line."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 1] + "…"


def normalize_base_url(url: str) -> str:
    """`url` without its trailing slash; an http(s) URL with a host, or WalletError."""
    if not isinstance(url, str):
        raise WalletError("the API URL must be text", code="invalid_api_url")
    base = url.strip().rstrip("/")
    try:
        parts = urlsplit(base)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment:
        raise WalletError(f"invalid API URL {url!r}: give one like http://127.0.0.1:8000",
                          code="invalid_api_url")
    return base


class HolderProver(Protocol):
    """What makes a card holder's proof for a request (wallet.holder.Wallet)."""

    def holder_proof(self, card_id: str, method: str, path: str) -> str: ...


class ApiClient:
    """A synchronous client; use as a context manager or call `close()`."""

    def __init__(self, base_url: str, timeout: float = 10, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = normalize_base_url(base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "eduledger-wallet"},
            transport=transport,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    # -- plumbing

    def _request(self, method: str, path: str, *, expect: tuple[int, ...], **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise WalletError(f"cannot reach {self.base_url}: no answer in time",
                              code="api_unreachable", url=self.base_url) from None
        except httpx.TransportError as exc:
            reason = _clean(str(exc)) or type(exc).__name__
            raise WalletError(f"cannot reach {self.base_url}: {reason}",
                              code="api_unreachable", url=self.base_url) from None
        if response.status_code in expect:
            return response
        raise self._error(response)

    def _error(self, response: httpx.Response) -> WalletError:
        status = response.status_code
        code = f"http_{status}"
        message = f"{response.request.method} {response.request.url.path} failed with HTTP {status}"
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            body = None
        if isinstance(body, dict):
            if isinstance(body.get("code"), str) and body["code"]:
                code = _clean(body["code"])[:64]
            if isinstance(body.get("message"), str) and body["message"]:
                message = _clean(body["message"])
        details: dict[str, Any] = {"status": status}
        if isinstance(body, dict) and isinstance(body.get("details"), dict):
            details["server_details"] = body["details"]
        return WalletError(message, code=code, **details)

    @staticmethod
    def _json_object(response: httpx.Response, *required: str) -> dict[str, Any]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict):
            raise WalletError(f"the API answered {response.request.url.path} with something "
                              "that is not a JSON object", code="bad_response")
        missing = [key for key in required if not isinstance(body.get(key), str) or not body[key]]
        if missing:
            raise WalletError(f"the API's answer to {response.request.url.path} lacks "
                              f"{', '.join(missing)}", code="bad_response")
        return body

    # -- endpoints

    def redeem(self, code: str, holder_jwk: dict[str, Any]) -> dict[str, Any]:
        """Exchange a claim code for a credential bound to `holder_jwk`."""
        if not isinstance(code, str) or not code.strip():
            raise WalletError("the claim code is empty", code="invalid_claim_code")
        response = self._request("POST", "/v1/claims/redeem", expect=(200, 201),
                                 json={"code": code.strip(), "holder_jwk": holder_jwk})
        body = self._json_object(response, "credential_id")
        # The documented field is "credential"; "sd_jwt" is accepted as its synonym.
        if not (isinstance(body.get("credential"), str) and body["credential"]):
            if isinstance(body.get("sd_jwt"), str) and body["sd_jwt"]:
                body["credential"] = body["sd_jwt"]
            else:
                raise WalletError("the API's answer to /v1/claims/redeem lacks credential",
                                  code="bad_response")
        return body

    def redeem_card(self, code: str, holder_jwk: dict[str, Any],
                    encryption_jwk: dict[str, Any] | None = None) -> dict[str, Any]:
        """Exchange an identity card's claim code for the card, bound to `holder_jwk`, and its
        photo; `encryption_jwk` is the key documents to the holder will be encrypted to."""
        if not isinstance(code, str) or not code.strip():
            raise WalletError("the claim code is empty", code="invalid_claim_code")
        body: dict[str, Any] = {"code": code.strip(), "holder_jwk": holder_jwk}
        if encryption_jwk is not None:
            body["encryption_jwk"] = encryption_jwk
        response = self._request("POST", "/v1/identity/claims/redeem", expect=(200,), json=body)
        return self._json_object(response, "card_id", "sd_jwt", "photo_base64", "photo_type", "kind")

    def _as_holder(self, prover: HolderProver, card_id: str, path: str,
                   params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET `path` about a card as its holder (a fresh proof for the request)."""
        proof = prover.holder_proof(card_id, "GET", path)
        response = self._request("GET", path, expect=(200,), params=params,
                                 headers={"Authorization": f"HolderProof {proof}"})
        return self._json_object(response, "card_id")

    def documents(self, prover: HolderProver, card_id: str) -> list[dict[str, Any]]:
        """The documents sent to a card, still encrypted (their names too)."""
        body = self._as_holder(prover, card_id, f"/v1/identity/cards/{self._segment(card_id)}/documents")
        if not isinstance(body.get("documents"), list):
            raise WalletError("the API's answer lacks its list of documents", code="bad_response")
        return [d for d in body["documents"] if isinstance(d, dict)]

    def document(self, prover: HolderProver, card_id: str, document_id: str) -> dict[str, Any]:
        """One document sent to a card, with its JWE."""
        body = self._as_holder(prover, card_id, f"/v1/identity/cards/{self._segment(card_id)}/documents/"
                                                f"{self._segment(document_id)}")
        if not isinstance(body.get("jwe"), str) or not isinstance(body.get("name_jwe"), str):
            raise WalletError("the API's answer lacks the document's JWE", code="bad_response")
        return body

    def card_history(self, prover: HolderProver, card_id: str, *,
                     check_chain: bool = False) -> dict[str, Any]:
        """Every change of the card on chain, as its holder may read it."""
        body = self._as_holder(prover, card_id, f"/v1/identity/cards/{self._segment(card_id)}/history",
                               params={"check": "chain"} if check_chain else None)
        if not isinstance(body.get("history"), list):
            raise WalletError("the API's answer lacks the card's history", code="bad_response")
        return body

    def challenge(self, challenge_id: str) -> dict[str, Any]:
        """A relying party's challenge: audience, nonce, the claims it asks for, expiry."""
        response = self._request("GET", f"/v1/identity/challenges/{self._segment(challenge_id)}",
                                 expect=(200,))
        body = self._json_object(response, "challenge_id", "nonce", "audience")
        if not isinstance(body.get("claims"), list):
            raise WalletError("the API's challenge lacks its list of claims", code="bad_response")
        return body

    def answer(self, challenge_id: str, presentation: str, *, photo: bytes | None = None) -> None:
        """Send the answer to a challenge (with the card's portrait file, when the challenge
        asks for it and the holder agrees); the relying party asks the API for the verdict."""
        body: dict[str, Any] = {"presentation": presentation}
        if photo is not None:
            body["photo_base64"] = base64.b64encode(photo).decode()
        self._request("POST", f"/v1/identity/challenges/{self._segment(challenge_id)}/answer",
                      expect=(204,), json=body)

    def signing_certificate(self, card_id: str, holder_jwk: dict[str, Any], key_salt: str,
                            proof: str) -> dict[str, Any]:
        """A certificate from the card's school for the wallet key (for PDF signatures)."""
        response = self._request("POST", "/v1/signatures/certificates", expect=(200,), json={
            "card_id": card_id, "holder_jwk": holder_jwk, "key_salt": key_salt, "proof": proof})
        body = self._json_object(response, "certificate_pem")
        if not isinstance(body.get("chain_pem"), list):
            raise WalletError("the API's certificate answer lacks its chain", code="bad_response")
        return body

    def record_signature(self, *, signed_pdf: bytes | None = None,
                         signature: str | None = None) -> list[dict[str, Any]]:
        """Have the node timestamp the wallet's signature; answers each one's verdict."""
        if signed_pdf is not None:
            response = self._request("POST", "/v1/signatures/holder", expect=(200,), content=signed_pdf,
                                     headers={"Content-Type": "application/pdf"})
        else:
            response = self._request("POST", "/v1/signatures/holder", expect=(200,),
                                     json={"signature": signature})
        recorded = self._json_object(response).get("recorded")
        if not isinstance(recorded, list):
            raise WalletError("the API's answer lacks the recorded signatures", code="bad_response")
        return recorded

    def verify_signature(self, document: bytes, name: str, signature: str | None = None) -> dict[str, Any]:
        data = {"signature": signature} if signature is not None else None
        response = self._request("POST", "/v1/signatures/verify", expect=(200,),
                                 files={"document": (name, document)}, data=data)
        return self._json_object(response)

    def send_document(self, api_key: str, card_id: str, content: bytes, *, filename: str,
                      media_type: str) -> dict[str, Any]:
        """As an organisation (its API key): send a document to a card's holder; the node
        encrypts it to the holder's key and answers its record."""
        response = self._request("POST", f"/v1/identity/cards/{self._segment(card_id)}/documents",
                                 expect=(201,), content=content, params={"filename": filename},
                                 headers={"Authorization": f"Bearer {api_key}", "Content-Type": media_type})
        return self._json_object(response, "document_id", "kid")

    def create_share(self, presentation: str, days: int) -> dict[str, Any]:
        """Publish a presentation as a share link that expires after `days` (1..180)."""
        if isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
            raise WalletError(f"a share lasts {MIN_DAYS} to {MAX_DAYS} days, not {days!r}",
                              code="invalid_expiry")
        response = self._request("POST", "/v1/shares", expect=(200, 201),
                                 json={"presentation": presentation, "expires_in_days": days})
        return self._json_object(response, "share_id", "url", "expires_at", "withdraw_token")

    def withdraw_share(self, share_id: str, token: str) -> None:
        """Withdraw a share now; its link stops verifying."""
        self._request("DELETE", f"/v1/shares/{self._segment(share_id)}", expect=(200, 204),
                      headers={"X-Withdraw-Token": token})

    def share_status(self, share_id: str) -> dict[str, Any]:
        """What a verifier sees at the share's link (the verification result)."""
        response = self._request("GET", f"/s/{self._segment(share_id)}", expect=(200,),
                                 headers={"Accept": "application/json"})
        return self._json_object(response)

    @staticmethod
    def _segment(share_id: str) -> str:
        if not isinstance(share_id, str) or share_id in ("", ".", ".."):
            raise WalletError("no share id given", code="unknown_share")
        return quote(share_id, safe="")
