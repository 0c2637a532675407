"""Scenarios played on the simulated market: today, the flash crash.

Whoever owns the market's source plays them: the :class:`~starmesh.platform.composition.
Platform` in one process, or the hub's process (``starmesh engine marketdata``) when the
engines run apart, so a deployment can be put through the same crash as ``starmesh run``.
"""

from __future__ import annotations

import logging
from typing import Any

from starmesh.core.clock import EngineClock, Timer
from starmesh.marketdata.source import Source
from starmesh.marketdata.sources.simulated import SimulatedSource
from starmesh.platform.config import PlatformConfig

__all__ = ["FlashCrash"]

logger = logging.getLogger(__name__)


class FlashCrash:
    """Drops one symbol of the simulated market by ``config.crash_drop`` at once,
    ``config.crash_after_s`` seconds of ``clock`` after :meth:`start`; once.

    ``crash`` then says what fell, when (the clock's ns) and to what price.
    """

    def __init__(self, config: PlatformConfig, source: Source, clock: EngineClock) -> None:
        if not isinstance(source, SimulatedSource):
            raise ValueError(
                f"the flash-crash scenario needs the simulated source, not {config.source!r}"
            )
        self.config = config
        self.source = source
        self.clock = clock
        self.crash: dict[str, Any] | None = None
        self._timer: Timer | None = None

    def start(self) -> None:
        self._timer = self.clock.every(
            self.config.crash_after_s, self._fire, name="scenario:flash-crash"
        )

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        self.cancel()  # once
        config = self.config
        symbol = config.crash_symbol or config.symbols[0]
        price = self.source.crash(symbol, config.crash_drop)
        self.crash = {"symbol": symbol, "at_ns": self.clock.now_ns(), "price": price}
        logger.info("scenario: %s crashes %.0f%% to %.2f", symbol, config.crash_drop * 100, price)
