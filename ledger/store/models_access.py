"""Tables of the access log (ledger/audit/accesslog.py)."""
