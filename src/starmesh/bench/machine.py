"""What a benchmark ran on, recorded beside its numbers."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from starmesh.__about__ import __version__

__all__ = ["machine_info", "write_report"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).parent,
        )
    except OSError:
        return None
    return result.stdout.strip() or None


_PACKAGES = ("msgspec", "redis", "hiredis", "uvloop", "nautilus_trader", "faststream", "numpy")


def _versions() -> dict[str, str | None]:
    """Versions of what the numbers depend on: starmesh's own dependencies and the peers."""
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine_info() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "starmesh": __version__,
        "git": _git_revision(),
        "versions": _versions(),
    }


def write_report(path: Path, bench: str, config: dict[str, Any], results: dict[str, Any]) -> None:
    report = {
        "bench": bench,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": config,
        "results": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
