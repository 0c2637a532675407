"""Active or standby: a MarketData Hub under a lease (``starmesh.client.lease``).

A standby asks for the lease every ``min(ttl / 4, 0.5)`` s. Once it has it, the hub first
*resumes* with the lease's token (its new epoch): every pair numbers on from the snapshot
keys. Only then is it active, and it *serves*: it streams what the previous hub streamed and
answers requests, the ones already waiting included. Nothing is numbered or written while it
resumes (it still refuses as a standby), so no value carries the old epoch or a number the
previous hub already used. The active
hub renews every third of the TTL; when a renewal says the lease is gone (it paused past the
TTL and another hub took over), or it could not renew for a whole TTL (Redis unreachable),
it is *deactivated*: it stops answering and streaming, and campaigns again. Its writes were
fenced all along, so whatever it still tried to write after losing the lease was refused.

Both states are announced every round, so ``starmesh status`` shows the standby too.
Lease timing is real time (the TTL runs in Redis), never the hub's injectable clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from starmesh.client.lease import HubLease
from starmesh.core.errors import MessageBusError

__all__ = ["HubLeadership"]

logger = logging.getLogger("starmesh.marketdata.leadership")


class HubLeadership:
    def __init__(
        self,
        lease: HubLease,
        *,
        resume: Callable[[int], Awaitable[None]],
        serve: Callable[[], Awaitable[None]],
        deactivate: Callable[[], Awaitable[None]],
        http_url: Callable[[], str | None],
        ttl_s: float,
    ) -> None:
        self.lease = lease
        self._resume = resume
        self._serve = serve
        self._deactivate = deactivate
        self._http_url = http_url
        self._ttl_s = ttl_s
        self._renew_every = ttl_s / 3
        self._poll_every = min(ttl_s / 4, 0.5)
        self.state = "standby"
        self.elections = 0
        self.step_downs = 0
        self.since = time.monotonic()
        self._renewed_at = 0.0
        self._wake = asyncio.Event()

    @property
    def active(self) -> bool:
        return self.state == "active"

    async def campaign(self) -> bool:
        """One attempt at the lease; resumes, then serves, when it gets it."""
        token = await self.lease.acquire()
        if token is None:
            return False
        try:
            await self._resume(token)
            # Active before serving: serving answers the requests waiting in the backlog and
            # starts streams, and each may run while serving still awaits Redis.
            self.state = "active"
            self.elections += 1
            self.since = self._renewed_at = time.monotonic()
            await self._serve()
        except BaseException:
            await self._give_up_the_lease()
            raise
        logger.warning("this hub is now the active one (epoch %d)", token)
        return True

    async def _give_up_the_lease(self) -> None:
        """Taking the lease failed half-way: standby again, and let another hub have it."""
        self.state = "standby"
        with contextlib.suppress(MessageBusError):
            await self._deactivate()
        with contextlib.suppress(MessageBusError):
            await self.lease.release()

    def doubt(self) -> None:
        """A write was refused as fenced: check the lease now, not at the next renewal."""
        self._wake.set()

    async def run(self) -> None:
        """Renew or campaign, and announce, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                interval = self._renew_every if self.active else self._poll_every
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                if self.active:
                    if await self.lease.renew():
                        self._renewed_at = time.monotonic()
                    else:
                        await self._step_down("another hub holds the lease now")
                else:
                    await self.campaign()
                await self.lease.announce(self.state, self._http_url())
            except MessageBusError as exc:
                logger.warning("hub lease: %s", exc)
                if self.active and time.monotonic() - self._renewed_at > self._ttl_s:
                    await self._step_down(f"could not renew the lease for {self._ttl_s:g} s")
            except Exception:  # a bug must not end the loop: a standby must stay a candidate
                logger.exception("hub lease: unexpected failure")

    async def stop(self) -> None:
        """Give the lease up (a standby need not wait for it to expire) and say goodbye."""
        with contextlib.suppress(MessageBusError):
            if self.active:
                self.state = "stopped"
                await self.lease.release()
            await self.lease.retire()

    async def _step_down(self, why: str) -> None:
        logger.warning("this hub steps down to standby: %s", why)
        self.state = "standby"
        self.step_downs += 1
        self.since = time.monotonic()
        try:
            await self._deactivate()
        except MessageBusError as exc:  # Redis away: it stops answering all the same
            logger.warning("hub lease: stepping down: %s", exc)

    def status(self) -> dict[str, object]:
        return {
            "state": self.state,
            "for_s": round(time.monotonic() - self.since, 1),
            "elections": self.elections,
            "step_downs": self.step_downs,
            "holder": self.lease.holder,
            "ttl_s": self._ttl_s,
        }
