"""ML: an online classifier of next-bar direction, scored prequentially."""

from starmesh.engines.ml.config import MlConfig
from starmesh.engines.ml.engine import MlEngine
from starmesh.engines.ml.model import OnlineDirectionModel

__all__ = ["MlConfig", "MlEngine", "OnlineDirectionModel"]
