"""Delivering to another engine's ``POST /v1/messages``: one pooled httpx client, bearer
token attached, the messages of one request in order.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import msgspec

from starmesh.bus.http.auth import HttpAuth
from starmesh.bus.http.ingress import Receipt
from starmesh.bus.http.wire import MESSAGES_PATH, MSGPACK, encode_body
from starmesh.core.errors import MessageBusError

__all__ = ["DeliveryRefused", "HttpEgress"]

_receipt = msgspec.json.Decoder(Receipt)


class DeliveryRefused(MessageBusError):
    """Not every message was delivered: ``accepted`` were (from the first), the rest not.

    ``status`` is the HTTP status (0: no answer, the endpoint is unreachable).
    """

    def __init__(
        self, url: str, status: int, accepted: int, reason: str, *, timed_out: bool = False
    ) -> None:
        super().__init__(f"{url}: {status or 'unreachable'}: {reason}")
        self.status = status
        self.accepted = accepted
        self.timed_out = timed_out
        """No answer in time: the endpoint may be handling them still (a slow engine)."""


class HttpEgress:
    def __init__(self, auth: HttpAuth, *, timeout: float) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), headers=auth.outgoing_headers(), trust_env=False
        )

    async def deliver(self, base_url: str, messages: Sequence[bytes]) -> int:
        """POST the encoded ``messages`` to ``base_url``; how many were accepted (all, or
        DeliveryRefused says how many).
        """
        url = base_url.rstrip("/") + MESSAGES_PATH
        try:
            response = await self._client.post(
                url, content=encode_body(messages), headers={"Content-Type": MSGPACK}
            )
        except httpx.HTTPError as exc:
            timed_out = isinstance(exc, httpx.TimeoutException)
            raise DeliveryRefused(
                url, 0, 0, f"{type(exc).__name__}: {exc}", timed_out=timed_out
            ) from None
        try:
            receipt = _receipt.decode(response.content)
        except msgspec.DecodeError:
            receipt = Receipt(accepted=0, error=response.text[:200] or response.reason_phrase)
        if response.status_code != 200:
            raise DeliveryRefused(url, response.status_code, receipt.accepted, receipt.error)
        return receipt.accepted

    async def aclose(self) -> None:
        await self._client.aclose()
