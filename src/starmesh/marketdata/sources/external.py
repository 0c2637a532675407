"""The external providers' adapters, by name (filled by the source adapters)."""

from __future__ import annotations

from collections.abc import Callable

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.marketdata.source import Source

__all__ = ["EXTERNAL_SOURCES"]

EXTERNAL_SOURCES: dict[str, Callable[[Settings, Clock], Source]] = {}
