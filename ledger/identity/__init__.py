"""Education identity cards (教育信息身份证): issue, recognise, sign and seal, trace.

A card belongs to a student, teacher or graduate and is what their learning records and
evaluation data attach to. On chain (contracts/IdentityRegistry.vy) a card is an opaque id
with commitments to its holder's key and portrait, its kind, issuer, validity and status;
off chain (this package) the node keeps the person's data encrypted (``personal``), the
portrait (``photos``), and hands the holder an SD-JWT VC bound to their key. Documents
organisations send to a holder are encrypted to the holder's own key (``documents``); the
holder authenticates to the node with proofs signed by the card's key (``holder_auth``).
"""
