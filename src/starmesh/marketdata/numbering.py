"""How the hub numbers values: per (symbol, data type), 1, 2, 3, ... within an epoch.

Followers order values by ``(epoch, seq)``. A hub without a lease takes its start time as its
epoch and counts from 1. A hub under the lease takes the lease's fencing token (larger than
any before it) and goes on from the last number each pair was written with, so a follower
sees every pair's numbers go on by one across a takeover.

A value asked with source parameters (``interval=1d``) is numbered in a series of its own:
it is not broadcast, so taking a number from the pair's series would leave followers a gap.
"""

from __future__ import annotations

from collections.abc import Mapping

from starmesh.core.enums import DataType
from starmesh.marketdata.source import DataRequest

__all__ = ["Numbering"]

_Series = tuple[str, DataType] | tuple[str, DataType, tuple[tuple[str, str], ...]]


class Numbering:
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self._last: dict[_Series, int] = {}

    def next(self, request: DataRequest) -> int:
        """The number of ``request``'s next value."""
        series: _Series = (request.symbol, request.data_type)
        if request.params:
            series = (request.symbol, request.data_type, request.params)
        seq = self._last.get(series, 0) + 1
        self._last[series] = seq
        return seq

    def resume(self, epoch: int, last: Mapping[tuple[str, DataType], int]) -> None:
        """Number on in ``epoch`` from ``last`` (the pairs' last written numbers)."""
        self.epoch = epoch
        self._last = {}
        for pair, seq in last.items():
            self._last[pair] = seq
