"""An engine's ``POST /v1/messages``: messages from publishers that cannot reach the bus.

The body is one message or an array of them (msgpack or JSON, see ``wire.py``). The answer
comes once every message is handled (or dead-lettered) by the receiving instance, so a 200
means *delivered*: the publisher removes them from its outbox. Statuses:

- 200 ``{"accepted": n, "duplicates": d}``: all handled (duplicates were handled before);
- 400 malformed body, 413 body too large, 415 neither msgpack nor JSON;
- 401 no or unknown bearer token (nothing is read), 403 a message claims another engine;
- 409 ``{"accepted": k, ...}``: the first k were handled, the next is not for this instance;
- 503 the instance is stopping.

Every refusal is counted (``counts``) and answered with a message saying why.
"""

from __future__ import annotations

from typing import Final, Protocol

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response

from starmesh.bus.http.auth import HttpAuth, Identity
from starmesh.bus.http.wire import MESSAGES_PATH, UnsupportedMediaType, decode_body
from starmesh.core.codec import MessageCodec
from starmesh.core.errors import MessageBusError, MessageDecodeError
from starmesh.core.message import Message

__all__ = ["MessagesEndpoint", "Receipt", "Receiver", "ReceiverClosed", "messages_router"]

_json = msgspec.json.Encoder()
_CHUNK: Final = 64 * 1024


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    """Messages handled (or dead-lettered after their retries), from the first, in order."""
    duplicates: int = 0
    """Of those, already handled before (dropped by id)."""
    error: str = ""
    """Why the message after the accepted ones was refused (empty: none was)."""


class ReceiverClosed(MessageBusError):
    """The receiving instance is stopping: try another, or later."""


class Receiver(Protocol):
    async def receive(self, messages: list[Message]) -> Receipt:
        """Handle ``messages`` in order; raise ReceiverClosed when stopping."""
        ...


class _TooLarge(Exception):
    pass


class MessagesEndpoint:
    """The route and its counts: ``router`` is what a FastAPI app includes."""

    def __init__(
        self, receiver: Receiver, *, auth: HttpAuth, codec: MessageCodec, max_body: int
    ) -> None:
        self._receiver = receiver
        self._auth = auth
        self._codec = codec
        self._max_body = max_body
        self.counts: dict[str, int] = dict.fromkeys(
            ("requests", "messages", "unauthorized", "forbidden", "malformed", "too_large",
             "unsupported_media", "refused", "unavailable"), 0,
        )  # fmt: skip
        self.router = APIRouter()
        self.router.add_api_route(
            MESSAGES_PATH, self._post, methods=["POST"], response_class=Response,
            summary="Deliver messages to this engine instance (the bus's HTTP fallback)",
        )  # fmt: skip

    async def _post(self, request: Request) -> Response:
        self.counts["requests"] += 1
        identity = self._auth.identify(request.headers.get("authorization"))
        if identity is None:
            return self._refuse("unauthorized", 401, "a valid bearer token is required")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            return self._refuse("too_large", 413, f"the body limit is {self._max_body:,} bytes")
        try:
            body = await self._read(request)
            messages = decode_body(body, request.headers.get("content-type", ""), self._codec)
        except _TooLarge:
            return self._refuse("too_large", 413, f"the body limit is {self._max_body:,} bytes")
        except UnsupportedMediaType as exc:
            return self._refuse("unsupported_media", 415, str(exc))
        except MessageDecodeError as exc:
            return self._refuse("malformed", 400, str(exc))
        claim_error = _claim_error(identity, messages)
        if claim_error:
            return self._refuse("forbidden", 403, claim_error)
        self.counts["messages"] += len(messages)
        try:
            receipt = await self._receiver.receive(messages)
        except ReceiverClosed as exc:
            return self._refuse("unavailable", 503, str(exc))
        status = 200
        if receipt.error:
            self.counts["refused"] += 1
            status = 409
        return Response(_json.encode(receipt), status_code=status, media_type="application/json")

    async def _read(self, request: Request) -> bytes:
        """The body, refused as soon as it passes the limit (a chunked body has no length)."""
        parts: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise _TooLarge
            parts.append(chunk)
        return b"".join(parts)

    def _refuse(self, what: str, status: int, error: str) -> Response:
        self.counts[what] += 1
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        body = _json.encode(Receipt(accepted=0, error=error))
        return Response(body, status_code=status, media_type="application/json", headers=headers)


def _claim_error(identity: Identity, messages: list[Message]) -> str:
    if identity.may_post_as_any:
        return ""
    engine = identity.engine
    if engine is None:
        return f"{identity.name!r} may not post messages"
    for message in messages:
        if message.source is not engine:
            return (
                f"message {message.id} claims to come from {message.source.value}; "
                f"this token belongs to {engine.value}"
            )
    return ""


def messages_router(
    receiver: Receiver, *, auth: HttpAuth, codec: MessageCodec, max_body: int
) -> APIRouter:
    """``POST /v1/messages`` delivering into ``receiver``, for ``app.include_router``."""
    return MessagesEndpoint(receiver, auth=auth, codec=codec, max_body=max_body).router
