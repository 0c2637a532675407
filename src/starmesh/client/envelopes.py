"""Building the messages an engine instance sends: checked topic, payload, priority and type.

A topic is validated once and remembered with the message type it implies, so publishing
on a known topic costs a dict lookup.
"""

from __future__ import annotations

from typing import Any

from starmesh.core.clock import now_ns
from starmesh.core.enums import EngineType, MessagePriority, MessageType
from starmesh.core.errors import MessageBusError, MessageEncodeError
from starmesh.core.ids import message_id
from starmesh.core.message import Message
from starmesh.core.payloads import PAYLOAD_MESSAGE_TYPES, Payload
from starmesh.core.routing import infer_message_type
from starmesh.core.topics import validate_topic

__all__ = ["Envelopes", "PayloadLike"]

PayloadLike = Payload | dict[str, Any]

_KNOWN_TOPICS_LIMIT = 65_536


class Envelopes:
    """Messages from one engine instance."""

    def __init__(self, engine: EngineType, instance: str) -> None:
        self.engine = engine
        self.instance = instance
        self._topic_types: dict[str, MessageType] = {}
        """Topics already validated, with the message type each implies."""

    def message(
        self,
        topic: str,
        payload: PayloadLike | None,
        priority: MessagePriority | int | str,
        message_type: MessageType | str | None,
        ts_event: int | None,
        correlation_id: str | None,
        reply_to: str | None = None,
        deadline_ns: int | None = None,
    ) -> Message:
        topic_type = self._topic_types.get(topic)
        if topic_type is None:
            topic_type = self._learn_topic(topic)
        if payload is None:
            payload = {}
        elif type(payload) is not dict and not isinstance(payload, Payload):
            raise MessageEncodeError(
                f"payload of {topic!r} is a {type(payload).__name__}; "
                "send a dict or a starmesh Payload struct"
            )
        if type(priority) is not MessagePriority:
            priority = _priority(priority)
        if message_type is not None:
            kind = _message_type(message_type)
        elif type(payload) is dict:
            kind = topic_type
        else:
            kind = PAYLOAD_MESSAGE_TYPES.get(type(payload), topic_type)  # type: ignore[arg-type]
        ts = now_ns()
        return Message(
            id=message_id(ts),
            topic=topic,
            type=kind,
            source=self.engine,
            instance=self.instance,
            priority=priority,
            ts_event=ts if ts_event is None else ts_event,
            ts_publish=ts,
            payload=payload,
            correlation_id=correlation_id,
            reply_to=reply_to,
            deadline_ns=deadline_ns,
        )

    def reply(self, request: Message, kind: MessageType, payload: Any) -> Message:
        """The answer to ``request``: same topic and priority, correlated by its id."""
        ts = now_ns()
        return Message(
            id=message_id(ts),
            topic=request.topic,
            type=kind,
            source=self.engine,
            instance=self.instance,
            priority=request.priority,
            ts_event=ts,
            ts_publish=ts,
            payload=payload,
            correlation_id=request.id,
        )

    def _learn_topic(self, topic: str) -> MessageType:
        validate_topic(topic)
        if len(self._topic_types) >= _KNOWN_TOPICS_LIMIT:
            self._topic_types.clear()
        kind = self._topic_types[topic] = infer_message_type(topic)
        return kind


def _priority(value: MessagePriority | int | str) -> MessagePriority:
    """A priority from its enum, number or name (any case)."""
    try:
        if isinstance(value, str):
            return MessagePriority[value.upper()]
        return MessagePriority(value)
    except (KeyError, ValueError):
        names = ", ".join(p.name for p in MessagePriority)
        raise MessageBusError(f"unknown priority {value!r}; use one of {names}") from None


def _message_type(value: MessageType | str) -> MessageType:
    try:
        return MessageType(value)
    except ValueError:
        raise MessageBusError(f"unknown message type {value!r}") from None
