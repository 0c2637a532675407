"""What an engine knows of its peers: the heartbeats on ``system.health.*``."""

from __future__ import annotations

from typing import Any, Literal

from starmesh.core.enums import EngineState
from starmesh.core.payloads import HealthStatus

__all__ = ["PeerDirectory", "PeerState"]

PeerState = Literal["up", "degraded", "starting", "down"]

_MISSED_BEATS = 3
"""A peer silent for this many of its heartbeat intervals is down."""


class PeerDirectory:
    """The last heartbeat of each engine, and the time (of the observer's clock) it came."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[HealthStatus, int]] = {}

    def seen(self, status: HealthStatus, now_ns: int) -> None:
        self._last[status.engine] = (status, now_ns)

    def state(self, engine: str, now_ns: int) -> PeerState:
        last = self._last.get(engine)
        if last is None:
            return "down"
        status, seen_ns = last
        silent_s = (now_ns - seen_ns) / 1e9
        if status.interval_s > 0 and silent_s > _MISSED_BEATS * status.interval_s:
            return "down"
        return _SHOWN[status.state]

    def snapshot(self, now_ns: int) -> dict[str, dict[str, Any]]:
        """engine -> its state, instance, last heartbeat's age and counters, by engine name."""
        return {
            engine: {
                "state": self.state(engine, now_ns),
                "instance": status.instance,
                "heartbeat_age_s": round((now_ns - seen_ns) / 1e9, 3),
                "messages_in": status.messages_in,
                "messages_out": status.messages_out,
                "handler_errors": status.handler_errors,
                "last_latency_us": status.last_latency_us,
                "detail": status.detail,
            }
            for engine, (status, seen_ns) in sorted(self._last.items())
        }


_SHOWN: dict[EngineState, PeerState] = {
    EngineState.STARTING: "starting",
    EngineState.RUNNING: "up",
    EngineState.DEGRADED: "degraded",
    EngineState.STOPPING: "down",
    EngineState.STOPPED: "down",
    EngineState.FAULTED: "down",
}
