"""Transports: the ``Transport`` protocol and its backends. Imports only ``starmesh.core``."""

from starmesh.bus.memory import MemoryTransport
from starmesh.bus.transport import (
    DeadLetter,
    DeliveryHandler,
    Endpoint,
    Transport,
    TransportHealth,
    address_of,
)

__all__ = [
    "DeadLetter",
    "DeliveryHandler",
    "Endpoint",
    "MemoryTransport",
    "Transport",
    "TransportHealth",
    "address_of",
]
