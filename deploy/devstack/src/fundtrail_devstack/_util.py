"""Small process / port / path helpers shared by the Kafka and PostgreSQL nodes."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "DEFAULT_HOME",
    "KAFKA_PROJECT_DIR",
    "REPO_ROOT",
    "DevstackError",
    "free_port",
    "free_ports",
    "pid_alive",
    "port_accepts",
    "wait_for_exit",
]

# deploy/devstack/src/fundtrail_devstack/_util.py -> parents[4] is the repository root
REPO_ROOT = Path(__file__).resolve().parents[4]
KAFKA_PROJECT_DIR = REPO_ROOT / "deploy" / "kafka"
DEFAULT_HOME = REPO_ROOT / ".devstack"


class DevstackError(RuntimeError):
    """A local infrastructure component could not be prepared, started or stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free when asked (the OS picks it)."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct free ports (all sockets are held open together, so no duplicates)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie. Reaps it first if it is our own exited child."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        if exc.errno != errno.EPERM:  # EPERM: exists, owned by someone else
            raise
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def pid_cmdline(pid: int) -> list[str]:
    """The command line of ``pid`` (empty if unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def wait_for_exit(pid: int, timeout: float, poll: float = 0.1) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(poll)
    return not pid_alive(pid)


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if missing)."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(content[-lines:])
