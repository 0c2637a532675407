"""VPIN: order-flow toxicity from the trade stream."""

from starmesh.engines.vpin.bars import TimeBars
from starmesh.engines.vpin.engine import VpinConfig, VpinEngine
from starmesh.engines.vpin.estimator import Bucket, VpinEstimator, empirical_cdf, normal_cdf

__all__ = [
    "Bucket",
    "TimeBars",
    "VpinConfig",
    "VpinEngine",
    "VpinEstimator",
    "empirical_cdf",
    "normal_cdf",
]
