"""ML: an online classifier of next-bar direction, scored prequentially.

The engine and the model load numpy: they are imported when first used, so a process that
only reads the configuration does without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starmesh.engines.ml.config import MlConfig

if TYPE_CHECKING:
    from starmesh.engines.ml.engine import MlEngine
    from starmesh.engines.ml.model import OnlineDirectionModel

__all__ = ["MlConfig", "MlEngine", "OnlineDirectionModel"]


def __getattr__(name: str) -> Any:
    if name == "MlEngine":
        from starmesh.engines.ml.engine import MlEngine

        return MlEngine
    if name == "OnlineDirectionModel":
        from starmesh.engines.ml.model import OnlineDirectionModel

        return OnlineDirectionModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
