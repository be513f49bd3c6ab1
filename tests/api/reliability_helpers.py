"""Helpers of the reliability tests: real servers on real ports, throwaway PostgreSQL
clusters and fingerprints of what a database holds.

Everything here starts real processes or threads and cleans up after itself; the
tests that use it are about behaviour under concurrency and faults, which an
in-process test client cannot show (it has no keep-alive connection to drop and no
port that stays up while the database goes away).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import venv
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy

from netgis.api.settings import Settings
from netgis.schema import LAYER_NAMES, LAYERS
from netgis.storage import create_engine
from netgis.storage.models import DATA_VERSION_KEY, LAYER_TABLES, META
from tests.api.helpers import free_port

API_KEY = "reliability-key"
KEY = {"X-API-Key": API_KEY}
ROOT = Path(__file__).parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def settings_for(url: str, **overrides: Any) -> Settings:
    """API settings on ``url`` with a write key (every other value as the defaults)."""
    values: dict[str, Any] = {"database_url": url, "api_keys": API_KEY}
    values.update(overrides)
    return Settings(**values)


def non_root_user() -> str | None:
    """A user without root's powers to run a server as, when the tests run as root.

    Root ignores file permissions, so a read-only database file only stays read-only
    for a server running as somebody else.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("no non-root user to run the server as")


def give_to(path: Path, user: str | None) -> None:
    """Make ``path`` (and what is below it) owned by ``user`` (nothing when None)."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def user_dir(user: str | None, prefix: str = "netgis-fault-") -> Iterator[Path]:
    """A fresh directory ``user`` owns and can reach, removed at the end.

    pytest's own temporary directories are private to root (mode 0700 on the
    way), so a server running as another user could not reach them.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chmod(path, 0o755)
        give_to(path, user)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_user(argv: Sequence[str], user: str | None) -> list[str]:
    return list(argv) if user is None else ["runuser", "-u", user, "--", *argv]


