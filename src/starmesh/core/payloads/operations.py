"""Operations: heartbeats and error replies."""

from __future__ import annotations

from typing import Any

import msgspec

from starmesh.core.enums import EngineState
from starmesh.core.payloads.base import NonNegative, Payload

__all__ = [
    "ErrorInfo",
    "HealthStatus",
]


class HealthStatus(Payload, tag="health_status", frozen=True):
    """An engine's heartbeat on ``system.health.<engine>``."""

    engine: str
    instance: str
    state: EngineState
    uptime_s: NonNegative
    messages_in: int = 0
    messages_out: int = 0
    handler_errors: int = 0
    last_latency_us: float | None = None
    """Publish-to-handler time of the last message this engine received."""
    interval_s: NonNegative = 0.0
    """Seconds to the next heartbeat: a peer silent for a few intervals is down."""
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorInfo(Payload, tag="error", frozen=True):
    """The payload of an ERROR reply: why a request could not be answered."""

    code: str
    message: str
