"""The workers run on uvloop only if it is set up before their faust app is built."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
import faust
from fundtrail_runtime.worker import use_uvloop

def app():
    a = faust.App("loop-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    a.loop  # bound while built, as the services' build_app does (mode then keeps it for the thread)
    return a

if sys.argv[1] == "first":
    use_uvloop()
    a = app()
else:
    a = app()
    use_uvloop()
print(type(faust.Worker(a, quiet=True).loop).__module__)
"""


@pytest.mark.parametrize(("order", "loop"), [("first", "uvloop"), ("after", "asyncio.unix_events")])
def test_the_worker_runs_on_uvloop_only_when_it_is_set_up_before_the_app(order: str, loop: str) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, order], capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == loop
