"""The engines of the platform, each on the :class:`Engine` base.

Each engine is a package: its calculations in plain modules (numbers in, numbers out, tested
with known answers) and its wiring to topics in ``engine.py``.
"""

from starmesh.engines.base import Engine, EngineContext
from starmesh.engines.metering import Route, RouteMeter
from starmesh.engines.peers import PeerDirectory

__all__ = ["Engine", "EngineContext", "PeerDirectory", "Route", "RouteMeter"]
