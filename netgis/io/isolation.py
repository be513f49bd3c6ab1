"""Reading untrusted input in a child process, under limits and with a restricted GDAL.

A file from a third party can make a reader spin (a GeoPackage view running a recursive
query), swell (an archive of a few hundred kilobytes unpacking to gigabytes) or, through
GDAL, reach files and URLs it names. :func:`run_isolated` runs one function in a fresh
Python process that

- keeps only the GDAL drivers of the formats netgis reads (:data:`ALLOWED_DRIVERS`; every
  other driver, the VRT and the network drivers among them, is unregistered through
  ``GDAL_SKIP`` before GDAL loads) and cannot fetch a URL (``/vsicurl/`` opens nothing,
  HTTP goes to a dead proxy);
- gets only the environment it needs (no API keys, no database URL);
- runs under a CPU-time limit and an address-space limit (``resource.setrlimit``) on top
  of what its libraries take, and under a wall-clock limit kept by the parent;
- dies with its parent (``PR_SET_PDEATHSIG`` on Linux), and is killed when the caller's
  ``stop`` says so (the HTTP client went away) or the caller is cancelled.

The function's return value and its errors come back by pickle: a
:class:`~netgis.errors.NetgisError` (or any exception class the parent can import) is
raised again in the parent as it was raised in the child; a limit exceeded is a
:class:`~netgis.errors.LimitError` naming it.

Examples
--------
>>> import asyncio, tempfile
>>> work = Path(tempfile.mkdtemp())
>>> asyncio.run(run_isolated("os.path:basename", ("/a/b.gpkg",), work=work,
...                          limits=Limits(wall_s=60, cpu_s=30, memory_bytes=2**30)))
'b.gpkg'
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import pickle
import resource
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from netgis.errors import LimitError, Problem

#: The GDAL drivers a child keeps: those of the formats netgis reads
#: (netgis.io.formats.READ_FORMATS; GeoParquet is read by pyarrow) and the in-memory driver
#: GDAL uses itself.
ALLOWED_DRIVERS = frozenset({"GPKG", "GeoJSON", "FlatGeobuf", "ESRI Shapefile", "CSV", "KML",
                             "LIBKML", "GPX", "MEM"})
#: GDAL settings of a child: ``/vsicurl/`` (and the other network file systems) may open
#: only a name no URL has, and every HTTP request GDAL would make goes to the discard port
#: of the loopback interface, where nothing answers.
GDAL_NETWORK_OFF: dict[str, str] = {
    "CPL_VSIL_CURL_ALLOWED_FILENAME": "netgis-opens-no-url",
    "GDAL_HTTP_PROXY": "127.0.0.1:9",
    "GDAL_HTTPS_PROXY": "127.0.0.1:9",
    "CPL_ALLOW_VSISTDIN": "NO",
}
#: Environment variables a child inherits (locale, temporary folder, data of PROJ/GDAL).
_INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "HOME", "PROJ_DATA", "PROJ_LIB",
              "GDAL_DATA")
_CALL, _RESULT, _LOG = "call.pickle", "result.pickle", "child.log"
#: The child's own signal for its CPU limit (the soft limit); the hard one kills it later.
_CPU_SIGNAL = signal.SIGXCPU
#: Seconds of CPU time between the soft limit (SIGXCPU) and the hard one (SIGKILL).
_CPU_GRACE_S = 5
#: PR_SET_PDEATHSIG of prctl(2): the signal a process gets when its parent thread dies.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    """What one isolated call may use.

    Parameters
    ----------
    wall_s
        Seconds from start to finish, kept by the parent (the child is killed).
    cpu_s
        Seconds of CPU time the call may use beyond loading its libraries (RLIMIT_CPU).
    memory_bytes
        Bytes of address space the call may add to what its libraries take (RLIMIT_AS).
    settings
        How a message names the setting behind each limit (``wall_s``, ``cpu_s``,
        ``memory_bytes`` -> e.g. an environment variable); unnamed limits are not named.
    """

    wall_s: float
    cpu_s: float
    memory_bytes: int
    settings: Mapping[str, str] = field(default_factory=dict)

    def exceeded(self, limit: str, what: str) -> LimitError:
        """The error for a limit the call went past."""
        setting = self.settings.get(limit)
        named = f" (the limit is {setting})" if setting else ""
        return LimitError([Problem("dataset", None, None,
                                   f"reading the input was stopped: {what}{named}")])


class Stopped(Exception):
    """The caller's ``stop`` asked for the child to be stopped (it was killed)."""


@dataclass(frozen=True)
class _Call:
    target: str
    args: tuple[Any, ...]
    limits: Limits


# ---- the parent -----------------------------------------------------------------------------

