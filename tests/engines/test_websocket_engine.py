"""The WebSocket engine's periodic platform frame: built only for someone to see it."""

from __future__ import annotations

from starmesh import EngineType
from starmesh.engines.base import Engine
from starmesh.engines.websocket import ClientSession, WebSocketEngine
from starmesh.platform.config import PlatformConfig
from tests.engines.support import market, start_engine


async def test_the_platform_frame_is_built_only_while_a_browser_is_connected() -> None:
    engines: list[Engine] = []
    async with market() as m:
        engine = await start_engine(EngineType.WEBSOCKET, PlatformConfig(), m.clock, engines)
        assert isinstance(engine, WebSocketEngine)
        interval = engine.config.platform_interval_s
        await m.advance(5 * interval)
        assert engine.counts["platform_frames"] == 0  # it would cost every engine's loop
        session = ClientSession("browser-test")
        engine.sessions[session.name] = session
        await m.advance(2 * interval)
        assert engine.counts["platform_frames"] == 2
        _, frame = await session.take()
        assert frame is not None
        assert frame.startswith(b'{"type":"platform"')
        for started in engines:
            await started.stop()
