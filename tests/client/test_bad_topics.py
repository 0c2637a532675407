"""A publish on a bad topic is refused with a typed error; the client carries on."""

from __future__ import annotations

import pytest

from starmesh import EngineType, Message, create_messagebus_client
from starmesh.core.errors import InvalidTopicError
from tests.helpers import eventually


async def test_a_bad_topic_is_refused_and_the_bus_goes_on() -> None:
    async with create_messagebus_client(EngineType.RISK) as risk:
        got: list[Message] = []
        await risk.subscribe("risk.*", got.append)
        for bad in ["", "a" * 10_240, "risk.*", "risk..x", "risk.x\n", "risk.[x]"]:
            with pytest.raises(InvalidTopicError):
                await risk.publish(bad, {"n": 1})
        await risk.publish("risk.ok", {"n": 2})
        await eventually(lambda: len(got) == 1, what="the good message")
