"""Database URLs: which ones starmesh takes, the embedded default, and how they are shown.

URLs are SQLAlchemy's: ``sqlite+aiosqlite:///relative/ledger.db``,
``sqlite+aiosqlite:////absolute/ledger.db``, ``sqlite+aiosqlite:///:memory:``,
``postgresql+asyncpg://user:password@host:5432/db``. ``sqlite://`` and ``postgresql://`` get
their async driver. A password is never shown: every URL a user or a log sees is redacted.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from starmesh.core.config import Settings
from starmesh.storage.errors import DatabaseUrlError

__all__ = [
    "DEFAULT_FILE",
    "database_url",
    "default_database_url",
    "parse_database_url",
    "redact",
    "sqlite_file",
]

DEFAULT_FILE = "ledger.db"
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def default_database_url(data_dir: Path) -> str:
    """The embedded ledger: a SQLite file in the data directory."""
    return f"sqlite+aiosqlite:///{data_dir / DEFAULT_FILE}"


def database_url(explicit: str | None = None, settings: Settings | None = None) -> str:
    """The URL given, else ``STARMESH_DATABASE_URL``, else the embedded default."""
    if explicit:
        return explicit
    settings = settings or Settings()
    if settings.database_url is not None and settings.database_url.get_secret_value():
        return settings.database_url.get_secret_value()
    return default_database_url(settings.data_dir)


def parse_database_url(url: str) -> URL:
    """``url`` as SQLAlchemy's URL with its async driver; a clear error if it is no use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            f"{redact(url)} is not a database URL: give sqlite+aiosqlite:///path/ledger.db "
            "or postgresql+asyncpg://user@host/db"
        ) from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseUrlError(
            f"{redact(url)}: starmesh keeps its ledger in SQLite (sqlite+aiosqlite://) or "
            f"PostgreSQL (postgresql+asyncpg://), not {parsed.drivername}"
        )
    parsed = parsed.set(drivername=driver)
    if driver.startswith("postgresql") and not parsed.database:
        raise DatabaseUrlError(f"{redact(url)} names no database (…/dbname at its end)")
    return parsed


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and for an in-memory database."""
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def redact(url: str | URL) -> str:
    """``url`` with its password hidden, fit for logs and messages."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<a database URL that does not parse>"
    return parsed.render_as_string(hide_password=True)
