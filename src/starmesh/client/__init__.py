"""The client engines use. Imports ``starmesh.bus`` and ``starmesh.core``."""

from starmesh.client.factory import create_messagebus_client
from starmesh.client.messagebus import MessageBusClient, Responder
from starmesh.client.subscription import Handler, Subscription

__all__ = ["Handler", "MessageBusClient", "Responder", "Subscription", "create_messagebus_client"]
