"""Keeping a provider's key out of everything but the wire.

A :class:`CredentialTransport` sits under a source's ``httpx.AsyncClient`` and adds the
credentials to a copy of each request as it leaves: what httpx logs (every URL, query string
included, at INFO on ``httpx``), keeps on responses and attaches to exceptions has no key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal, NamedTuple
from urllib.parse import quote

import httpx
from pydantic import SecretStr

__all__ = ["REDACTED", "Credential", "CredentialTransport", "credential", "scrub"]

REDACTED = "***"


class Credential(NamedTuple):
    """A secret a provider wants on every request, as a query parameter or a header."""

    where: Literal["query", "header"]
    name: str
    value: SecretStr


class CredentialTransport(httpx.AsyncBaseTransport):
    """Adds credentials to a copy of each request, below the client that logs requests.

    The client's own request (logged by httpx, kept as ``response.request``, attached to its
    exceptions) never holds the key. A transport failure is raised again as the same httpx
    exception type bound to that key-free request, outside the ``except`` block, so the
    original (whose request has the key) is not chained to it.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, credentials: Sequence[Credential] = ()
    ) -> None:
        self._inner = inner
        self._credentials = tuple(credentials)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._credentials:
            return await self._inner.handle_async_request(request)
        failure: httpx.TransportError
        try:
            return await self._inner.handle_async_request(self._with_credentials(request))
        except httpx.TransportError as exc:
            secrets = [c.value.get_secret_value() for c in self._credentials]
            failure = type(exc)(scrub(str(exc), secrets), request=request)
        raise failure

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _with_credentials(self, request: httpx.Request) -> httpx.Request:
        url = request.url
        headers = request.headers.copy()
        for credential in self._credentials:
            secret = credential.value.get_secret_value()
            if credential.where == "query":
                url = url.copy_set_param(credential.name, secret)
            else:
                headers[credential.name] = secret
        return httpx.Request(
            request.method, url, headers=headers, stream=request.stream,
            extensions=request.extensions,
        )  # fmt: skip


def credential(
    where: Literal["query", "header"], name: str, value: SecretStr | None
) -> tuple[Credential, ...]:
    """The credential to send, or none when the setting is unset or empty."""
    return (Credential(where, name, value),) if value and value.get_secret_value() else ()


def scrub(text: str, secrets: Collection[str]) -> str:
    """``text`` with every secret (raw or URL-encoded) replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED).replace(quote(secret, safe=""), REDACTED)
    return text
