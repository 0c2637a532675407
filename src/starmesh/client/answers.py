"""A responder's answer to a request, as the reply message sent back; what a failure shows."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from starmesh.client.envelopes import Envelopes, PayloadLike
from starmesh.core.enums import MessageType
from starmesh.core.errors import StarmeshError
from starmesh.core.message import Message
from starmesh.core.payloads import ErrorInfo

__all__ = ["reply_of", "shown_error"]

logger = logging.getLogger("starmesh.client")

_Responder = Callable[[Message], "Awaitable[PayloadLike | None] | PayloadLike | None"]
"""``starmesh.client.Responder`` (defined beside the client, which takes it)."""


async def reply_of(
    request: Message, responder: _Responder, envelopes: Envelopes, *, expose_errors: bool
) -> Message:
    """The reply to ``request``: the responder's result, or an ERROR reply if it raised."""
    try:
        result = responder(request)
        if inspect.isawaitable(result):
            result = await result
        return envelopes.reply(request, MessageType.REPLY, {} if result is None else result)
    except Exception as exc:
        if isinstance(exc, StarmeshError):  # a refusal written to be read: no traceback
            logger.warning(
                "responder for %r refused request %s: %s", request.topic, request.id, exc
            )
        else:
            logger.exception("responder for %r failed (request %s)", request.topic, request.id)
        info = shown_error(exc, request, expose_errors)
        return envelopes.reply(request, MessageType.ERROR, info)


def shown_error(exc: Exception, request: Message, expose: bool) -> ErrorInfo:
    """What the requester learns of a responder's failure: its type always; its text only
    when it is one of starmesh's own errors (written to be shown) or ``expose_errors`` is on.
    An arbitrary exception's text may carry a connection string, a path, an account."""
    if expose or isinstance(exc, StarmeshError):
        return ErrorInfo(code=type(exc).__name__, message=str(exc))
    return ErrorInfo(
        code=type(exc).__name__,
        message=f"the responder failed; its log has the details (request {request.id})",
    )
