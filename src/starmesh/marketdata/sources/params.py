"""Reading request parameters and provider values: the small checks every adapter shares."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime

from starmesh.core.errors import InvalidRequestError, MalformedResponseError
from starmesh.marketdata.source import DataRequest

__all__ = ["choice_param", "iso_date_param", "positive_int_param", "to_float", "to_ns"]


def positive_int_param(
    request: DataRequest, name: str, default: int | None, limit: int
) -> int | None:
    """The whole-number parameter ``name``, between 1 and ``limit``."""
    raw = request.param(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) <= limit:
        raise InvalidRequestError(f"{name} must be a whole number from 1 to {limit:,}, got {raw!r}")
    return int(raw)


def choice_param(request: DataRequest, name: str, default: str, choices: Collection[str]) -> str:
    """The parameter ``name``, one of ``choices``."""
    value = request.param(name, default) or default
    if value not in choices:
        raise InvalidRequestError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def iso_date_param(request: DataRequest, name: str) -> str | None:
    """The date parameter ``name`` (``YYYY-MM-DD``), if given."""
    raw = request.param(name)
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw).isoformat()
    except ValueError:
        pass
    raise InvalidRequestError(f"{name} must be a date as YYYY-MM-DD, got {raw!r}")


def to_float(value: object, what: str) -> float:
    """A provider's number, which may come as a string."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    raise MalformedResponseError(f"{what} is not a number: {value!r}")


def to_ns(when: datetime) -> int:
    """UNIX nanoseconds of an aware datetime, without float rounding."""
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
