"""The base of every typed payload, and the field types payloads share."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import msgspec

__all__ = ["Finite", "Fraction", "NonNegative", "Payload", "PriceLevel", "Severity", "Side"]

_LARGEST = sys.float_info.max
Finite = Annotated[float, msgspec.Meta(ge=-_LARGEST, le=_LARGEST)]
"""A float that is neither NaN nor infinite (both fail the bounds when decoded)."""
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=_LARGEST)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Side = Literal["BUY", "SELL"]
Severity = Literal["info", "warning", "critical"]
PriceLevel = tuple[Finite, NonNegative]
"""One level of a book: (price, size)."""


class Payload(msgspec.Struct, frozen=True, kw_only=True, tag_field="_type", gc=False):
    """Base class of every typed payload. Subclasses set ``tag=`` to their wire name."""
