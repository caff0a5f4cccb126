"""The holder's client for the eduledger API: redeem a claim code, make and withdraw shares.

Every failure is a WalletError: an HTTP error carries the server's machine code and
message (and `details["status"]`); a server that cannot be reached gives
code "api_unreachable"; a response that is not what the API documents gives "bad_response".
"""

from __future__ import annotations

import base64
import json
from typing import Any
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

    def redeem_card(self, code: str, holder_jwk: dict[str, Any]) -> dict[str, Any]:
        """Exchange an identity card's claim code for the card, bound to `holder_jwk`, and its photo."""
        if not isinstance(code, str) or not code.strip():
            raise WalletError("the claim code is empty", code="invalid_claim_code")
        response = self._request("POST", "/v1/identity/claims/redeem", expect=(200,),
                                 json={"code": code.strip(), "holder_jwk": holder_jwk})
        return self._json_object(response, "card_id", "sd_jwt", "photo_base64", "photo_type", "kind")

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
