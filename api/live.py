"""The live analysis of one API process: current within a moment of every write, never waited on.

One background thread (:class:`LiveState`) follows the database's data
version. When it moves, the thread reads what changed since the version it
reflects (:meth:`netgis.storage.Repository.changes_since`: the rows written
and the ids deleted, in one read snapshot), applies that to its
:class:`netgis.engine.live.LiveAnalysis` and publishes the new analysis. A
bulk load or import, or a change too large to apply row by row (more than
:data:`MAX_CHANGE_ROWS` rows), is one analysis from scratch instead.

Readers take the newest published analysis and never wait for one being
made (:meth:`LiveState.current`); every answer says which data version it
reflects. A reader that must see a given version (its own write) waits for
it (:meth:`LiveState.wait_for`, the ``min_version`` query parameter). Writes
made through this process wake the thread at once; writes of other processes
(API workers, the command line, another host) are seen by polling the data
version every :attr:`~api.settings.Settings.live_poll_s`.

docs/architecture.md ("Live analysis") describes the whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netgis.errors import NetgisError, Problem, StorageError, ValidationError

if TYPE_CHECKING:
    import geopandas as gpd

    from netgis.api.services import Services
    from netgis.engine.analysis import Analysis
    from netgis.engine.live import LiveAnalysis
    from netgis.engine.optics import LossBudget
    from netgis.storage import Repository

log = logging.getLogger("netgis.api.live")

#: Changes of more rows than this (written plus deleted) are analysed from scratch.
MAX_CHANGE_ROWS = 50_000
#: Seconds between two attempts of the live analysis to reach a database that was down.
STORAGE_RETRY_S = 0.5
#: The response header naming the data version an answer reflects.
VERSION_HEADER = "X-Data-Version"

#: Per request: the data versions of the analyses its answer was made from (a list the
#: request's handler appends to, in whichever thread it runs; the middleware reads it).
_ANSWER_VERSIONS: ContextVar[list[int] | None] = ContextVar("netgis_answer_versions",
                                                            default=None)


def note_version(version: int) -> None:
    """Record that the current request's answer reflects data version ``version``."""
    versions = _ANSWER_VERSIONS.get()
    if versions is not None:
        versions.append(int(version))


def answer_versions() -> list[int]:
    """Start recording the versions of this request's answer (see :func:`note_version`)."""
    versions: list[int] = []
    _ANSWER_VERSIONS.set(versions)
    return versions


@dataclass(frozen=True)
class Published:
    """An analysis as readers get it: the data version it reflects and how it was made."""

    version: int
    analysis: Analysis
    #: "full" (analysed from scratch) or the path of :attr:`LiveAnalysis.last_path`
    path: str
    #: seconds the thread took to make it
    seconds: float
    #: whether the change was a bulk load or import
    bulk: bool = False


@dataclass(frozen=True)
class LiveFailure:
    """The newest data could not be analysed; the last good analysis is served meanwhile."""

    failed_version: int
    served_version: int
    error: str


