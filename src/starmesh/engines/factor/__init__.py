"""Factor: style exposures (momentum, size, value) and sectors of the universe."""

from starmesh.engines.factor.engine import FactorConfig, FactorEngine
from starmesh.engines.factor.history import History, Panel, build_panel, fetch_history
from starmesh.engines.factor.styles import STYLES, sector_frame, style_exposures

__all__ = [
    "STYLES",
    "FactorConfig",
    "FactorEngine",
    "History",
    "Panel",
    "build_panel",
    "fetch_history",
    "sector_frame",
    "style_exposures",
]
