"""Single sign-on with the education identity card: the node is an OpenID Provider (OpenID
Connect Core 1.0, authorization code flow with PKCE; Discovery 1.0; a JWKS), built on
authlib's authorization server, its OpenID Connect code grant and its PKCE extension.

The authentication is the card. At the authorization endpoint the request is validated
(client, redirect URI, scopes, PKCE, nonce) and the node makes an identity challenge for the
client's organisation (``IdentityService.new_challenge``; its audience is the redirect URI,
its nonce binds the answer to this sign-in); the holder's wallet answers it; the sign-in
then checks the answer against the chain (``IdentityService.recognise``) and, if the card
is live and the key current, issues the code. A card that is suspended, revoked or ended,
a rotated key, a challenge that expired: ``access_denied`` to the client, the reason in
``error_description``.

Subjects are pairwise (Core 8.1): an HMAC of the card's person key, per organisation and
sector. A student card and the graduate card that continues it have one person key, so
one client sees one subject for both; clients of different sectors cannot correlate.

HTTP stays outside: a request comes in as ``HttpRequest`` (method, URL, headers, query
and form pairs), an answer goes out as ``Answer`` (status, body, headers), and
``api/routers/sso.py`` translates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InsecureTransportError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6749.resource_protector import ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from authlib.oidc.discovery import OpenIDProviderMetadata
from sqlalchemy import Engine, Table, delete, update
from sqlmodel import select

from ledger.errors import Conflict, InvalidInput, LedgerError, NotFound, PermissionDenied
from ledger.identity.models import IdentityChallenge
from ledger.identity.service import IdentityService, Recognition
from ledger.identity.sso.keys import ProviderKeys
from ledger.identity.sso.models import SsoAccessToken, SsoClient, SsoCode, SsoSignIn
from ledger.store import session_scope
from ledger.store.columns import utcnow

__all__ = ["ACR", "Answer", "BadAuthorizationRequest", "HttpRequest", "SignIn", "SsoService"]

# The Authentication Context Class of every sign-in here: a key-bound presentation of an
# education identity card, checked against the chain.
ACR = "urn:eduledger:acr:identity-card-presentation"
AMR = ["swk"]  # RFC 8176: proof of possession of a software-secured key (the wallet's)
SIGN_IN_SECONDS = 300
CODE_SECONDS = 120
TOKEN_SECONDS = 3600
ID_TOKEN_SECONDS = 600
MAX_REDIRECT_URIS = 10
# Scopes and the claims they release (Core 5.4); the card's own claim names.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {"openid": (), "profile": ("name",), "school": ("school",),
                                            "card": ("cardKind",)}
RELEASED_CLAIMS = ("name", "school", "cardKind")
# Claims the holder discloses from the card; cardKind is in the card's signed payload.
DISCLOSED = ("name", "school")
_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,32}")
_SIGNINS: Table = SsoSignIn.__table__  # type: ignore[attr-defined]
_CODES: Table = SsoCode.__table__  # type: ignore[attr-defined]
_TOKENS: Table = SsoAccessToken.__table__  # type: ignore[attr-defined]
_CLIENTS: Table = SsoClient.__table__  # type: ignore[attr-defined]


class BadAuthorizationRequest(LedgerError):
    """An authorization request that cannot be answered to the client (unknown client,
    a redirect URI it did not register): the browser is told, nothing is redirected."""

    code = "invalid_request"
    http_status = 400


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- what crosses the HTTP boundary -------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    """`headers`: looked up case-insensitively (the server's own mapping, as HTTP reads them)."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()
    form: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Answer:
    """What to send back: a redirect (302 and Location), or a JSON body."""

    status: int
    body: dict[str, Any] | str
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


@dataclass(frozen=True)
class SignIn:
    """A sign-in waiting for the card: what the page shows."""

    id: str
    client_name: str
    org_id: str
    challenge: IdentityChallenge
    browser_token: str | None = None  # set when the sign-in was just made: the cookie

    @property
    def claims(self) -> list[str]:
        asked: list[str] = json.loads(self.challenge.claims_json)
        return asked


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._list: dict[str, list[str]] = {}
        for key, value in pairs:
            self._list.setdefault(key, []).append(value)
        self._data = {key: values[0] for key, values in self._list.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._list


def _request(http: HttpRequest, issuer: str) -> _Request:
    try:
        return _Request(http, issuer)
    except InsecureTransportError:
        raise BadAuthorizationRequest("OAuth 2 needs https: serve the provider over https "
                                      "(EDULEDGER_SSO_ISSUER)", code="insecure_transport") from None


def _refused(error: BadAuthorizationRequest) -> Answer:
    return Answer(400, {"error": "invalid_request", "error_description": error.message})


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, http: HttpRequest, issuer: str) -> None:
        super().__init__(http.method, http.url, headers=http.headers)  # case-insensitive, as HTTP's
        self.issuer = issuer
        self.wanted: list[str] = []  # the claims the client asks for, once validated
        self._query = dict(http.query)
        self._form = dict(http.form)
        self.payload = _Payload(list(http.query) + list(http.form))

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


# -- authlib's models over our rows ----------------------------------------------------------


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, row: SsoClient) -> None:
        self.row = row
        self.client_id = row.client_id
        self.redirect_uris: list[str] = json.loads(row.redirect_uris_json)

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPE_CLAIMS)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match (RFC 9700 2.1)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.row.secret_hash is not None and hmac.compare_digest(_sha256(client_secret),
                                                                         self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.row.auth_method if endpoint == "token" else True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class _Person:
    """Who signed in, as the client sees them."""

    subject: str
    card_id: str
    card_kind: str
    claims: dict[str, Any]
    auth_time: datetime


class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, row: SsoCode, person: _Person) -> None:
        self.row = row
        self.person = person
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str:
        return ACR

    def get_amr(self) -> list[str]:
        return AMR