def netgis_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``netgis`` subprocess: this tree first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETGIS_")}
    env.update({"NETGIS_DATABASE_URL": url, "NETGIS_API_KEYS": API_KEY,
                "PYTHONPATH": str(ROOT), "HOME": tempfile.gettempdir(), **extra})
    return env


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link a file others may read (cheap); copy any other one and let others read it.

    A link shares its inode, so the mode of the original is never changed.
    """
    mode = os.stat(src).st_mode
    if mode & stat.S_IROTH:
        with contextlib.suppress(OSError):  # another file system: copy instead
            os.link(src, dst)
            return
    shutil.copy2(src, dst)
    os.chmod(dst, stat.S_IMODE(mode) | 0o644 | (0o111 if mode & stat.S_IXUSR else 0))


def _open_dirs(path: Path) -> None:
    for folder in [path, *(p for p in path.rglob("*") if p.is_dir() and not p.is_symlink())]:
        os.chmod(folder, 0o755)


@functools.cache
def server_runtime() -> tuple[str, str]:
    """A Python and a ``PYTHONPATH`` for a server running as another user: ``(python, path)``.

    The checkout and its virtualenv may sit where other users cannot enter (root's home,
    a ``mktemp -d`` folder: mode 0700), so the server runs from a copy of both in a
    temporary folder of mode 0755, made once per test process and removed at its end:
    a new virtualenv holding this one's packages (hard links where possible) and this
    tree's ``netgis``, ``api`` and ``maps``. Only what the server needs to run is copied;
    the files a fault test makes unreadable stay where the test puts them.
    """
    base = Path(tempfile.mkdtemp(prefix="netgis-runtime-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    env = base / "venv"
    venv.EnvBuilder(symlinks=True, with_pip=False).create(env)
    target = Path(sysconfig.get_paths(vars={"base": str(env), "platbase": str(env)})["purelib"])
    # the editable install's finder points into the checkout, which the user may not reach
    skip = shutil.ignore_patterns("__editable__*", "__pycache__")
    shutil.copytree(sysconfig.get_paths()["purelib"], target, ignore=skip,
                    copy_function=_link_or_copy, dirs_exist_ok=True)
    src = base / "src"
    for package in ("netgis", "api", "maps"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns(
            "__pycache__"), copy_function=_link_or_copy)
    _open_dirs(base)
    return str(env / "bin" / "python"), str(src)


class ServerProcess:
    """``netgis serve`` in a subprocess (as ``user`` when given), on a free port.

    ``start`` waits until the port answers; ``stop`` ends that process (and nothing else).
    """

    def __init__(self, url: str, *, user: str | None = None, log: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.user = user
        self.log = log
        self.env = netgis_env(url, **dict(env or {}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> ServerProcess:
        python = sys.executable
        if self.user is not None:
            python, self.env["PYTHONPATH"] = server_runtime()
        argv = as_user([python, "-m", "netgis.cli", "serve", "--port", str(self.port)],
                       self.user)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=str(self.log.parent))
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"netgis serve exited with {self.proc.returncode}:\n"
                                   + self.log.read_text(errors="replace")[-4000:])
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{self.url}/conformance", timeout=5)
                return self
            if time.monotonic() > deadline:
                raise RuntimeError("netgis serve did not answer:\n"
                                   + self.log.read_text(errors="replace")[-4000:])
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # runuser forwards the signal to the server it started
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThrowawayPostgres:
    """A PostgreSQL 15 cluster of its own (data directory, port, socket), for fault tests.

    It runs as a non-root user (initdb refuses root) and can be stopped, killed and
    started again while a server uses it; :meth:`destroy` stops it and removes its
    directory. The main cluster on port 5432 is never touched.
    """

    def __init__(self) -> None:
        self.user = non_root_user()
        # not below pytest's temporary directory: the cluster's user must reach it
        self.dir = Path(tempfile.mkdtemp(prefix="netgis-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "postgres.log"
        os.chmod(self.dir, 0o755)
        give_to(self.dir, self.user)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--no-sync"])

    def _run(self, argv: Sequence[str]) -> None:
        subprocess.run(as_user(argv, self.user), check=True, capture_output=True, timeout=120,
                       cwd=str(self.dir))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                   str(self.log), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster: ``fast`` (clean), ``immediate`` (like a crash)."""
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                   "stop"])

    def running(self) -> bool:
        result = subprocess.run(as_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data),
                                         "status"], self.user),
                                capture_output=True, timeout=30, check=False)
        return result.returncode == 0

    def create_database(self, name: str) -> str:
        admin = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                # the name comes from the test, never from outside; DDL has no parameters
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        return self.url(name)

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def fingerprint(url: str) -> tuple[int, dict[str, int], str]:
    """The data version, the count per layer and a checksum of every stored row.

    The checksum covers each layer's fields and geometry (WKB) in id order, so any
    row added, removed or changed shows.
    """
    engine = create_engine(url)
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            version = int(conn.execute(sqlalchemy.select(META.c.value).where(
                META.c.key == DATA_VERSION_KEY)).scalar_one())
            for name in LAYER_NAMES:
                table = LAYER_TABLES[name]
                cols = [table.c[f] for f in LAYERS[name].field_names]
                rows = conn.execute(sqlalchemy.select(
                    *cols, sqlalchemy.func.ST_AsBinary(table.c.geometry,
                                                       type_=sqlalchemy.LargeBinary))
                    .order_by(table.c[LAYERS[name].id_field])).all()
                counts[name] = len(rows)
                for row in rows:
                    digest.update(repr(tuple(bytes(v) if isinstance(v, bytes | memoryview)
                                             else v for v in row)).encode())
    finally:
        engine.dispose()
    return version, counts, digest.hexdigest()


def run_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` for i in range(n), all started together; their results in order.

    An exception in a worker is returned in its place (the caller asserts).
    """
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # handed back to the test, which reports it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    """Poll ``check`` until it is true (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()
