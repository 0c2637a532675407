"""Building messages in tests without a client."""

from __future__ import annotations

from typing import Any

from starmesh import EngineType, Message, MessagePriority, MessageType
from starmesh.core.ids import message_id


def make_message(
    topic: str = "risk.alert.var",
    priority: MessagePriority = MessagePriority.NORMAL,
    payload: Any = None,
    **fields: Any,
) -> Message:
    return Message(
        id=message_id(1_795_000_000_000_000_000),
        topic=topic,
        type=fields.pop("type", MessageType.EVENT),
        source=fields.pop("source", EngineType.RISK),
        instance=fields.pop("instance", "test-1"),
        priority=priority,
        ts_event=1_795_000_000_000_000_000,
        ts_publish=1_795_000_000_000_000_000,
        payload={} if payload is None else payload,
        **fields,
    )