class _Token:
    def __init__(self, row: SsoAccessToken) -> None:
        self.row = row

    def get_scope(self) -> str:
        return self.row.scope

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


# -- authlib's grant, extensions and server, wired to the service ------------------------------


class _CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    @property
    def service(self) -> SsoService:
        service: SsoService = self.server.service
        return service

    def save_authorization_code(self, code: str, request: _Request) -> None:
        self.service._save_code(code, request)

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        return self.service._spend_code(code, client)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        pass  # spent when it was looked up (one winner when two requests race)

    def authenticate_user(self, authorization_code: _Code) -> _Person:
        return authorization_code.person


class _Pkce(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256, required of every client (RFC 9700 2.1.1), confidential ones too."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: _CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE is required: code_challenge with code_challenge_method=S256",
                                      redirect_uri=redirect_uri)
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: _CodeGrant, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, service: SsoService) -> None:
        super().__init__(require_nonce=False)
        self.service = service

    def resolve_client_private_key(self, client: _Client) -> Any:
        return self.service.keys.signing_key

    def get_client_algorithm(self, client: _Client) -> str:
        return "RS256"

    def get_encode_header(self, client: _Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.service.keys.kid, "typ": "JWT"}

    def get_client_claims(self, client: _Client) -> dict[str, Any]:
        return {}

    def get_compatible_claims(self, request: _Request) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": request.issuer, "aud": request.client.get_client_id(), "iat": now,
                "exp": now + ID_TOKEN_SECONDS}

    def exists_nonce(self, nonce: str, request: _Request) -> bool:
        return self.service._nonce_used(request.payload.client_id, nonce)

    def generate_user_info(self, user: _Person, scope: str) -> dict[str, Any]:
        return {"sub": user.subject, **user.claims}


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, service: SsoService) -> None:
        super().__init__(scopes_supported=list(SCOPE_CLAIMS))
        self.service = service
        self.register_token_generator("default", BearerTokenGenerator(
            lambda *_a, **_k: secrets.token_urlsafe(32), None, lambda _client, _grant: TOKEN_SECONDS))
        self.register_grant(_CodeGrant, [_Pkce(required=True), _OpenIDCode(service)])

    def query_client(self, client_id: str) -> _Client | None:
        return self.service._client(client_id)

    def save_token(self, token: dict[str, Any], request: _Request) -> None:
        self.service._save_token(token, request)

    def create_oauth2_request(self, request: _Request) -> _Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
        return Answer(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class _TokenValidator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, service: SsoService) -> None:
        super().__init__()
        self.service = service

    def authenticate_token(self, token_string: str) -> _Token | None:
        with session_scope(self.service.engine) as session:
            row = session.get(SsoAccessToken, _sha256(token_string))
        return _Token(row) if row is not None else None


