"""Engine processes, their records, and what a fault test reports."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.processes.harness import Process
from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("STARMESH_FAULT_RESULTS", ROOT / "bench-results" / "faults.jsonl"))


class Engine(Process):
    """One subscribing engine process (see ``engine.py``)."""

    def __init__(
        self, engine: str, url: str, prefix: str, instance: str, tmp: Path, *options: str
    ) -> None:
        self.instance = instance
        self.once = "--once" in options
        """Handled messages are committed to a SQLite ledger, once each (``engine.py``)."""
        self.record = tmp / (f"{instance}.db" if self.once else f"{instance}.handled")
        self.http_port = free_port()
        self._args = [
            engine,
            url,
            prefix,
            instance,
            str(self.record),
            str(self.http_port),
            *options,
        ]
        self.process = self._launch()

    def _launch(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.engine", *self._args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def restart(self) -> None:
        self.process = self._launch()

    def handled(self) -> list[int]:
        if not self.record.exists():
            return []
        if self.once:
            return self._committed()
        return [int(line) for line in self.record.read_text().split()]

    def _committed(self) -> list[int]:
        with contextlib.closing(sqlite3.connect(self.record, timeout=10)) as ledger:
            try:
                return [n for (n,) in ledger.execute("SELECT n FROM handled")]
            except sqlite3.OperationalError as exc:  # the engine has not made its table yet
                if "no such table" in str(exc):
                    return []
                raise

    def died(self) -> bool:
        """Whether it killed itself as ``--die-after`` asked."""
        return self.process.poll() is not None and Path(f"{self.record}.died").exists()


@dataclass
class FaultReport:
    """What one fault test measured: the numbers noted on the issue."""

    name: str
    sent: int = 0
    receivers: dict[str, dict[str, int]] = field(default_factory=dict)
    switch_s: float | None = None
    """From the fault to the first delivery on the fallback path (or the bus seen down)."""
    recover_s: float | None = None
    """From the repair to the primary path carrying messages again."""
    max_publish_s: float = 0.0
    notes: str = ""

    def count(self, name: str, handled: list[int], expected: range | list[int]) -> None:
        times = Counter(handled)
        wanted = set(expected)
        self.receivers[name] = {
            "handled": len(handled),
            "lost": len(wanted - set(times)),
            "handled_twice": sum(1 for n, k in times.items() if k > 1 and n in wanted),
            "unexpected": len(set(times) - wanted),
        }

    def write(self) -> None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%S"), **asdict(self)})
        with RESULTS.open("a") as out:
            out.write(line + "\n")
        print(line)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)