class LiveState:
    """The server's default analysis, kept current by a background thread.

    Parameters
    ----------
    repo_of
        Gives the open repository (raises :class:`~netgis.errors.StorageError` while the
        database cannot be reached).
    drop_m, budget
        The server's analysis parameters.
    poll_s
        Seconds between two looks at the data version when no local write woke the thread.
    on_published
        Called (in the thread) with each new :class:`Published` state, after readers can
        see it (indexes made ready for them).
    before_publish
        Called (in the thread) with each new state just before readers can see it, so that
        what it stores (a KPI snapshot) is there when a writer's wait ends.
    """

    def __init__(self, repo_of: Callable[[], Repository], *, drop_m: float,
                 budget: LossBudget | None, poll_s: float = 0.05,
                 on_published: Callable[[Published], None] | None = None,
                 before_publish: Callable[[Published], None] | None = None) -> None:
        self._repo_of = repo_of
        self.drop_m = float(drop_m)
        self.budget = budget
        self.poll_s = poll_s
        self._on_published = on_published
        self._before_publish = before_publish
        self._cond = threading.Condition()
        self._published: Published | None = None
        self._live: LiveAnalysis | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: the newest data version that failed to analyse, with the error, or None
        self.failure: LiveFailure | None = None
        self._first_error: NetgisError | None = None
        self._retry_until = 0.0
        self._settled = -1
        #: the thread's last look at the database failed (an outage): writers do not wait
        self.storage_down = False
        #: analyses made from scratch and changes applied, since the start
        self.full_runs = 0
        self.applied = 0
        #: called (in the thread) with the path and seconds of each new analysis published
        #: (api.routers.metrics)
        self.on_analysed: Callable[[str, float], None] | None = None

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="netgis-live", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread (after the step under way)."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def wake(self) -> None:
        """Look at the data version now (a write was just made through this process)."""
        self._wake.set()

    # ------------------------------------------------------------------ reads

    @property
    def published(self) -> Published | None:
        """The newest analysis readers get, or None before the first one."""
        with self._cond:
            return self._published

    def current(self, *, wait_s: float = 600.0) -> Published:
        """The newest published analysis; before the first, wait for it (at most ``wait_s``).

        Raises
        ------
        NetgisError
            The first analysis failed (invalid stored data, the database down).
        """
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._published is None:
                error = self._first_error
                if error is not None and not (isinstance(error, StorageError)
                                              and time.monotonic() < self._retry_until):
                    raise error
                if self._thread is None:
                    raise StorageError("the database is not ready: no analysis yet")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StorageError("the first analysis of the data is not ready yet")
                self.wake()
                self._cond.wait(min(left, 0.2))
            return self._published

    def wait_for(self, version: int, timeout: float) -> Published | None:
        """The published analysis once it reflects data version ``version`` or a newer one;
        None when that takes longer than ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self.wake()
        with self._cond:
            while self._published is None or self._published.version < version:
                error = self._first_error
                failed = self.failure.failed_version if self.failure is not None else -1
                if self._published is None and error is not None \
                        and not isinstance(error, StorageError) and version <= failed:
                    raise error
                if self.failure is not None and self.failure.failed_version >= version:
                    return None  # that version cannot be analysed: do not wait for it
                if self.storage_down:
                    return None  # the database went away after the write: not now
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 1.0))
            return self._published

    # ------------------------------------------------------------------ thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except StorageError as exc:
                log.warning("live analysis: database not reachable: %s", exc)
                with self._cond:
                    self.storage_down = True
                    if self._published is None:
                        self._first_error = exc
                        # a reader waits a moment for the retry before it answers 503
                        self._retry_until = time.monotonic() + 2 * STORAGE_RETRY_S
                    self._cond.notify_all()
                self._stop.wait(STORAGE_RETRY_S)
            except Exception:  # a bug must not end the thread: log it, start over
                log.exception("live analysis step failed; analysing from scratch next")
                self._live = None
                self._stop.wait(1.0)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def step(self) -> Published | None:
        """Bring the analysis up to the database's current data version (one step)."""
        repo = self._repo_of()
        version = repo.data_version()
        if self.storage_down:
            with self._cond:
                self.storage_down = False
        published = self.published
        if published is not None and version <= published.version and self._live is not None:
            return None
        if self.failure is not None and version <= self.failure.failed_version:
            return None
        started = time.perf_counter()
        try:
            new = self._advance(repo, published)
        except StorageError:
            raise
        except NetgisError as exc:
            # the change was refused before it was applied: the live state is intact, and
            # the next change (the bad row fixed) is applied to it
            with self._cond:
                if self._published is None:
                    self._first_error = exc
                    self._cond.notify_all()
                    self.failure = LiveFailure(version, -1, str(exc))
                    return None
                self.failure = LiveFailure(version, self._published.version, str(exc))
            log.error("analysis of data version %s failed; serving version %s: %s",
                      version, published.version if published else None, exc)
            return None
        new = Published(new.version, new.analysis, new.path,
                        time.perf_counter() - started, new.bulk)
        if self._before_publish is not None:
            try:
                self._before_publish(new)
            except NetgisError as exc:  # a snapshot must not hold the analysis back
                log.warning("before publishing data version %s: %s", new.version, exc)
        with self._cond:
            self._published = new
            self._first_error = None
            if self.failure is not None and new.version >= self.failure.failed_version:
                self.failure = None
            self._cond.notify_all()
        log.info("data version %s reflected (%s, %.3f s)", new.version, new.path, new.seconds)
        if self.on_analysed is not None and new.path != "none":
            self.on_analysed(new.path, new.seconds)
        if self._on_published is not None:
            try:
                self._on_published(new)
            except Exception:  # snapshots and stored results must not stop the analysis
                log.exception("after publishing data version %s", new.version)
        with self._cond:
            self._settled = max(self._settled, new.version)
            self._cond.notify_all()
        return new

    def wait_settled(self, timeout: float = 120.0) -> bool:
        """Wait until the work after publishing the current state (``on_published``) is
        done; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._published is None or self._settled < self._published.version:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
            return True

    @staticmethod
    def _checked(live: LiveAnalysis, rows: Mapping[str, gpd.GeoDataFrame]
                 ) -> dict[str, gpd.GeoDataFrame]:
        """The rows of a change set validated on their own, as a read of the whole store
        would (a row stored past the validator is named, not analysed).

        Raises
        ------
        ValidationError
            Naming every bad row.
        """
        from netgis.validate import validate_rows

        problems: list[Problem] = []
        out: dict[str, gpd.GeoDataFrame] = {}
        plant = live.analysis.plant_extent
        for layer, frame in rows.items():
            if not len(frame):
                out[layer] = frame
                continue
            clean, report = validate_rows(layer, frame, target_crs=live.dataset.crs,
                                          plant_bounds=plant)
            problems += report.errors
            if clean is not None:
                out[layer] = clean
        if problems:
            raise ValidationError(problems)
        return out

    def _advance(self, repo: Repository, published: Published | None) -> Published:
        """The analysis of the newest data: the last one with the changes since, or anew."""
        from netgis.engine.live import Changes, LiveAnalysis

        if self._live is not None and published is not None:
            changes = repo.changes_since(published.version, max_rows=MAX_CHANGE_ROWS)
            # a bulk load or import is one analysis from scratch: it may touch every row, and
            # the dataset then keeps the database's row order (the order of areas in the KPIs)
            if changes is not None and not changes.bulk:
                if changes.empty:
                    return Published(changes.version, published.analysis, "none", 0.0)
                rows = self._checked(self._live, changes.rows)
                result = self._live.apply(Changes(rows, changes.deleted))
                self.applied += 1
                return Published(changes.version, result, self._live.last_path, 0.0,
                                 changes.bulk)
        version, dataset = repo.read_consistent()
        self._live = LiveAnalysis(dataset, drop_m=self.drop_m, budget=self.budget)
        self.full_runs += 1
        return Published(version, self._live.analysis, "full", 0.0, True)


#: Paths whose unsafe requests write data: their answers wait until the write is reflected.
WRITE_PATHS = ("/collections", "/import")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LiveVersions:
    """ASGI middleware: the ``X-Data-Version`` header of every analysis answer, and writes
    that answer once the live analysis reflects them.

    An answer made from an analysis carries the data version it reflects. A successful
    write through this process answers once the live analysis has taken it in (at most
    ``write_visible_timeout_s``), with the data version it gave the database and
    ``X-Data-Version-Visible: true`` (``false`` after the timeout): a client that reads
    after its write sees it, and readers never wait for it.
    """

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request, adding the version headers to its response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        versions = answer_versions()
        path = scope["path"]
        writes = scope["method"] in _UNSAFE and (
            path.startswith(WRITE_PATHS)
            or (path.startswith("/plans/") and path.endswith("/merge")))

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                status = int(message["status"])
                if writes and 200 <= status < 300:
                    version, visible = await anyio.to_thread.run_sync(
                        self._visible, limiter=self.services.waiters)
                    if version is not None:
                        headers[VERSION_HEADER] = str(version)
                        headers["X-Data-Version-Visible"] = "true" if visible else "false"
                elif versions and VERSION_HEADER not in headers:
                    headers[VERSION_HEADER] = str(versions[-1])
            await send(message)

        await self.app(scope, receive, send_with_version)

    def _visible(self) -> tuple[int | None, bool]:
        """The data version after the write, and whether the live analysis reflects it."""
        services = self.services
        try:
            version = services.repo.data_version()
        except NetgisError:
            return None, False
        timeout = services.settings.write_visible_timeout_s
        if timeout <= 0:
            services.live.wake()
            return version, False
        try:
            reached = services.live.wait_for(version, timeout)
        except NetgisError:
            # the write stands; only its analysis failed (health reports it)
            return version, False
        return version, reached is not None
