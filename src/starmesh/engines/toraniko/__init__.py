"""Toraniko: factor returns, their covariance and residual returns (the toraniko library)."""

from starmesh.engines.toraniko.engine import MODEL, ToranikoConfig, ToranikoEngine
from starmesh.engines.toraniko.estimation import FactorModel, estimate

__all__ = ["MODEL", "FactorModel", "ToranikoConfig", "ToranikoEngine", "estimate"]
