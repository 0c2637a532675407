"""CPU time spent by the processes of a benchmark, read from ``/proc`` (Linux).

Throughput alone hides where the cycles go when the client processes, the server and
redis-server share a few cores: CPU seconds per request, per process, tell which side to
make cheaper, and how many cores a target rate would take.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CpuMeter", "cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far; None where ``/proc`` cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU seconds of named processes between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._started: dict[str, float | None] = {}

    def start(self) -> None:
        self._started = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self) -> dict[str, float]:
        """Seconds used per process (a process /proc cannot measure is left out)."""
        used = {}
        for name, pid in self._pids.items():
            before, after = self._started.get(name), cpu_seconds(pid)
            if before is not None and after is not None:
                used[name] = after - before
        return used
