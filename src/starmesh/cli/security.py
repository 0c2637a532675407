"""``starmesh acl`` (Redis ACL users, one per engine) and ``starmesh token`` (HTTP tokens)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from pathlib import Path
from typing import Annotated

import redis.asyncio as aioredis
import typer
from rich.console import Console

from starmesh.bus.http.auth import new_token, token_digest
from starmesh.bus.redis.acl import acl_rules, password_hash
from starmesh.bus.redis.transport import redact_url
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType

__all__ = ["register"]


def register(app: typer.Typer, console: Console) -> None:
    @app.command()
    def acl(
        passwords: Annotated[
            Path,
            typer.Option(help="JSON file engine -> password; missing ones are generated into it."),
        ],
        prefix: Annotated[
            str | None, typer.Option(help="Key prefix (default: STARMESH_KEY_PREFIX).")
        ] = None,
        allow: Annotated[
            list[str] | None,
            typer.Option(help="An extra route FROM:TO (FROM may write TO's inbox); repeatable."),
        ] = None,
        apply: Annotated[bool, typer.Option(help="Install the users on --url.")] = False,
        url: Annotated[
            str | None, typer.Option(help="Redis to install them on, as an admin user.")
        ] = None,
    ) -> None:
        """Print (or --apply) Redis 7 ACL users, one per engine type.

        For the Engine Logic Bus and the MarketData Bus.
        Passwords stay in the file (mode 600); the rules carry their hashes.
        """
        key_prefix = prefix or Settings().key_prefix
        secrets = _passwords(passwords)
        extra = [_route(text) for text in allow or []]
        rules = acl_rules(key_prefix, {e: password_hash(p) for e, p in secrets.items()}, extra)
        for rule in rules:
            console.print(shlex.join(rule), soft_wrap=True, highlight=False)
        if apply:
            if url is None:
                raise typer.BadParameter("--apply needs --url", param_hint="--url")
            asyncio.run(_apply(url, rules))
            console.print(f"applied {len(rules)} users on {redact_url(url)}")
        console.print(
            f"engines connect as redis://<engine>:<password from {passwords}>@host:port",
            highlight=False,
        )

    @app.command()
    def token(name: Annotated[str, typer.Argument(help="An engine, or e.g. 'operator'.")]) -> None:
        """Make an HTTP bearer token for NAME.

        Give the token to NAME only (its STARMESH_HTTP_TOKEN).
        Add its digest to every process's STARMESH_HTTP_TOKENS.
        """
        secret = new_token()
        console.print(f"STARMESH_HTTP_TOKEN={secret}", highlight=False)
        console.print(f'STARMESH_HTTP_TOKENS entry: "{name}": "{token_digest(secret)}"')


def _passwords(path: Path) -> dict[EngineType, str]:
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    secrets = {e: known.get(e.value) or new_token() for e in EngineType}
    if {e.value: p for e, p in secrets.items()} != known:
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        path.write_text(json.dumps({e.value: p for e, p in secrets.items()}, indent=2))
    return secrets


def _route(text: str) -> tuple[EngineType, EngineType]:
    source, _, target = text.partition(":")
    try:
        return EngineType(source), EngineType(target)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use FROM:TO with engine names") from None


async def _apply(url: str, rules: list[list[str]]) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        for rule in rules:
            await client.execute_command(*rule)  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()
