"""The WebSocket engine: the live dashboard, and the bus streamed to browsers.

It follows every topic (``*``: the architecture's "WebSocket -> all" route) and serves:

    GET /            the dashboard (every asset served here: no CDN)
    WS  /ws          send {"subscribe": ["risk.alert.*", "portfolio.*"]} (["*"] for everything),
                     {"unsubscribe": [...]}; receive {"type": "messages", "messages": [...]}
                     frames (what waited for this browser, urgent first), and a
                     {"type": "platform", ...} frame every second (routes, hub, engines)
    GET /v1/platform that platform frame
    GET /v1/history  what the ledger holds, when the platform keeps one: the account's equity
                     curve, its last balance, recent fills and the alert log (the page draws
                     them first, so a restarted platform shows its past)

Each browser gets its own conflating queue (see ``sessions.py``): a slow one gets the latest
value per topic and never slows the bus. What waits goes in one frame, at most one every
``frame_interval_s`` (urgent messages at once): the cost of a browser is its frames, not the
bus's rate. A browser that sends garbage gets an error frame and stays connected. What leaves
for browsers is timed from publish to send and counted as the route ``websocket -> *``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import httpx
import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response

from starmesh.core.enums import EngineType
from starmesh.core.errors import InvalidTopicError
from starmesh.core.message import Message
from starmesh.engines.base import Engine, EngineContext, Routes, Timers
from starmesh.engines.websocket.sessions import ClientSession
from starmesh.storage import StorageError

__all__ = ["WebSocketConfig", "WebSocketEngine"]

logger = logging.getLogger(__name__)

_json = msgspec.json.Encoder()
_STATIC = files("starmesh.engines.websocket") / "static"
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


class WebSocketConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    platform_interval_s: float = 1.0
    """How often browsers get the platform frame (routes, hub, engines)."""
    hub_http_url: str | None = None
    """Where to read the hub's figures when it runs in another process."""
    max_clients: int = 1_000
    frame_interval_s: float = 0.1
    """At most one frame of messages per browser this often (10 a second): what comes
    between is conflated into the next one. URGENT and FLASH_CRASH messages go at once."""
    history_points: int = 3_000
    """Equity snapshots the page gets from the ledger (the last ones)."""
    history_rows: int = 200
    """Alerts and fills the page gets from the ledger (the last ones)."""
    history_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not (self.platform_interval_s > 0 and self.max_clients > 0):
            raise ValueError("platform_interval_s and max_clients must be positive")
        if self.frame_interval_s < 0:
            raise ValueError("frame_interval_s must not be negative")
        if not (self.history_points > 0 and self.history_rows > 0 and self.history_timeout_s > 0):
            raise ValueError("history_points, history_rows and history_timeout_s must be positive")


def _message_json(message: Message) -> str:
    """A message as browsers get it, one object of a ``messages`` frame."""
    return _json.encode(
        {"id": message.id, "topic": message.topic, "source": message.source,
         "priority": message.priority.name, "ts_event": message.ts_event,
         "payload": message.payload}
    ).decode()  # fmt: skip


class _Subscribe(msgspec.Struct, forbid_unknown_fields=True):
    subscribe: list[str] | None = None
    unsubscribe: list[str] | None = None


_command = msgspec.json.Decoder(_Subscribe)


