"""starmesh: the communication layer of a multi-engine trading platform.

A market-data *star* (one hub calls the external sources and fans data out) and an engine
*mesh* (engines talk directly over the Engine Logic Bus), behind one client::

    from starmesh import create_messagebus_client, EngineType, MessagePriority

    async with create_messagebus_client(EngineType.STRATEGY) as bus:
        await bus.publish("strategy.signals.buy", {"symbol": "AAPL", "action": "BUY"},
                          priority=MessagePriority.HIGH)
"""

from starmesh.__about__ import __version__
from starmesh.client import (
    Handler,
    MessageBusClient,
    Responder,
    Subscription,
    create_messagebus_client,
)
from starmesh.core import (
    DataType,
    EngineType,
    MarketDataError,
    MarketDataTimeout,
    Message,
    MessageBusError,
    MessageDecodeError,
    MessagePriority,
    MessageType,
    NoResponderError,
    RemoteError,
    RequestTimeout,
    StarmeshError,
)
from starmesh.core.config import Settings
from starmesh.core.payloads import Snapshot
from starmesh.marketdata.client import MarketDataClient
from starmesh.marketdata.factory import create_marketdata_client, create_marketdata_hub
from starmesh.marketdata.hub import MarketDataHub

__all__ = [
    "DataType",
    "EngineType",
    "Handler",
    "MarketDataClient",
    "MarketDataError",
    "MarketDataHub",
    "MarketDataTimeout",
    "Message",
    "MessageBusClient",
    "MessageBusError",
    "MessageDecodeError",
    "MessagePriority",
    "MessageType",
    "NoResponderError",
    "RemoteError",
    "RequestTimeout",
    "Responder",
    "Settings",
    "Snapshot",
    "StarmeshError",
    "Subscription",
    "__version__",
    "create_marketdata_client",
    "create_marketdata_hub",
    "create_messagebus_client",
]
