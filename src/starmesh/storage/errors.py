"""What the storage layer raises. Each says what went wrong and what to do about it."""

from __future__ import annotations

from starmesh.core.errors import ConfigurationError, StarmeshError

__all__ = [
    "DatabaseUrlError",
    "InvalidRecordError",
    "LedgerMismatchError",
    "SchemaOutOfDateError",
    "StorageError",
]


class StorageError(StarmeshError):
    """The ledger or an engine checkpoint could not be read or written."""


class DatabaseUrlError(StorageError, ConfigurationError):
    """A database URL names no database starmesh can use."""


class SchemaOutOfDateError(StorageError):
    """The database's schema is not the one this code was written for: older (run
    ``starmesh db upgrade``) or newer (upgrade starmesh)."""


class InvalidRecordError(StorageError, ValueError):
    """A record offered to the ledger is not fit to keep (a NaN price, a zero quantity...);
    it is refused before it reaches the queue, and counted."""


class LedgerMismatchError(StorageError):
    """State rebuilt from the ledger disagrees with the engine's last checkpoint."""
