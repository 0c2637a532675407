"""A latency histogram with bounded relative error and constant memory.

Samples fall in logarithmic buckets 1% wide, so any percentile is read to within 1% of its
true value however many samples there were (an HDR histogram's idea, in a dict). Recording is
one ``log`` and one dict update, cheap enough to time every delivery of a running platform.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

__all__ = ["LatencyHistogram"]

_GROWTH: Final = 1.01
_LOG_GROWTH: Final = math.log(_GROWTH)


class LatencyHistogram:
    """Durations in nanoseconds; percentiles come back in nanoseconds too."""

    __slots__ = ("_buckets", "count", "max_ns", "min_ns", "total_ns")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.total_ns = 0
        self.min_ns = 0
        self.max_ns = 0

    def record(self, duration_ns: int) -> None:
        """Add one sample; a negative duration (clocks of two hosts disagreeing) counts as 0."""
        if duration_ns < 1:
            duration_ns = 0
            bucket = -1
        else:
            bucket = int(math.log(duration_ns) / _LOG_GROWTH)
        self._buckets[bucket] = self._buckets.get(bucket, 0) + 1
        if self.count == 0 or duration_ns < self.min_ns:
            self.min_ns = duration_ns
        if duration_ns > self.max_ns:
            self.max_ns = duration_ns
        self.count += 1
        self.total_ns += duration_ns

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100): the value at or below which ``q``% of samples lie,
        as the middle of its bucket clamped to the observed range; 0 with no samples.
        """
        if not 0 <= q <= 100:
            raise ValueError(f"a percentile is between 0 and 100, got {q}")
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for bucket in sorted(self._buckets):
            seen += self._buckets[bucket]
            if seen >= rank:
                if bucket < 0:
                    return 0.0
                middle = float(_GROWTH ** (bucket + 0.5))
                return min(max(middle, float(self.min_ns)), float(self.max_ns))
        return float(self.max_ns)

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.count if self.count else 0.0

    def buckets(self) -> dict[int, int]:
        """Samples per bucket (a copy): two of these, taken apart in time, give the samples
        recorded in between (:meth:`between`)."""
        return dict(self._buckets)

    @classmethod
    def between(cls, earlier: Mapping[int, int], later: Mapping[int, int]) -> LatencyHistogram:
        """The samples recorded after ``earlier`` and up to ``later`` (two :meth:`buckets` of
        one histogram). Their exact minimum, maximum and total are not kept per bucket: they
        are taken from the buckets, so within the same 1% as the percentiles."""
        window = cls()
        for bucket in sorted(later.keys() | earlier.keys()):
            n = later.get(bucket, 0) - earlier.get(bucket, 0)
            if n < 0:
                raise ValueError("the later buckets hold fewer samples than the earlier ones")
            if n == 0:
                continue
            window._buckets[bucket] = n
            low = 0 if bucket < 0 else math.ceil(_GROWTH**bucket)
            high = 0 if bucket < 0 else math.floor(_GROWTH ** (bucket + 1))
            if window.count == 0:
                window.min_ns = low
            window.max_ns = high
            window.count += n
            window.total_ns += n * (0 if bucket < 0 else round(_GROWTH ** (bucket + 0.5)))
        return window

    def merge(self, other: LatencyHistogram) -> None:
        for bucket, n in other._buckets.items():
            self._buckets[bucket] = self._buckets.get(bucket, 0) + n
        if other.count:
            self.min_ns = other.min_ns if self.count == 0 else min(self.min_ns, other.min_ns)
            self.max_ns = max(self.max_ns, other.max_ns)
        self.count += other.count
        self.total_ns += other.total_ns
