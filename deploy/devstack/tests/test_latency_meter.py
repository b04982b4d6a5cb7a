"""The latency benchmark's CPU accounting: per component, descendants included."""

from __future__ import annotations

import subprocess
import sys
import time

from fundtrail_devstack.latency import CpuMeter

SPIN = "import time\\nt = time.time()\\nwhile time.time() - t < 1.5: pass"
BUSY_CHILD = f"import subprocess, sys; subprocess.run([sys.executable, '-c', '{SPIN}'])"


def test_busy_descendants_count_and_sleepers_do_not() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY_CHILD])  # the work happens in a grandchild
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        time.sleep(0.2)
        meter = CpuMeter({"busy": busy.pid, "idle": idle.pid, "gone": None, "busy alone": busy.pid},
                         alone=frozenset({"busy alone"}))
        meter.start()
        time.sleep(1.0)
        result = meter.stop()
    finally:
        busy.wait(10)
        idle.kill()
        idle.wait(10)
    used = result["cores_used"]
    assert set(used) == {"busy", "idle", "busy alone"}
    assert used["busy"] > 0.5  # one core spinning (the machine may be shared)
    assert used["busy alone"] < 0.1  # the parent only waits
    assert used["idle"] < 0.1
    assert 0 < result["machine_busy_pct"] <= 100
