"""The issue's goals for ``bench peers``, judged on one run's same-run ratios.

Each verdict gives the median ratio of alternated repetitions, its spread, the goal and
whether the median meets it, so a miss says by how much.
"""

from __future__ import annotations

from typing import Any

__all__ = ["peer_goals"]


def _verdict(ratio: dict[str, float] | None, goal: float, at_least: bool) -> dict[str, Any]:
    if ratio is None:
        return {"met": None, "goal": goal, "why": "not measured"}
    met = ratio["median"] >= goal if at_least else ratio["median"] <= goal
    return {"met": met, "goal": f"{'>=' if at_least else '<='} {goal}", **ratio}


def peer_goals(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    goals: dict[str, dict[str, Any]] = {}
    scenarios = results.get("inprocess", {}).get("scenarios", {})
    for name in ("subs1", "subs5", "subs20"):
        ratio = scenarios.get(name, {}).get("starmesh_over_nautilus")
        goals[f"in process, {name}: starmesh / Nautilus publishes/s"] = _verdict(ratio, 0.5, True)
    over = results.get("redis", {}).get("starmesh_over", {})
    systems = results.get("redis", {}).get("systems", {})
    faststream, raw = over.get("faststream", {}), over.get("redis_py_pipelined", {})
    goals["Redis: starmesh / FastStream sustained msg/s"] = _verdict(
        faststream.get("throughput"), 20, True
    )
    goals["Redis: starmesh / FastStream p50 at the paced rate"] = _verdict(
        faststream.get("p50"), 0.5, False
    )
    goals["Redis: starmesh / FastStream p99 at the paced rate"] = _verdict(
        faststream.get("p99"), 0.5, False
    )
    goals["Redis: starmesh / raw redis-py (pipelined) msg/s"] = _verdict(
        raw.get("throughput"), 1.2, True
    )
    goals["Redis: starmesh / raw redis-py p99"] = _verdict(
        over.get("redis_py", {}).get("p99"), 1.3, False
    )
    starmesh = systems.get("starmesh", {}).get("throughput", {})
    if starmesh:
        goals["Redis: starmesh lost nothing"] = {"met": bool(starmesh["zero_loss"])}
    return goals