class WebSocketEngine(Engine):
    kind = EngineType.WEBSOCKET

    def __init__(self, context: EngineContext, config: WebSocketConfig | None = None) -> None:
        super().__init__(context)
        self.config = config or WebSocketConfig()
        self.sessions: dict[str, ClientSession] = {}
        self.hub_stats: Callable[[], dict[str, Any]] | None = None
        """Set by a composition root that holds the hub in its process."""
        self._remote_hub: dict[str, Any] = {}
        self._audience: dict[str, list[ClientSession]] = {}
        """Per topic, the browsers that follow it (found once per topic, not per message)."""
        self._names = itertools.count(1)
        self.counts = {"connected": 0, "disconnected": 0, "frames": 0, "messages_sent": 0,
                       "bad_commands": 0, "history_errors": 0, "platform_frames": 0}  # fmt: skip

    def routes(self) -> Routes:
        return {"*": self.on_message}

    def timers(self) -> Timers:
        return {"platform": (self.config.platform_interval_s, self.push_platform)}

    def on_message(self, message: Message) -> None:
        audience = self._audience.get(message.topic)
        if audience is None:
            audience = self._audience[message.topic] = [
                s for s in self.sessions.values() if s.follows(message.topic)
            ]
        if audience:
            text = _message_json(message)  # once, whatever the number of browsers
            for session in audience:
                session.queue(message, text)

    def _audience_changed(self) -> None:
        """A browser came, left or chose other topics: who follows what is found again."""
        self._audience.clear()

    # --- the platform frame ------------------------------------------------------------------

    def platform(self) -> dict[str, Any]:
        meter = self.context.meter
        hub = self.hub_stats() if self.hub_stats is not None else self._remote_hub
        return {
            "type": "platform",
            "ts": self.clock.now_ns(),
            "routes": meter.routes() if meter is not None else [],
            "hub": {key: hub.get(key) for key in ("requests", "hit_rate", "upstream_total",
                    "saved_upstream_calls", "distributed", "distributed_by_type") if key in hub},
            "engines": self.peers.snapshot(self.clock.now_ns()),
        }  # fmt: skip

    async def push_platform(self) -> None:
        if self.hub_stats is None and self.config.hub_http_url:
            await self._poll_hub()
        if not self.sessions:
            return  # nobody to show it to: building it took the shared event loop 1.5 ms
        frame = _json.encode(self.platform())
        self.counts["platform_frames"] += 1
        for session in list(self.sessions.values()):
            session.offer_platform(frame)

    # --- history, from the ledger -------------------------------------------------------------

    async def history(self) -> dict[str, Any]:
        """What the ledger holds for the page; empty lists when the platform keeps none."""
        ledger = self.ledger
        if ledger is None:
            return {"type": "history", "ledger": None, "equity": [], "balance": None,
                    "fills": [], "alerts": []}  # fmt: skip
        config = self.config
        equity = await ledger.equity(limit=config.history_points)
        fills = await ledger.fills(limit=config.history_rows)
        alerts = await ledger.alerts(limit=config.history_rows)
        last = equity[-1] if equity else None
        return {
            "type": "history",
            "ledger": ledger.shown,
            "account": ledger.account,
            "equity": [[e.ts_ns, e.equity] for e in equity],
            "balance": None if last is None else msgspec.structs.asdict(last),
            "fills": [msgspec.structs.asdict(f) for f in fills],
            # As the page receives alerts live: the payload as it was sent (its priority
            # is not kept, so none is claimed).
            "alerts": [{"id": a.id, "ts_event": a.ts_ns, "priority": None,
                        "payload": msgspec.json.decode(a.payload)} for a in alerts],
        }  # fmt: skip

    async def _poll_hub(self) -> None:
        url = f"{self.config.hub_http_url.rstrip('/')}/v1/stats"  # type: ignore[union-attr]
        try:
            async with httpx.AsyncClient(timeout=1.0) as http:
                self._remote_hub = (await http.get(url)).json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.debug("hub figures not available at %s: %s", url, exc)

    # --- browsers ----------------------------------------------------------------------------

    async def serve_browser(self, socket: WebSocket) -> None:
        if len(self.sessions) >= self.config.max_clients:
            await socket.close(code=1013, reason="too many dashboards connected")
            return
        await socket.accept()
        session = ClientSession(f"browser-{next(self._names)}")
        self.sessions[session.name] = session
        self._audience_changed()
        self.counts["connected"] += 1
        sender = asyncio.create_task(self._send(socket, session), name=f"ws:{session.name}")
        try:
            while True:
                text = await socket.receive_text()
                error = self._command(session, text)
                if error is not None:
                    self.counts["bad_commands"] += 1
                    await socket.send_text(
                        _json.encode({"type": "error", "message": error}).decode()
                    )
        except WebSocketDisconnect:
            pass
        finally:
            del self.sessions[session.name]
            self._audience_changed()
            self.counts["disconnected"] += 1
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    def _command(self, session: ClientSession, text: str) -> str | None:
        """Apply a browser's command; the error to send back, if it was not one."""
        try:
            command = _command.decode(text)
        except msgspec.DecodeError as exc:
            return (
                f'not a command ({exc}); send {{"subscribe": ["risk.alert.*"]}} '
                'or {"unsubscribe": [...]}'
            )
        try:
            if command.subscribe:
                session.subscribe(command.subscribe)
            if command.unsubscribe:
                session.unsubscribe(command.unsubscribe)
        except (InvalidTopicError, ValueError) as exc:
            return str(exc)
        finally:
            self._audience_changed()
        return None

    async def _send(self, socket: WebSocket, session: ClientSession) -> None:
        meter = self.context.meter
        while True:
            batch, platform = await session.take()
            if batch:
                # Everything waiting goes in one frame: a browser that fell behind catches up
                # in one send, not one per message.
                texts = ",".join(text for _, text in batch)
                await socket.send_text(f'{{"type":"messages","messages":[{texts}]}}')
                self.counts["frames"] += 1
                self.counts["messages_sent"] += len(batch)
                if meter is not None:
                    now = time.time_ns()
                    for message, _ in batch:
                        meter.record(self.kind, "*", "*", now - message.ts_publish)
            if platform is not None:
                await socket.send_text(platform.decode())
            if self.config.frame_interval_s:
                await session.pause(self.config.frame_interval_s)

    def health_detail(self) -> dict[str, Any]:
        return {**self.counts, "browsers": len(self.sessions)}

    # --- the app -----------------------------------------------------------------------------

    def router(self) -> APIRouter:
        """The dashboard's page, assets, platform figures and WebSocket, to mount in an app."""
        app = APIRouter()

        @app.get("/")
        async def page() -> HTMLResponse:
            return HTMLResponse((_STATIC / "dashboard.html").read_text())

        @app.get("/static/{name}")
        async def asset(name: str) -> Response:
            media = _ASSETS.get(name)
            if media is None:
                return Response("not found", status_code=404)
            return Response((_STATIC / name).read_text(), media_type=media)

        @app.get("/v1/platform")
        async def platform() -> Response:
            return Response(_json.encode(self.platform()), media_type="application/json")

        @app.get("/v1/history")
        async def history() -> Response:
            try:
                found = await asyncio.wait_for(self.history(), self.config.history_timeout_s)
            except (TimeoutError, StorageError) as exc:
                self.counts["history_errors"] += 1
                logger.warning("dashboard history not read from the ledger: %r", exc)
                body = {"error": f"the ledger could not be read: {type(exc).__name__}: {exc}"}
                return Response(_json.encode(body), status_code=503,
                                media_type="application/json")  # fmt: skip
            return Response(_json.encode(found), media_type="application/json")

        @app.websocket("/ws")
        async def stream(socket: WebSocket) -> None:
            await self.serve_browser(socket)

        return app
