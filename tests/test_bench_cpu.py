from __future__ import annotations

import os
import subprocess
import sys

from starmesh.bench.cpu import CpuMeter, cpu_seconds


def test_the_meter_counts_cpu_a_process_burns_and_not_time_it_sleeps() -> None:
    burner = subprocess.Popen(
        # It burns 0.5 s once told to (after the meter's baseline), and the test waits for
        # /proc to show 0.3: /proc counts in clock ticks, sampled, so it may show a little less.
        [sys.executable, "-c", "import sys, time\nsys.stdin.readline()\n"
         "end = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
         "sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                               stdin=subprocess.PIPE)  # fmt: skip
    meter = CpuMeter({"burner": burner.pid, "sleeper": sleeper.pid, "gone": 2**22 + 12345})
    assert burner.stdin is not None
    try:
        meter.start()
        burner.stdin.write(b"burn\n")
        burner.stdin.flush()
        while (cpu_seconds(burner.pid) or 0.0) < 0.3:
            os.sched_yield()
        used = meter.stop()
    finally:
        for process in (burner, sleeper):
            process.communicate(b"")
    assert "gone" not in used  # a pid /proc does not know is left out, not reported as 0
    assert used["burner"] >= 0.2
    assert used["sleeper"] < 0.1
