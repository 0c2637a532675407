"""The embedded default: one pair of in-process buses per event loop.

Every client created without a URL joins the pair of its running loop, so engines in one
program talk to each other with no setup, and each test (its own loop) gets fresh buses.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import NamedTuple

from starmesh.bus.memory import MemoryTransport
from starmesh.core.codec import MessageCodec
from starmesh.core.config import Settings
from starmesh.core.routing import MARKETDATA_BROADCAST_PATTERNS

__all__ = ["EmbeddedBuses", "embedded_buses"]


class EmbeddedBuses(NamedTuple):
    logic: MemoryTransport
    marketdata: MemoryTransport


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EmbeddedBuses] = (
    weakref.WeakKeyDictionary()
)


async def embedded_buses(settings: Settings) -> EmbeddedBuses:
    """The running loop's buses, created and started by the first caller (with its settings)."""
    loop = asyncio.get_running_loop()
    buses = _by_loop.get(loop)
    if buses is None:
        buses = EmbeddedBuses(
            logic=_memory_transport("memory:logic", settings, ()),
            marketdata=_memory_transport(
                "memory:marketdata", settings, MARKETDATA_BROADCAST_PATTERNS
            ),
        )
        await buses.logic.start()
        await buses.marketdata.start()
        _by_loop[loop] = buses
    return buses


def _memory_transport(name: str, settings: Settings, broadcast: tuple[str, ...]) -> MemoryTransport:
    return MemoryTransport(
        name,
        lane_capacity=settings.lane_capacity,
        publish_timeout=settings.publish_timeout,
        max_deliveries=settings.max_deliveries,
        dead_letter_capacity=settings.dead_letter_capacity,
        broadcast_patterns=broadcast,
        conflated_patterns=broadcast,  # market-data updates: the latest value wins when full
        codec=MessageCodec(settings.max_message_bytes),
    )
