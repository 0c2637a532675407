"""Redis 7 ACL users, one per engine type: each reads and writes only its own keys, writes only
the inboxes of the engines it may publish to, reads market data, and runs no dangerous command.

What each engine may publish to follows the route table of the architecture (DESIGN.md),
plus two destinations every engine has: the UI gateway (``websocket`` follows everything) and
the hub (``marketdata``, for requests). Only ``marketdata`` writes market data. A publish whose
subscribers include an engine it may not write to fails with NOPERM, loudly: extend ``ROUTES``
(or ``starmesh acl --allow FROM:TO``) when a new route is added. Every engine may write to
every instance's reply stream (whoever asks, whoever answers) and to the registry (its own
subscriptions, in one shared hash: a compromised engine can reroute, not read others' inboxes).

Passwords appear as SHA-256 hashes (``#<hex>``) in the rules, never in clear.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from starmesh.core.enums import EngineType

__all__ = ["ALWAYS", "ROUTES", "acl_rules", "may_publish_to", "password_hash"]

E = EngineType

ROUTES: dict[EngineType, frozenset[EngineType]] = {
    E.STRATEGY: frozenset({E.PORTFOLIO, E.RISK}),
    E.PORTFOLIO: frozenset({E.RISK, E.COLLATERAL, E.ANALYTICS, E.BACKTESTING}),
    E.RISK: frozenset({E.STRATEGY, E.PORTFOLIO}),
    E.COLLATERAL: frozenset({E.RISK}),
    E.VPIN: frozenset({E.RISK, E.STRATEGY, E.FEATURES}),
    E.FEATURES: frozenset({E.ML, E.VPIN}),
    E.ML: frozenset({E.STRATEGY}),
    E.FACTOR: frozenset({E.TORANIKO, E.ANALYTICS}),
    E.TORANIKO: frozenset({E.FACTOR, E.RISK, E.ANALYTICS}),
    E.ANALYTICS: frozenset({E.PORTFOLIO, E.STRATEGY, E.BACKTESTING}),
    E.BACKTESTING: frozenset({E.ANALYTICS}),
    E.WEBSOCKET: frozenset(),
    E.MARKETDATA: frozenset(),
}
"""Engine -> the engines whose inboxes it may write (besides ``ALWAYS``): DESIGN.md's routes
and the platform's (``starmesh.platform.routes``; a test keeps the two in step, or publishes
on a new route would fail with NOPERM once the ACL is applied)."""

ALWAYS = frozenset({E.WEBSOCKET, E.MARKETDATA})
"""Every engine may write to these inboxes: the UI gateway follows everything; the hub takes
market-data requests."""


def may_publish_to(
    engine: EngineType, extra: Iterable[tuple[EngineType, EngineType]] = ()
) -> list[EngineType]:
    targets = set(ROUTES[engine]) | ALWAYS | {to for frm, to in extra if frm is engine}
    targets.discard(engine)  # its own keys are read-write anyway
    return sorted(targets, key=lambda e: e.value)


def acl_rules(
    prefix: str,
    password_hashes: Mapping[EngineType, str],
    extra: Iterable[tuple[EngineType, EngineType]] = (),
) -> list[list[str]]:
    """One ``ACL SETUSER`` argument list per engine (a command, ready to send)."""
    extra = list(extra)
    rules = []
    for engine in EngineType:
        me = engine.value
        keys = [
            f"~{prefix}:{{{me}}}:*",  # its inbox lanes, reply streams and dead letters
            f"~{prefix}:{{registry}}",
            f"~{prefix}:{{registry}}:*",
            f"%W~{prefix}:{{*}}:reply:*",  # answering whoever asked
        ]
        keys += [f"%W~{prefix}:{{{to.value}}}:inbox:*" for to in may_publish_to(engine, extra)]
        keys.append(f"~{prefix}:{{md}}:*" if engine is E.MARKETDATA else f"%R~{prefix}:{{md}}:*")
        rules.append(
            ["ACL", "SETUSER", me, "reset", "on", f"#{password_hashes[engine]}",
             "resetchannels", f"&{prefix}:control", "+@all", "-@dangerous", *keys]
        )  # fmt: skip
    return rules


def password_hash(password: str) -> str:
    """What Redis compares: the hex SHA-256 of the password."""
    return hashlib.sha256(password.encode()).hexdigest()
