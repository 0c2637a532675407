"""Every source the hub can use, by name."""

from __future__ import annotations

from collections.abc import Callable

from starmesh.core.clock import Clock, MonotonicClock
from starmesh.core.config import Settings
from starmesh.core.errors import InvalidRequestError
from starmesh.marketdata.source import Source
from starmesh.marketdata.sources.external import EXTERNAL_SOURCES
from starmesh.marketdata.sources.replay import ReplaySource
from starmesh.marketdata.sources.simulated import SimulatedSource

__all__ = ["SOURCE_FACTORIES", "build_source", "source_names"]

SOURCE_FACTORIES: dict[str, Callable[[Settings, Clock], Source]] = {
    "simulated": lambda settings, clock: SimulatedSource(clock=clock),
    "replay": lambda settings, clock: ReplaySource(clock=clock),
    **EXTERNAL_SOURCES,
}


def source_names() -> list[str]:
    return list(SOURCE_FACTORIES)


def build_source(name: str, settings: Settings, clock: Clock | None = None) -> Source:
    factory = SOURCE_FACTORIES.get(name)
    if factory is None:
        known = ", ".join(SOURCE_FACTORIES)
        raise InvalidRequestError(f"unknown source {name!r}; known sources: {known}")
    return factory(settings, clock or MonotonicClock())
