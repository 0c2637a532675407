"""The HTTP transport pieces: each engine's ``POST /v1/messages`` (ingress) and the client
that delivers to it (egress). The fallback path of the Engine Logic Bus when Redis is down.
Imports only ``starmesh.core``.
"""

from starmesh.bus.http.auth import HttpAuth, Identity, token_digest
from starmesh.bus.http.egress import DeliveryRefused, HttpEgress
from starmesh.bus.http.ingress import (
    MessagesEndpoint,
    Receipt,
    Receiver,
    ReceiverClosed,
    messages_router,
)
from starmesh.bus.http.wire import MESSAGES_PATH, decode_body, encode_body

__all__ = [
    "MESSAGES_PATH",
    "DeliveryRefused",
    "HttpAuth",
    "HttpEgress",
    "Identity",
    "MessagesEndpoint",
    "Receipt",
    "Receiver",
    "ReceiverClosed",
    "decode_body",
    "encode_body",
    "messages_router",
    "token_digest",
]
