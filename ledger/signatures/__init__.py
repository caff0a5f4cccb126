"""Electronic signatures and seals: PDF signatures with a visible stamp, detached JWS and
SM2 seals, each timestamped by anchoring and judged against the chain at that time."""

from ledger.signatures.service import SignatureService, signature_leaf
from ledger.signatures.types import SignatureFormat, SignatureVerdict

__all__ = ["SignatureFormat", "SignatureService", "SignatureVerdict", "signature_leaf"]
