"""``starmesh doctor``: every setting, its value and where the value came from.

Secrets (bus URLs, source keys, the HTTP token) are shown redacted: a URL without its
password, a key only as ``set``. A ``STARMESH_*`` variable that is no setting (a typo) is
named, since ``Settings`` ignores it silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape

from starmesh.bus.redis.transport import redact_url
from starmesh.cli.tables import ResultTable, to_terminal
from starmesh.core.config import Settings

__all__ = ["register", "settings_table", "unknown_variables"]

PREFIX = "STARMESH_"


def _variable(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return redact_url(secret) if "://" in secret else "set (hidden)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return json.dumps({str(k): v for k, v in value.items()}, separators=(", ", ": "))
    return str(value)


def settings_table(settings: Settings, environ: Mapping[str, str]) -> ResultTable:
    """One row per setting: its variable, its value (secrets redacted), where it came from."""
    given = {name.upper() for name in environ}
    table = ResultTable("starmesh settings", ["variable", "value", "from"])
    for field in type(settings).model_fields:
        variable = _variable(field)
        origin = "environment" if variable in given else "default"
        table.rows.append([variable, escape(_shown(getattr(settings, field))), origin])
    return table


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``STARMESH_*`` variables that name no setting: ignored by ``Settings``."""
    known = {_variable(field) for field in Settings.model_fields}
    return sorted(n for n in environ if n.upper().startswith(PREFIX) and n.upper() not in known)


def register(app: typer.Typer, console: Console) -> None:
    @app.command()
    def doctor() -> None:
        """Print every setting (STARMESH_* variable), its value and where it came from.

        Secrets are redacted; a STARMESH_* variable that is no setting is named.
        """
        settings = Settings()
        console.print(to_terminal(settings_table(settings, os.environ), left=3), highlight=False)
        for name in unknown_variables(os.environ):
            console.print(f"[yellow]{name} is not a starmesh setting: it is ignored[/yellow]")
