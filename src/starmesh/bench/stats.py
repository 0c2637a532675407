"""Summaries of latency samples and throughput runs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["latency_summary", "ratio_summary", "throughput_summary"]


def latency_summary(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Percentiles in microseconds of one-way latencies given in nanoseconds; ``cdf_us`` holds
    the 0th to 100th percentile, for plotting the distribution."""
    if not samples_ns:
        raise ValueError("no latency samples")
    us = np.asarray(samples_ns, dtype=np.float64) / 1_000
    p50, p90, p99, p999 = np.percentile(us, [50, 90, 99, 99.9])
    cdf = np.percentile(us, np.arange(101))
    return {
        "samples": len(us),
        "p50_us": round(float(p50), 2),
        "p90_us": round(float(p90), 2),
        "p99_us": round(float(p99), 2),
        "p999_us": round(float(p999), 2),
        "max_us": round(float(us.max()), 2),
        "mean_us": round(float(us.mean()), 2),
        "cdf_us": [round(float(v), 2) for v in cdf],
    }


def throughput_summary(runs_msgs_per_s: Sequence[float]) -> dict[str, Any]:
    return {
        "runs_msgs_per_s": [round(r) for r in runs_msgs_per_s],
        "median_msgs_per_s": round(statistics.median(runs_msgs_per_s)),
        "best_msgs_per_s": round(max(runs_msgs_per_s)),
    }


def ratio_summary(ratios: Sequence[float]) -> dict[str, float]:
    """Same-run ratios of repetitions: the median and the spread (lowest, highest)."""
    return {
        "median": round(statistics.median(ratios), 3),
        "low": round(min(ratios), 3),
        "high": round(max(ratios), 3),
    }