# -- the service ----------------------------------------------------------------------------


class SsoService:
    def __init__(self, *, engine: Engine, identity: IdentityService, keys: ProviderKeys) -> None:
        self.engine = engine
        self.identity = identity
        self.keys = keys
        self.server = _Server(self)
        self.protector = ResourceProtector()
        self.protector.register_token_validator(_TokenValidator(self))

    # -- relying parties --------------------------------------------------------------------

    def register_client(self, org_id: str, name: str, redirect_uris: Sequence[str], *,
                        public: bool = False, sector: str | None = None,
                        auth_method: str = "client_secret_basic") -> tuple[SsoClient, str | None]:
        """A relying party of `org_id`; its secret is returned once (None for a public client)."""
        self.identity._member(org_id)
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 120 or not name.isprintable():
            raise InvalidInput("a client's name is 1 to 120 printable characters", code="bad_client_name")
        uris = list(dict.fromkeys(redirect_uris))
        if not 1 <= len(uris) <= MAX_REDIRECT_URIS:
            raise InvalidInput(f"a client has 1 to {MAX_REDIRECT_URIS} redirect URIs",
                               code="bad_redirect_uri")
        hosts = {_redirect_host(uri) for uri in uris}
        if sector is None:
            if len(hosts) > 1:  # Core 8.1: several hosts need a sector named
                raise InvalidInput("redirect URIs on several hosts need a sector", code="sector_required")
            sector = hosts.pop()
        if not isinstance(sector, str) or not re.fullmatch(r"[a-z0-9.:_-]{1,255}", sector):
            raise InvalidInput("a sector is 1 to 255 of a-z 0-9 . : _ -", code="bad_sector")
        method = "none" if public else auth_method
        if method not in ("client_secret_basic", "client_secret_post", "none"):
            raise InvalidInput("auth_method is client_secret_basic or client_secret_post",
                               code="bad_auth_method")
        secret = None if public else secrets.token_urlsafe(32)
        row = SsoClient(client_id=secrets.token_urlsafe(18), name=name.strip(), org_id=org_id,
                        secret_hash=_sha256(secret) if secret else None, auth_method=method,
                        redirect_uris_json=json.dumps(uris), sector=sector)
        with session_scope(self.engine) as session:
            session.add(row)
        return row, secret

    def clients_of(self, org_id: str) -> list[SsoClient]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(SsoClient).where(
                SsoClient.org_id == org_id).order_by(SsoClient.created_at)).all())  # type: ignore[arg-type]

    def disable_client(self, org_id: str, client_id: str) -> SsoClient:
        """No more sign-ins nor tokens for the client; its tokens stop at once."""
        row = self._client_row(client_id)
        if row is None or row.org_id != org_id:
            raise NotFound("no such client", code="client_not_found")
        now = utcnow()
        with session_scope(self.engine, write=True) as session:
            session.execute(update(_CLIENTS).where(_CLIENTS.c.client_id == row.client_id,
                                                   _CLIENTS.c.disabled_at.is_(None)).values(disabled_at=now))
            session.execute(update(_TOKENS).where(_TOKENS.c.client_id == row.client_id,
                                                  _TOKENS.c.revoked_at.is_(None)).values(revoked_at=now))
        fresh = self._client_row(client_id)
        assert fresh is not None
        return fresh

    def _client_row(self, client_id: str) -> SsoClient | None:
        if not isinstance(client_id, str) or not _ID_RE.fullmatch(client_id):
            return None
        with session_scope(self.engine) as session:
            return session.get(SsoClient, client_id)

    def _client(self, client_id: str) -> _Client | None:
        row = self._client_row(client_id)
        return _Client(row) if row is not None and row.disabled_at is None else None

    # -- discovery ------------------------------------------------------------------------

    def metadata(self, issuer: str) -> dict[str, Any]:
        """The provider's configuration (Discovery 1.0 section 3), checked by authlib."""
        doc = {
            "issuer": issuer, "authorization_endpoint": f"{issuer}/sso/authorize",
            "token_endpoint": f"{issuer}/sso/token", "userinfo_endpoint": f"{issuer}/sso/userinfo",
            "jwks_uri": f"{issuer}/sso/jwks.json", "scopes_supported": list(SCOPE_CLAIMS),
            "response_types_supported": ["code"], "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"], "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"], "acr_values_supported": [ACR],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
                                 "at_hash", *RELEASED_CLAIMS],
            "claim_types_supported": ["normal"], "claims_parameter_supported": True,
            "request_parameter_supported": False, "request_uri_parameter_supported": False,
            "ui_locales_supported": ["zh-CN", "en"],
        }
        OpenIDProviderMetadata(doc).validate()
        return doc

    def jwks(self) -> dict[str, Any]:
        return self.keys.public_jwks()

    # -- the authorization endpoint ------------------------------------------------------------

    def begin(self, issuer: str, http: HttpRequest) -> SignIn | Answer:
        """An authorization request: a sign-in waiting for the card, or an error redirect to
        the client. BadAuthorizationRequest (the browser is shown it) when the client or
        redirect URI is not known: the request may not be sent back there (RFC 6749 4.1.2.1)."""
        request = _request(http, issuer)
        grant = self._validated(request)
        if isinstance(grant, Answer):
            return grant
        client: _Client = request.client
        claims = request.wanted
        challenge = self.identity.new_challenge(client.row.org_id, grant.redirect_uri,
                                                [c for c in claims if c in DISCLOSED], SIGN_IN_SECONDS)
        browser = secrets.token_urlsafe(24)
        sign_in = SsoSignIn(id=secrets.token_urlsafe(16), client_id=client.client_id,
                            params_json=json.dumps(list(request.payload.datalist.items())),
                            challenge_id=challenge.id, browser_hash=_sha256(browser),
                            expires_at=challenge.expires_at)
        self._prune()
        with session_scope(self.engine) as session:
            session.add(sign_in)
        return SignIn(sign_in.id, client.row.name, client.row.org_id, challenge, browser)

    def _validated(self, request: _Request) -> grants.AuthorizationCodeGrant | Answer:
        try:
            grant = self.server.get_consent_grant(request)
            if "openid" not in (request.scope or "").split():
                raise InvalidScopeError("this provider signs people in: the scope must include openid",
                                        redirect_uri=grant.redirect_uri)
            request.wanted = self._wanted(request, grant.redirect_uri)
        except OAuth2Error as error:
            error.state = request.payload.state
            if error.redirect_uri:
                answer: Answer = self.server.handle_error_response(request, error)
                return answer
            raise BadAuthorizationRequest(f"{error.error}: {error.description}", code=error.error) from None
        return grant

    @staticmethod
    def _wanted(request: _Request, redirect_uri: str) -> list[str]:
        """The claims the client asks for: by scope, and by the claims parameter (Core 5.5)."""
        wanted = {c for s in (request.scope or "").split() for c in SCOPE_CLAIMS.get(s, ())}
        raw = request.payload.data.get("claims")
        if raw:
            try:
                asked = json.loads(raw)
            except ValueError:
                asked = None
            if not isinstance(asked, dict):
                raise InvalidRequestError("the claims parameter is a JSON object",
                                          redirect_uri=redirect_uri)
            for where in ("id_token", "userinfo"):
                if isinstance(asked.get(where), dict):
                    wanted |= {c for c in asked[where] if c in RELEASED_CLAIMS}
        return sorted(wanted)

    def sign_in(self, sign_in_id: str) -> SignIn:
        row = self._sign_in(sign_in_id)
        client = self._client_row(row.client_id)
        assert client is not None
        return SignIn(row.id, client.name, client.org_id, self.identity.challenge(row.challenge_id))

    def _sign_in(self, sign_in_id: str) -> SsoSignIn:
        row = None
        if isinstance(sign_in_id, str) and _ID_RE.fullmatch(sign_in_id):
            with session_scope(self.engine) as session:
                row = session.get(SsoSignIn, sign_in_id)
        if row is None:
            raise NotFound("no such sign-in", code="sign_in_not_found")
        return row

    def status(self, sign_in_id: str) -> dict[str, Any]:
        """What the sign-in page polls: waiting, answered (the wallet sent its answer),
        expired, or finished."""
        row = self._sign_in(sign_in_id)
        challenge = self.identity.challenge(row.challenge_id)
        if row.status != "pending":
            state = "finished"
        elif challenge.answer is not None:
            state = "answered"
        elif challenge.expires_at <= utcnow():
            state = "expired"
        else:
            state = "waiting"
        return {"sign_in_id": row.id, "status": state, "expires_at": challenge.expires_at}

    def finish(self, issuer: str, sign_in_id: str, browser_token: str | None) -> SignIn | Answer:
        """The sign-in once the wallet answered: the code (or the error) sent to the client.
        Still waiting: the sign-in, to show again."""
        row = self._sign_in(sign_in_id)
        if row.status != "pending":
            raise Conflict("this sign-in is finished", code="sign_in_finished")
        if not browser_token or not hmac.compare_digest(_sha256(browser_token), row.browser_hash):
            raise PermissionDenied("this sign-in was started in another browser",
                                   code="sign_in_other_browser")
        challenge = self.identity.challenge(row.challenge_id)
        client_row = self._client_row(row.client_id)
        assert client_row is not None
        pending = SignIn(row.id, client_row.name, client_row.org_id, challenge)
        if challenge.answer is None and challenge.expires_at > utcnow():
            return pending
        pairs = [(key, value) for key, values in json.loads(row.params_json) for value in values]
        request = _request(HttpRequest("GET", f"{issuer}/sso/authorize", {}, pairs), issuer)
        grant = self._validated(request)  # the client may have been disabled meanwhile
        if isinstance(grant, Answer):
            self._close(row.id, "failed")
            return grant
        if challenge.answer is None:
            return self._deny(row.id, request, grant, "challenge_expired")
        verdict = self.identity.recognise(client_row.org_id, challenge.id)
        if not verdict.valid:
            return self._deny(row.id, request, grant, " ".join(verdict.failures))
        person = self._person(client_row, verdict, request.wanted)
        if not self._close(row.id, "done"):
            raise Conflict("this sign-in is finished", code="sign_in_finished")
        answer: Answer = self.server.create_authorization_response(request, grant_user=person, grant=grant)
        return answer

    def _person(self, client: SsoClient, verdict: Recognition, wanted: list[str]) -> _Person:
        assert verdict.card is not None
        card = self.identity.get(verdict.card["card_id"])
        claims = {k: v for k, v in verdict.claims.items() if k in wanted}  # what the client asked, only
        if "cardKind" in wanted:
            claims["cardKind"] = card.kind
        return _Person(self.keys.subject(client.org_id, client.sector, card.person_key), card.id, card.kind,
                       claims, utcnow().replace(microsecond=0))

    def _deny(self, sign_in_id: str, request: _Request, grant: Any, reason: str) -> Answer:
        self._close(sign_in_id, "failed")
        error = AccessDeniedError(description=f"the card did not sign in: {reason}",
                                  redirect_uri=grant.redirect_uri, state=request.payload.state)
        answer: Answer = self.server.handle_error_response(request, error)
        return answer

    def _close(self, sign_in_id: str, status: str) -> bool:
        with session_scope(self.engine, write=True) as session:
            won = session.execute(update(_SIGNINS).where(_SIGNINS.c.id == sign_in_id,
                                                         _SIGNINS.c.status == "pending")
                                  .values(status=status, finished_at=utcnow()))
        return bool(won.rowcount == 1)  # type: ignore[attr-defined]

    def _prune(self) -> None:
        """Forget sign-ins, codes and tokens a day after they expired."""
        before = utcnow() - timedelta(days=1)
        with session_scope(self.engine, write=True) as session:
            session.execute(delete(_SIGNINS).where(_SIGNINS.c.expires_at < before))
            session.execute(delete(_CODES).where(_CODES.c.expires_at < before))
            session.execute(delete(_TOKENS).where(_TOKENS.c.expires_at < before))

    # -- codes and tokens (authlib calls these) ---------------------------------------------

    def _save_code(self, code: str, request: _Request) -> None:
        person: _Person = request.user
        data = request.payload.data
        code_hash = _sha256(code)
        with session_scope(self.engine) as session:
            session.add(SsoCode(
                code_hash=code_hash, client_id=request.client.get_client_id(),
                redirect_uri=data.get("redirect_uri") or request.client.get_default_redirect_uri(),
                scope=request.scope or "", nonce=data.get("nonce"), code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"], subject=person.subject,
                card_id=person.card_id, card_kind=person.card_kind,
                sealed_claims=self.keys.seal_claims(f"code {code_hash}", person.claims),
                auth_time=person.auth_time, expires_at=utcnow() + timedelta(seconds=CODE_SECONDS)))

    def _spend_code(self, code: str, client: _Client) -> _Code | None:
        """The code, spent now; None when unknown, expired, another client's, or spent before
        (then every token it gave is revoked: RFC 6749 4.1.2)."""
        if not isinstance(code, str) or len(code) > 128:
            return None
        code_hash = _sha256(code)
        now = utcnow()
        with session_scope(self.engine, write=True) as session:
            row = session.get(SsoCode, code_hash)
            if row is None or row.client_id != client.client_id:
                return None
            won = session.execute(update(_CODES).where(_CODES.c.code_hash == code_hash,
                                                       _CODES.c.used_at.is_(None))
                                  .values(used_at=now, sealed_claims=None))
            if won.rowcount != 1:  # type: ignore[attr-defined]
                session.execute(update(_TOKENS).where(_TOKENS.c.code_hash == code_hash,
                                                      _TOKENS.c.revoked_at.is_(None)).values(revoked_at=now))
                return None
        if row.expires_at <= now or row.sealed_claims is None:
            return None
        claims = self.keys.open_claims(f"code {code_hash}", row.sealed_claims)
        return _Code(row, _Person(row.subject, row.card_id, row.card_kind, claims, row.auth_time))

    def _nonce_used(self, client_id: str, nonce: str) -> bool:
        with session_scope(self.engine) as session:
            return session.exec(select(SsoCode.code_hash).where(
                SsoCode.client_id == client_id, SsoCode.nonce == nonce)).first() is not None

    def _save_token(self, token: dict[str, Any], request: _Request) -> None:
        code: _Code = request.authorization_code
        token_hash = _sha256(token["access_token"])
        with session_scope(self.engine) as session:
            session.add(SsoAccessToken(
                token_hash=token_hash, client_id=request.client.get_client_id(), code_hash=code.row.code_hash,
                scope=token.get("scope") or "", subject=code.person.subject, card_kind=code.person.card_kind,
                sealed_claims=self.keys.seal_claims(f"token {token_hash}", code.person.claims),
                expires_at=utcnow() + timedelta(seconds=int(token["expires_in"]))))

    # -- the token and userinfo endpoints -----------------------------------------------------

    def token(self, issuer: str, http: HttpRequest) -> Answer:
        try:
            request = _request(http, issuer)
        except BadAuthorizationRequest as error:
            return _refused(error)
        answer: Answer = self.server.create_token_response(request)
        return answer

    def userinfo(self, issuer: str, http: HttpRequest) -> Answer:
        try:
            request = _request(http, issuer)
        except BadAuthorizationRequest as error:
            return _refused(error)
        try:
            token: _Token = self.protector.validate_request(["openid"], request)
        except OAuth2Error as error:
            status, body, headers = error()
            return Answer(status, body, list(headers))
        if self._client(token.row.client_id) is None:  # disabled since
            return Answer(401, {"error": "invalid_token"},
                          [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        claims = self.keys.open_claims(f"token {token.row.token_hash}", token.row.sealed_claims)
        return Answer(200, {"sub": token.row.subject, **claims},
                      [("Content-Type", "application/json"), ("Cache-Control", "no-store")])


def _redirect_host(uri: str) -> str:
    """The host of a redirect URI a client may register: https, or http on the loopback
    (RFC 8252 7.3); no fragment (RFC 6749 3.1.2)."""
    if not isinstance(uri, str) or not 1 <= len(uri) <= 300 or not uri.isprintable() or " " in uri:
        raise InvalidInput("a redirect URI is 1 to 300 printable characters", code="bad_redirect_uri")
    try:
        parts = urlsplit(uri)
    except ValueError:
        parts = None
    loopback = parts is not None and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost",
                                                                                  "::1")
    if parts is None or not parts.hostname or parts.fragment or not (parts.scheme == "https" or loopback):
        raise InvalidInput(f"a redirect URI is an https URL without fragment (http on the loopback): "
                           f"{uri[:80]!r}", code="bad_redirect_uri")
    return parts.hostname.lower()