async def run_isolated(target: str, args: tuple[Any, ...], *, work: Path, limits: Limits,
                       stop: Callable[[], Awaitable[bool]] | None = None,
                       poll_s: float = 0.2) -> Any:
    """Run ``target(*args)`` in a child process (see the module) and return what it returns.

    Parameters
    ----------
    target
        ``"module:function"``, imported by the child.
    args
        Its arguments (pickled).
    work
        A folder for the call and its result (created; the caller removes it).
    limits
        Time, CPU and memory the call may use.
    stop
        Asked every ``poll_s`` seconds while the child runs: True kills the child and
        raises :class:`Stopped`.

    Raises
    ------
    LimitError
        The child went past a limit (it was killed).
    Stopped
        ``stop`` said so.
    """
    work.mkdir(parents=True, exist_ok=True)
    (work / _CALL).write_bytes(pickle.dumps(_Call(target, args, limits)))
    loop = asyncio.get_running_loop()
    with (work / _LOG).open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "netgis.io.isolation", str(work), env=child_environment(),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = loop.time() + limits.wall_s
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout=poll_s)
                break
            if loop.time() >= deadline:
                raise limits.exceeded("wall_s", f"it took longer than {limits.wall_s:g} s")
            if stop is not None and await stop():
                raise Stopped("stopped by the caller")
    finally:
        if proc.returncode is None:
            # the child leads its own process group: whatever it started goes with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode is not None  # waited for above
    return _outcome(proc.returncode, work, limits)


def child_environment() -> dict[str, str]:
    """The environment of a child: what it needs to run Python and GDAL, the driver list and
    the network settings; none of the parent's secrets (keys, database URLs)."""
    import pyogrio

    env = {k: v for k, v in os.environ.items() if k in _INHERITED}
    # the same code as the parent, wherever it was imported from (a checkout, a venv)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["GDAL_SKIP"] = ",".join(sorted(set(pyogrio.list_drivers()) - ALLOWED_DRIVERS))
    env.update(GDAL_NETWORK_OFF)
    return env


def _outcome(returncode: int, work: Path, limits: Limits) -> Any:
    result = work / _RESULT
    if returncode == 0 and result.exists():
        kind, payload = pickle.loads(result.read_bytes())
        if kind == "ok":
            return payload
        raise _rebuilt(payload)
    if returncode == -_CPU_SIGNAL:  # only RLIMIT_CPU sends it
        raise limits.exceeded("cpu_s", f"it used more than {limits.cpu_s:g} s of CPU time")
    if returncode < 0:
        # killed by the system, not by us: the usual cause is memory (the OOM killer)
        raise limits.exceeded("memory_bytes", "the reading process was killed by signal "
                              f"{signal.Signals(-returncode).name} (most likely out of memory)")
    log = (work / _LOG).read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the isolated reader failed (exit {returncode}): {log}")


def _rebuilt(payload: tuple[str, str, tuple[Any, ...], dict[str, Any]]) -> BaseException:
    """An exception raised in the child, as its class would have raised it here."""
    module, name, args, state = payload
    try:
        cls = getattr(import_module(module), name)
    except (ImportError, AttributeError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        return RuntimeError(f"the isolated reader raised {module}.{name}: {args!r}")
    # not cls(*args): exception classes here take other arguments than their args
    exc = cls.__new__(cls)
    exc.__dict__.update(state)
    exc.args = args
    return exc


# ---- the child ------------------------------------------------------------------------------

def _child(work: Path) -> None:
    _die_with_parent()
    call: _Call = pickle.loads((work / _CALL).read_bytes())
    module, _, name = call.target.partition(":")
    function = getattr(import_module(module), name)
    _check_drivers()
    _set_limits(call.limits)
    try:
        outcome: tuple[str, Any] = ("ok", function(*call.args))
    except MemoryError:
        outcome = ("error", _portable(call.limits.exceeded(
            "memory_bytes", f"it needed more than {call.limits.memory_bytes} bytes of memory")))
    except Exception as exc:
        outcome = ("error", _portable(exc))
    tmp = work / f"{_RESULT}.tmp"
    tmp.write_bytes(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(work / _RESULT)


def _portable(exc: BaseException) -> tuple[str, str, tuple[Any, ...], dict[str, Any]]:
    cls = type(exc)
    return cls.__module__, cls.__qualname__, exc.args, dict(exc.__dict__)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a server killed outright)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def _check_drivers() -> None:
    """Refuse to run when GDAL kept a driver it was told to skip (GDAL_SKIP not honoured)."""
    import pyogrio

    extra = set(pyogrio.list_drivers()) - ALLOWED_DRIVERS
    if extra:
        raise SystemExit(f"GDAL kept drivers it was told to skip: {sorted(extra)}")


def _set_limits(limits: Limits) -> None:
    """CPU time and address space on top of what the libraries already took."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(used.ru_utime + used.ru_stime + limits.cpu_s)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + _CPU_GRACE_S))
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + limits.memory_bytes,) * 2)


def _address_space() -> int:
    """Bytes of address space this process has mapped (VmSize of /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
