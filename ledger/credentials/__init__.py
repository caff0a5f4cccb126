"""Credentials: W3C VC 2.0 claims secured as SD-JWT, anchored, verified against the chain."""
