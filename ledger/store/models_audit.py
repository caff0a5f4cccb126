"""Tables of integrity audit runs (ledger/audit/integrity.py)."""
