"""A worker whose orderly stop hangs (a broker that is gone) must still exit within its bound."""

from __future__ import annotations

import subprocess
import sys
import time

SCRIPT = """
import time
from fundtrail_runtime.worker import bound_shutdown

class HangingWorker:
    def __init__(self):
        self.stopping = []
    def _on_sigterm(self):
        self.stopping.append("term")
        time.sleep(60)  # what faust's stop does when it waits on a dead broker
    def _on_sigint(self):
        time.sleep(60)

w = bound_shutdown(HangingWorker(), 0.5)
w._on_sigterm()
print("not reached")
"""


def test_a_hanging_stop_exits_after_the_bound_with_a_failure_code() -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode == 70, proc.stderr
    assert "not reached" not in proc.stdout
    assert "shutdown did not finish" in proc.stderr
    assert elapsed < 20  # far below the 60 s the stop would have hung


def test_the_wrapped_handlers_still_run_the_original_stop() -> None:
    from fundtrail_runtime.worker import bound_shutdown

    calls: list[str] = []

    class Worker:
        def _on_sigterm(self) -> None:
            calls.append("term")

        def _on_sigint(self) -> None:
            calls.append("int")

    w = bound_shutdown(Worker(), 3600)
    w._on_sigterm()
    w._on_sigint()
    assert calls == ["term", "int"]
