"""The ledger, engine checkpoints and processed message ids, in SQLite (embedded) or PostgreSQL.

SQLAlchemy 2 Core on its async engines (aiosqlite, asyncpg), schema migrations by Alembic
shipped in the package. This layer sits below the engines and above ``core``: engines get an
:class:`EngineLedger` from the composition root and never see SQL.
"""

from starmesh.storage.database import Database
from starmesh.storage.errors import (
    DatabaseUrlError,
    InvalidRecordError,
    LedgerMismatchError,
    SchemaOutOfDateError,
    StorageError,
)
from starmesh.storage.ledger import EngineLedger
from starmesh.storage.migrate import current_revision, ensure_current, head_revision, upgrade
from starmesh.storage.processed import Effect, ProcessedMessages
from starmesh.storage.records import (
    AlertRecord,
    CheckpointRecord,
    EquityRecord,
    FillRecord,
    Record,
    SignalRecord,
)
from starmesh.storage.store import Storage
from starmesh.storage.url import database_url, default_database_url, parse_database_url, redact
from starmesh.storage.writer import LedgerWriter

__all__ = [
    "AlertRecord",
    "CheckpointRecord",
    "Database",
    "DatabaseUrlError",
    "Effect",
    "EngineLedger",
    "EquityRecord",
    "FillRecord",
    "InvalidRecordError",
    "LedgerMismatchError",
    "LedgerWriter",
    "ProcessedMessages",
    "Record",
    "SchemaOutOfDateError",
    "SignalRecord",
    "Storage",
    "StorageError",
    "current_revision",
    "database_url",
    "default_database_url",
    "ensure_current",
    "head_revision",
    "parse_database_url",
    "redact",
    "upgrade",
]
