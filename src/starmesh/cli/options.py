"""Options several commands take, said once: a process of the platform reads the same buses
and configuration whichever command started it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["BusUrlOption", "MarketdataUrlOption", "PlatformConfigOption", "scenario_named"]

BusUrlOption = Annotated[
    str | None, typer.Option(help="Engine Logic Bus (redis://...); default: STARMESH_BUS_URL.")
]
MarketdataUrlOption = Annotated[
    str | None, typer.Option(help="MarketData Bus, if not the same server.")
]
PlatformConfigOption = Annotated[
    Path | None, typer.Option(help="Platform configuration, JSON (the same for every engine).")
]


def scenario_named(value: str | None) -> str | None:
    """``--scenario``'s check (a typer callback): the platform plays one scenario."""
    if value not in (None, "flash-crash"):
        raise typer.BadParameter("the one scenario is flash-crash")
    return value
