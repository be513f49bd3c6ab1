"""What the API tests (and the map tests of the API) share: settings, the key, a live server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import uvicorn
from fastapi import FastAPI

from netgis.api.settings import Settings

API_KEY = "test-key"


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": url, "api_keys": f"{API_KEY},second-key",
                              "max_limit": 50, "default_limit": 10, "max_body_bytes": 200_000,
                              "max_upload_bytes": 5_000_000}
    values.update(overrides)
    return Settings(**values)


class LiveServer:
    """uvicorn serving an app on a free loopback port, in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def free_port() -> int:
    """A loopback TCP port free right now (a child process binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """``netgis serve`` in a child process on a loopback port, configured by ``NETGIS_*``.

    A child of its own, so its memory (RSS) and its open files can be measured apart
    from the test process. ``env`` is added to this process's environment; the child
    imports the code of this checkout (PYTHONPATH), not an installed copy.

    Parameters
    ----------
    env
        Environment variables for the server, e.g. ``NETGIS_DATABASE_URL``.
    log
        File receiving the server's output (shown when it fails to start).
    """

    def __init__(self, env: dict[str, str], log: Path, args: Sequence[str] = ()) -> None:
        self.env = env
        self.log = log
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> ServerProcess:
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "netgis.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), *self.args],
                env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"netgis serve exited with {self.proc.returncode}:\n"
                                   + self.log.read_text(errors="replace"))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("netgis serve did not start") from None
                time.sleep(0.1)

    def wait_live(self, timeout: float = 90) -> dict[str, Any]:
        """``/health`` once the live analysis has published its first state: the server's
        start-up work (the first analysis, its imports) is over, so that what a test
        measures next is its own requests' doing."""
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            health: dict[str, Any] = httpx.get(f"{self.url}/health", timeout=30).json()
            if health.get("live") is not None:
                return health
            if time.monotonic() > deadline:
                raise RuntimeError(f"no live analysis after {timeout} s: {health}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


def temp_bytes(pid: int, folder: Path) -> int:
    """Bytes a process holds in ``folder``: files in it plus deleted files it still has open.

    Spooled uploads are anonymous temporary files (unlinked, or O_TMPFILE): they are not
    in the folder's listing but still use its space, so the process's open files count.
    """
    total = 0
    # os.walk passes over folders that vanish while it walks (a request cleaning up)
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith(str(folder)) and target.endswith("(deleted)"):
                    total += fd.stat().st_size
    return total


class PeakSampler:
    """Samples a process's RSS and its temporary bytes in ``folder`` in a thread; keeps peaks.

    Use as a context manager around the work to measure; ``rss_growth`` and
    ``temp_growth`` are the peaks minus the values at the start.
    """

    def __init__(self, pid: int, folder: Path, every_s: float = 0.005) -> None:
        self.process = psutil.Process(pid)
        self.folder = folder
        self.every_s = every_s
        self.rss_start = self.rss_peak = self.process.memory_info().rss
        self.temp_start = self.temp_peak = temp_bytes(pid, folder)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rss_peak = max(self.rss_peak, self.process.memory_info().rss)
            self.temp_peak = max(self.temp_peak, temp_bytes(self.process.pid, self.folder))
            time.sleep(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def rss_growth(self) -> int:
        return self.rss_peak - self.rss_start

    @property
    def temp_growth(self) -> int:
        return self.temp_peak - self.temp_start


@dataclass
class ChunkedResult:
    """What :func:`post_chunked` saw: the response, and how much was sent before it came."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent_before_response: int
    sent_total: int


def post_chunked(url: str, path: str, parts: Iterable[bytes], headers: dict[str, str],
                 timeout_s: float = 120) -> ChunkedResult:
    """POST ``parts`` with ``Transfer-Encoding: chunked`` (no Content-Length) over a raw socket.

    The response is read by a second thread while the body is still being sent, so a
    server answering before the body ends is seen doing so; sending stops quietly if
    the server closes the connection.
    """
    host_port = url.removeprefix("http://")
    host, port = host_port.split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    head = [f"POST {path} HTTP/1.1", f"Host: {host_port}", "Transfer-Encoding: chunked",
            *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    sent = [0]
    seen_at: list[int] = []
    raw = bytearray()
    done = threading.Event()

    def complete() -> bool:
        head_end = raw.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        lines = bytes(raw[:head_end]).decode("latin-1").split("\r\n")
        length = next((int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                       if k.strip().lower() == "content-length"), 0)
        return len(raw) >= head_end + 4 + length

    def read() -> None:
        try:
            while not complete():
                data = sock.recv(65536)
                if not data:
                    break
                if not seen_at:
                    seen_at.append(sent[0])
                raw.extend(data)
        except OSError:
            pass
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        sock.sendall("\r\n".join(head).encode("latin-1"))
        for part in parts:
            if done.is_set():
                break
            sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sent[0] += len(part)
        if not done.is_set():
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped reading and closed: its answer is what counts
    reader.join(timeout_s)
    sock.close()
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        raise AssertionError(f"no HTTP response after sending {sent[0]} bytes")
    lines = bytes(raw[:head_end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    parsed = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return ChunkedResult(status, parsed, bytes(raw[head_end + 4:]),
                         seen_at[0] if seen_at else sent[0], sent[0])
