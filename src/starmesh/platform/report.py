"""What a platform run did, as JSON: routes, the hub, the engines, a scenario's outcome."""

from __future__ import annotations

import resource
import time
from typing import Any

from starmesh.core.enums import EngineType
from starmesh.engines.strategy import StrategyEngine
from starmesh.platform.composition import Platform

__all__ = ["flash_crash_outcome", "run_report"]


def run_report(platform: Platform) -> dict[str, Any]:
    elapsed = platform.elapsed_s
    hub: dict[str, Any] = {}
    if platform.hub is not None:
        stats = platform.hub.stats()
        hub = {
            "requests": stats["requests"],
            "hit_rate": stats["hit_rate"],
            "upstream_calls": stats["upstream_calls"],
            "saved_upstream_calls": stats["saved_upstream_calls"],
            "distributed": stats["distributed_by_type"],
            "distribution_latency": stats["distribution_latency"],
        }
    engines = {}
    for kind, engine in platform.engines.items():
        health = engine.health()
        engines[kind.value] = {
            "state": platform.states_at_stop.get(kind.value)
            or platform.engine_states()[kind.value],
            "messages_in": health.messages_in,
            "messages_out": health.messages_out,
            "handler_errors": health.handler_errors,
            "detail": health.detail,
        }
    config = platform.config
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "transport": platform.transport(),
        "duration_s": round(elapsed, 3),
        "symbols": len(config.symbols),
        "source": config.source,
        "quotes_per_second": {
            "target": config.quotes_per_second if config.source == "simulated" else None,
            "achieved": round(platform.quotes_per_second(), 1),
        },
        "routes": platform.meter.routes(),
        "hub": hub,
        "engines": engines,
        "process": {
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        },
    }
    if config.scenario == "flash-crash":
        report["flash_crash"] = flash_crash_outcome(platform)
    return report


def flash_crash_outcome(platform: Platform) -> dict[str, Any]:
    """Whether the crash halted Strategy, how fast, and whether a buy of it slipped through."""
    crash = platform.crash
    strategy = platform.engines.get(EngineType.STRATEGY)
    if crash is None or not isinstance(strategy, StrategyEngine):
        return {"detected": False, "reason": "the crash did not happen before the run ended"}
    symbol = crash["symbol"]
    halt = next(
        (h for h in strategy.halt_log
         if h.rule == "flash_crash" and h.symbol == symbol and h.at_ns >= crash["at_ns"]),
        None,
    )  # fmt: skip
    if halt is None:
        return {"detected": False, "symbol": symbol}
    end = halt.signals_before_clearance
    if end is None:
        end = len(strategy.signals)
    buys = [
        ts for ts, signalled, action in strategy.signals[:end]
        if signalled == symbol and action == "BUY" and ts >= crash["at_ns"]
    ]  # fmt: skip
    signals_while_halted = strategy.signals[halt.signals_before : end]
    return {
        "detected": True,
        "symbol": symbol,
        "halt_latency_us": None if halt.latency_ns is None else round(halt.latency_ns / 1e3, 1),
        "halted_for_s": None
        if halt.cleared_ns is None
        else round((halt.cleared_ns - halt.at_ns) / 1e9, 3),
        "buy_signals_before_clearance": len(buys),
        "signals_while_halted": len(signals_while_halted),
    }
