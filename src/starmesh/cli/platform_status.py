"""``starmesh status --url``: every engine a deployment's registry and heartbeats know.

The registry (in Redis) says which instances exist, when each last renewed its entry and where
it serves HTTP; each instance's ``/health`` says its state, its counters and its bus paths.
MarketData Hubs also announce themselves on the MarketData Bus, the one on standby too (it
serves nothing, so the registry does not list it). Nothing is subscribed and nothing written:
the view from outside. A cluster URL (``redis+cluster://``) works the same.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.table import Table

from starmesh.bus.redis import RedisTransport
from starmesh.bus.redis.lease import read_hubs
from starmesh.bus.redis.members import Member, read_members
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType

__all__ = ["gather_status", "status_table"]

_SILENT_S = 15.0
"""An instance whose registry entry is older than this is down (it renews every ~5 s)."""
_WORST = {"up": 0, "standby": 0, "degraded": 1, "starting": 1, "down": 2}
_FROM_ENGINE = {"running": "up", "degraded": "degraded", "starting": "starting"}


async def _instance(member: Member, now_ms: int, http: httpx.AsyncClient) -> dict[str, Any]:
    age_s = max(0.0, (now_ms - member.last_seen_ms) / 1e3)
    view: dict[str, Any] = {
        "instance": member.instance,
        "heartbeat_age_s": round(age_s, 1),
        "http": member.http_url,
        "http_port": urlsplit(member.http_url).port if member.http_url else None,
        "state": "down" if age_s > _SILENT_S else "up",
    }
    if member.http_url is None or view["state"] == "down":
        return view
    try:
        health = (await http.get(f"{member.http_url.rstrip('/')}/health")).json()
    except (httpx.HTTPError, ValueError) as exc:
        view["state"] = "degraded"
        view["error"] = f"/health unreachable: {exc!r}"
        return view
    engine_status = health.get("status")
    if isinstance(engine_status, dict):  # an engine process: its heartbeat and its bus
        view["state"] = _FROM_ENGINE.get(engine_status.get("state", ""), "down")
        view["messages_in"] = engine_status.get("messages_in")
        view["messages_out"] = engine_status.get("messages_out")
        view["handler_errors"] = engine_status.get("handler_errors")
        bus = health.get("bus", {})
    else:  # the hub: its own report
        states = {"ok": "up", "degraded": "degraded", "standby": "standby"}
        view["state"] = states.get(str(engine_status), "down")
        bus = health
    failover = bus.get("failover", {}) if isinstance(bus, dict) else {}
    view["paths"] = {name: path.get("state") for name, path in failover.get("paths", {}).items()}
    view["route"] = failover.get("route")
    view["outbox"] = failover.get("outbox", {}).get("depth")
    return view


async def _read(url: str, settings: Settings) -> list[Member]:
    """The registry's members on the bus at ``url``, and the hubs announced there."""
    transport = RedisTransport(url, settings=settings)
    try:
        members = await read_members(transport.client, settings.key_prefix)
        hubs = await read_hubs(transport.client, settings.key_prefix)
    finally:
        await transport.client.aclose()
    listed = {(m.engine, m.instance) for m in members}
    members += [
        Member(EngineType.MARKETDATA, hub.instance, hub.last_seen_ms, [], hub.http_url)
        for hub in hubs
        if (EngineType.MARKETDATA, hub.instance) not in listed
    ]
    return members


async def gather_status(
    url: str, settings: Settings, token: str | None = None, marketdata_url: str | None = None
) -> dict[str, Any]:
    """``{"engines": {"risk": {"state", "instances", ...}}, "paths": {...}}``; the MarketData
    Bus's registry and hubs too when ``marketdata_url`` names another server."""
    members = await _read(url, settings)
    if marketdata_url is not None and marketdata_url != url:
        listed = {(m.engine, m.instance) for m in members}
        members += [
            m for m in await _read(marketdata_url, settings) if (m.engine, m.instance) not in listed
        ]
    members.sort(key=lambda m: (m.engine.value, m.instance))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    now_ms = int(time.time() * 1000)
    async with httpx.AsyncClient(timeout=2.0, headers=headers) as http:
        views = await asyncio.gather(*(_instance(m, now_ms, http) for m in members))
    engines: dict[str, dict[str, Any]] = {}
    paths: dict[str, str] = {}
    for member, view in zip(members, views, strict=True):
        entry = engines.setdefault(member.engine.value, {"instances": 0, "detail": []})
        entry["instances"] += 1
        entry["detail"].append(view)
        for name, state in view.get("paths", {}).items():
            if _WORST.get(state, 2) >= _WORST.get(paths.get(name, "up"), 0):
                paths[name] = state
    for entry in engines.values():
        states = [v["state"] for v in entry["detail"]]
        if all(s == "down" for s in states):
            entry["state"] = "down"
        elif "up" in states and all(s in ("up", "standby") for s in states):
            entry["state"] = "up"  # a hub on standby is as meant, beside the active one
        else:
            entry["state"] = "degraded"  # also: only standby hubs, none serving
        entry["standby"] = states.count("standby")
        entry["heartbeat_age_s"] = min(v["heartbeat_age_s"] for v in entry["detail"])
        entry["http_port"] = next((v["http_port"] for v in entry["detail"] if v["http_port"]), None)
    return {"engines": dict(sorted(engines.items())), "paths": paths}


def status_table(status: dict[str, Any], where: str) -> Table:
    table = Table(title=f"engines on {where}", title_justify="left")
    for column in ("engine", "state", "inst.", "beat s", "port", "route", "outbox"):
        table.add_column(column, justify="left" if column in ("engine", "state") else "right")
    for name, entry in status["engines"].items():
        detail = entry["detail"]
        routes = sorted({str(v.get("route")) for v in detail if v.get("route")}) or ["-"]
        outbox = sum(v.get("outbox") or 0 for v in detail)
        beat = f"{entry['heartbeat_age_s']:g}"
        port = str(entry["http_port"] or "-")
        state = entry["state"] + (f" ({entry['standby']} standby)" if entry["standby"] else "")
        table.add_row(name, state, str(entry["instances"]), beat, port, ",".join(routes),
                      str(outbox))  # fmt: skip
    paths = ", ".join(f"{name} {state}" for name, state in status["paths"].items()) or "unknown"
    table.caption = f"paths: {paths}"
    return table
