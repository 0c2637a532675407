"""Collateral: Reg T margin, haircuts, excess liquidity and margin calls."""

from starmesh.engines.collateral.engine import CollateralConfig, CollateralEngine
from starmesh.engines.collateral.margin import (
    HaircutTable,
    MarginRequirement,
    collateral_value,
    margin_requirement,
)

__all__ = [
    "CollateralConfig",
    "CollateralEngine",
    "HaircutTable",
    "MarginRequirement",
    "collateral_value",
    "margin_requirement",
]
