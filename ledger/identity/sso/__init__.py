"""Single sign-on with the education identity card (一人一号、单点登录): the node as an
OpenID Provider whose authentication is the card's key-bound presentation (``service``),
its signing key and subject secret (``keys``), its tables (``models``)."""

from ledger.identity.sso.keys import ProviderKeys
from ledger.identity.sso.service import ACR, Answer, BadAuthorizationRequest, HttpRequest, SignIn, SsoService

__all__ = ["ACR", "Answer", "BadAuthorizationRequest", "HttpRequest", "ProviderKeys", "SignIn", "SsoService"]
