"""Audit: history of any record, integrity audits against the chain, the access log."""
