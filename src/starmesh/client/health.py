"""One instance's health, as its engine's ``/health`` and ``starmesh status`` show it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec

from starmesh.bus.redis import RedisTransport
from starmesh.bus.transport import Transport
from starmesh.core.enums import EngineType

__all__ = ["instance_health"]


async def instance_health(
    engine: EngineType,
    instance: str,
    running: bool,
    transports: Sequence[Transport],
    failover: dict[str, Any],
    *,
    local_dead_letters: int,
    timeout: float,
) -> dict[str, Any]:
    """``status`` is ``ok``, ``degraded`` (a transport unhealthy, or not on the primary route)
    or ``down`` (not running); ``dead_letters`` is None when the bus cannot be asked."""
    reports = [msgspec.to_builtins(t.health()) for t in transports]
    dead: int | None = local_dead_letters
    for transport in transports:
        try:
            async with asyncio.timeout(timeout):
                if isinstance(transport, RedisTransport):
                    count = await transport.dead_letter_count(engine)
                else:
                    count = len(await transport.dead_letters(engine, 1_000_000))
        except Exception:  # the bus is unreachable: unknown, not zero
            dead = None
            break
        dead = (dead or 0) + count
    degraded = not all(r["healthy"] for r in reports) or failover.get("route", "bus") != "bus"
    return {
        "status": "down" if not running else ("degraded" if degraded else "ok"),
        "engine": engine.value,
        "instance": instance,
        "transports": reports,
        "failover": failover,
        "dead_letters": dead,
    }
