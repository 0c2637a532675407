"""What the bus endpoints deliver to: a reply wakes the request waiting on it, any other
message goes to the handlers of its topic, in subscription order.

:meth:`Dispatcher.deliver` is the one callback every endpoint (and the HTTP receiver) calls,
once per message: a bound method with the state it reads on its own object, so the client
adds no hop. It finishes synchronously unless a handler is async. It raises
:class:`NotHandledError` when no handler matches and :class:`HandlerError` when one failed,
for the endpoint to redeliver or dead-letter.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from starmesh.bus.transport import RunOutcome
from starmesh.client.once import HandledOnce
from starmesh.client.subscription import Subscription
from starmesh.core.enums import MessageType
from starmesh.core.errors import HandlerError, NotHandledError
from starmesh.core.message import Message
from starmesh.core.routing import MARKETDATA_PREFIX
from starmesh.core.topics import TopicMatcher

__all__ = ["DeliveryObserver", "Dispatcher"]

DeliveryObserver = Callable[[Message, str], None]
"""Told of each message about to reach this client's handlers, with the first matching pattern
(route accounting: who sent what to whom, and how long it took)."""

_REPLY_TYPES = frozenset({MessageType.REPLY, MessageType.ERROR})


class Dispatcher:
    """The client's delivery path: ``handlers`` and ``pending`` are the client's own (its
    subscriptions, its requests waiting for a reply), shared, not copied."""

    def __init__(
        self,
        address: str,
        handlers: TopicMatcher[Subscription],
        pending: dict[str, asyncio.Future[Message]],
    ) -> None:
        self.address = address
        self._handlers = handlers
        self._lookup = handlers.lookup
        self._pending = pending
        self.once: HandledOnce | None = None
        """Set when a message may come by two paths (HTTP and Redis): handled once by id."""
        self.observer: DeliveryObserver | None = None
        self.received = 0
        self.unhandled = 0
        self.late_replies = 0

    def deliver(self, message: Message) -> Awaitable[None] | None:
        """The endpoints' callback: finishes synchronously unless a handler is async."""
        self.received += 1
        if message.correlation_id is not None and message.type in _REPLY_TYPES:
            # A reply is for the request waiting on it, never for handlers; so a transport
            # may deliver replies as they arrive, outside the turn-taking of handlers.
            future = self._pending.get(message.correlation_id)
            if future is not None:
                if not future.done():
                    future.set_result(message)
            else:
                self.late_replies += 1  # its request timed out; nobody waits any more
            return None
        if self.once is not None and not message.topic.startswith(MARKETDATA_PREFIX):
            return self.once.run(message, self._dispatch)
        return self._dispatch(message)

    def deliver_run(self, lane: deque[Any], limit: int) -> RunOutcome:
        """``deliver`` for up to ``limit`` messages at the front of ``lane``, in one call (the
        embedded bus's consumer hands over what is queued); see :data:`RunDeliveryHandler`.
        """
        # With ``once`` (never on the embedded bus) every message takes deliver's path.
        lookup = self._lookup if self.once is None else _unknown
        taken = 0
        while taken < limit and lane:
            message = lane[0]
            if type(message) is not Message:
                break  # a retry: the consumer hands it over alone
            subscriptions = lookup(message.topic)
            if subscriptions and message.correlation_id is None:
                more, stopped, outcome = self._run_of(subscriptions, lane, limit - taken)
                taken += more
                if stopped is not None:
                    return taken, stopped, outcome
                continue
            # A topic not seen yet, none handled, or a reply: the general path.
            lane.popleft()
            taken += 1
            try:
                outcome = self.deliver(message)
            except Exception as exc:
                return taken, message, exc
            if outcome is not None:
                return taken, message, outcome
        return taken, None, None

    def _run_of(
        self, subscriptions: tuple[Subscription, ...], lane: deque[Any], limit: int
    ) -> RunOutcome:
        """The messages at the front of ``lane`` (up to ``limit``) of the topic of the first,
        which ``subscriptions`` handle: ``_dispatch`` inlined, since at tens of ns per
        bytecode the work per delivery is most of a fan-out's cost. So ``handled`` is counted
        once per run, and a lone handler is called without a loop around it."""
        topic = lane[0].topic
        observer = self.observer
        pattern = subscriptions[0].pattern
        only = subscriptions[0].handler if len(subscriptions) == 1 else None
        popleft = lane.popleft
        handled = 0  # messages every subscription has handled, counted on them at the end
        try:
            while handled < limit:
                try:
                    message = popleft()
                except IndexError:  # a handler's latest-wins publish dropped a queued one
                    break
                if (
                    type(message) is not Message
                    or message.topic != topic
                    or message.correlation_id is not None
                ):
                    lane.appendleft(message)  # for deliver_run to look at
                    break
                if observer is not None:
                    observer(message, pattern)
                if only is not None:
                    try:
                        outcome = only(message)
                    except Exception as exc:
                        return handled + 1, message, self._stopped(message, subscriptions, 0, exc)
                    if outcome is not None and inspect.isawaitable(outcome):
                        stopped = self._stopped(message, subscriptions, 0, outcome)
                        return handled + 1, message, stopped
                    handled += 1
                    continue
                for subscription in subscriptions:
                    try:
                        outcome = subscription.handler(message)
                    except Exception as exc:
                        index = subscriptions.index(subscription)
                        stopped = self._stopped(message, subscriptions, index, exc)
                        return handled + 1, message, stopped
                    if outcome is not None and inspect.isawaitable(outcome):
                        index = subscriptions.index(subscription)
                        stopped = self._stopped(message, subscriptions, index, outcome)
                        return handled + 1, message, stopped
                handled += 1
        finally:
            _count_handled(subscriptions, handled)
            self.received += handled
        return handled, None, None

    def _dispatch(self, message: Message) -> Awaitable[None] | None:
        """Call the handlers of ``message``'s topic, in subscription order."""
        topic = message.topic
        subscriptions = self._lookup(topic)  # a dict read for a topic seen before
        if subscriptions is None:
            subscriptions = self._handlers.match(topic)
        if not subscriptions:
            self.unhandled += 1
            raise NotHandledError(f"{self.address} has no handler for {topic!r}")
        if self.observer is not None:
            self.observer(message, subscriptions[0].pattern)
        # The handlers are called right here, not through Subscription.invoke: at a few
        # hundred ns per Python call, one frame less per handler is most of the fan-out cost.
        failed: list[Subscription] | None = None
        for subscription in subscriptions:
            try:
                outcome = subscription.handler(message)
            except Exception as exc:
                subscription.failed(message, exc)
                failed = [subscription] if failed is None else [*failed, subscription]
                continue
            if outcome is not None and inspect.isawaitable(outcome):
                # An async handler: the rest waits for it.
                index = subscriptions.index(subscription)
                return self._dispatch_async(message, subscriptions, index, failed or [], outcome)
            subscription.handled += 1
        if failed:
            raise _handler_error(message, failed)
        return None

    def _stopped(
        self,
        message: Message,
        subscriptions: tuple[Subscription, ...],
        index: int,
        raised_or_pending: Exception | Awaitable[None],
    ) -> Awaitable[None] | Exception:
        """A run stops at ``message``, whose handler ``subscriptions[index]`` raised or is
        async: what ``deliver`` would have raised or returned, the handlers before it counted."""
        self.received += 1
        _count_handled(subscriptions[:index], 1)
        if isinstance(raised_or_pending, Exception):
            return self._failed(message, subscriptions, index, raised_or_pending)
        return self._dispatch_async(message, subscriptions, index, [], raised_or_pending)

    def _failed(
        self,
        message: Message,
        subscriptions: tuple[Subscription, ...],
        index: int,
        exc: Exception,
    ) -> Awaitable[None] | Exception:
        """``subscriptions[index]``'s handler raised ``exc``: what ``deliver`` would have
        raised (returned here), once the handlers after it have been called, in a
        continuation the consumer awaits if there are any."""
        subscription = subscriptions[index]
        subscription.failed(message, exc)
        after = index + 1
        if after == len(subscriptions):
            return _handler_error(message, [subscription])
        return self._dispatch_async(message, subscriptions, after, [subscription], None)

    async def _dispatch_async(
        self,
        message: Message,
        subscriptions: tuple[Subscription, ...],
        start: int,
        failed: list[Subscription],
        started: Awaitable[None] | None,
    ) -> None:
        """Carry on ``deliver`` from ``subscriptions[start]``, whose handler gave ``started``
        (None: not called yet)."""
        outcome: bool | Awaitable[None] | None = started
        for index in range(start, len(subscriptions)):
            subscription = subscriptions[index]
            if index > start or outcome is None:
                outcome = subscription.invoke(message)
            ok = (
                outcome
                if isinstance(outcome, bool)
                else await subscription.finish(outcome, message)
            )
            if not ok:
                failed.append(subscription)
        if failed:
            raise _handler_error(message, failed)


def _count_handled(subscriptions: tuple[Subscription, ...] | None, messages: int) -> None:
    for subscription in subscriptions or ():
        subscription.handled += messages


def _unknown(topic: str) -> None:
    return None


def _handler_error(message: Message, failed: list[Subscription]) -> HandlerError:
    errors = "; ".join(f"{s!r}: {s.last_error!r}" for s in failed)
    return HandlerError(f"{message.topic!r} ({message.id}): {errors}")
