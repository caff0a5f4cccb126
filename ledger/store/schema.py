"""Every table of every capability, in the one metadata that migrations compare against.

Each capability keeps its tables beside its service (``ledger/<capability>/models.py``);
importing this module registers all of them on ``SQLModel.metadata``. Only migrations and
schema checks need it: code that uses a table imports that table's own module.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

import ledger.anchoring.models
import ledger.audit.models
import ledger.consortium.models
import ledger.credentials.models
import ledger.evaluation.models
import ledger.identity.models
import ledger.identity.sso.models
import ledger.indexer.models
import ledger.records.models
import ledger.signatures.models  # noqa: F401  (each import registers its tables)

CAPABILITY_MODELS = (ledger.anchoring.models, ledger.audit.models, ledger.consortium.models,
                     ledger.credentials.models, ledger.evaluation.models, ledger.identity.models,
                     ledger.identity.sso.models, ledger.indexer.models, ledger.records.models,
                     ledger.signatures.models)

metadata: MetaData = SQLModel.metadata
