"""The message envelope every transport carries."""

from __future__ import annotations

from typing import Any

import msgspec

from starmesh.core.enums import EngineType, MessagePriority, MessageType

__all__ = ["Message"]


class Message(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One message on a bus.

    ``payload`` is a typed :class:`~starmesh.core.payloads.Payload` or a ``dict``. A message
    handed to several subscribers in one process is the same object: treat it, and its
    payload, as read-only.
    """

    id: str
    """Unique and sortable by publish time (see :mod:`starmesh.core.ids`)."""
    topic: str
    type: MessageType
    source: EngineType
    instance: str
    """The publishing instance of ``source``."""
    priority: MessagePriority
    ts_event: int
    """UNIX ns of the event the message describes (e.g. the exchange time of a quote)."""
    ts_publish: int
    """UNIX ns at which the message was published."""
    payload: Any
    correlation_id: str | None = None
    """For a reply: the id of the request it answers."""
    reply_to: str | None = None
    """For a request: the address of the instance waiting for the reply."""
    deadline_ns: int | None = None
    """UNIX ns after which the message is no longer worth handling (requests set it)."""

    def expired(self, now_ns: int) -> bool:
        return self.deadline_ns is not None and now_ns > self.deadline_ns
