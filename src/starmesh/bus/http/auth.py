"""Who may call an engine's HTTP endpoints: bearer tokens, one per engine.

The scheme, and why: each engine process holds only its own token
(``STARMESH_HTTP_TOKEN``); every process holds the SHA-256 digests of all of them
(``STARMESH_HTTP_TOKENS``, JSON ``{"strategy": "<hex digest>", ...}``). A receiver hashes the
presented token, finds whose it is, and then requires every message in the request to claim
that engine as its ``source``. Digests, not the tokens, are what every host stores: a
compromised engine (or a leaked config file) cannot speak as another engine, which an HMAC of
one shared master secret would allow, since every host would need the master to check. Names
that are not engines (``operator``, say) may read health and metrics but post nothing.

With only ``STARMESH_HTTP_TOKEN`` set (no digests), the token is shared: any holder may call
any endpoint, and the ``source`` claim cannot be checked. With neither, the endpoints are open
(and bind to 127.0.0.1 by default). ``starmesh token NAME`` makes a token and its digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping

import msgspec
from fastapi import HTTPException, Request

from starmesh.core.config import Settings
from starmesh.core.enums import EngineType

__all__ = ["HttpAuth", "Identity", "new_token", "token_digest"]


def token_digest(token: str) -> str:
    """The hex SHA-256 of ``token``: what ``STARMESH_HTTP_TOKENS`` holds."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return secrets.token_urlsafe(32)


class Identity(msgspec.Struct, frozen=True):
    """Who a request comes from: a name from the digests, or ``shared`` (the shared token),
    or ``anonymous`` (no tokens configured)."""

    name: str

    @property
    def engine(self) -> EngineType | None:
        """The engine this identity may speak as; None: any (shared, open) or none."""
        try:
            return EngineType(self.name)
        except ValueError:
            return None

    @property
    def may_post_as_any(self) -> bool:
        return self.name in ("shared", "anonymous")


class HttpAuth:
    def __init__(self, token: str | None = None, digests: Mapping[str, str] | None = None) -> None:
        self._token = token or None
        self._by_digest = {digest.lower(): name for name, digest in (digests or {}).items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpAuth:
        """``STARMESH_HTTP_TOKEN`` and ``STARMESH_HTTP_TOKENS``."""
        token = settings.http_token.get_secret_value() if settings.http_token else None
        return cls(token, settings.http_tokens)

    def dependency(self) -> Callable[[Request], Awaitable[Identity]]:
        """A FastAPI dependency for every route of an app: 401 without a valid token (the
        route never runs); the caller's identity is in ``request.state.identity``."""

        async def require(request: Request) -> Identity:
            identity = self.identify(request.headers.get("authorization"))
            if identity is None:
                raise HTTPException(
                    status_code=401,
                    detail="a valid bearer token is required (Authorization: Bearer <token>)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            request.state.identity = identity
            return identity

        return require

    @property
    def enabled(self) -> bool:
        return self._token is not None or bool(self._by_digest)

    def outgoing_headers(self) -> dict[str, str]:
        """What this process sends to others' endpoints."""
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def identify(self, authorization: str | None) -> Identity | None:
        """The caller, from its ``Authorization`` header; None when it is not let in."""
        if not self.enabled:
            return Identity("anonymous")
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        presented = presented.strip()
        if self._by_digest:
            name = self._by_digest.get(token_digest(presented))
            return None if name is None else Identity(name)
        assert self._token is not None
        return Identity("shared") if hmac.compare_digest(presented, self._token) else None

    def __repr__(self) -> str:
        return (
            f"HttpAuth(token={'set' if self._token else 'unset'}, digests={len(self._by_digest)})"
        )
