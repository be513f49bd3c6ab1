"""The state of the API in one place: the database, what is computed from it, KPI snapshots.

Every write to the database raises its data version, so everything kept here
is keyed by that version and can never outlive the data it was computed from:
a request first asks the database for its version (one cheap query) and
recomputes only when it changed. Nothing is keyed by object identity.

One :class:`Services` belongs to one application (:func:`api.app.create_app`
makes it; routers reach it through :data:`api.deps.ServicesDep`), so two apps
in one process, as in the tests, share nothing.

Examples
--------
>>> from api.settings import Settings
>>> services = Services(Settings(database_url="sqlite:///./example.db"))
>>> services.drop_m(None) == services.settings.drop_m, services.drop_m(40)
(True, 40.0)
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import anyio
import numpy as np
from cachetools import LRUCache

from netgis.api.limits import RateLimiter, current_client
from netgis.api.live import LiveState, Published, note_version
from netgis.api.result_features import RESULT_COLLECTIONS, BeadInputs, ResultStates
from netgis.api.strand_states import STATES_KEPT, StrandState, StrandStates, with_capacity
from netgis.errors import NetgisError, ParameterError, Problem, StorageError

if TYPE_CHECKING:
    import geopandas as gpd

    from netgis.api.settings import Settings
    from netgis.dataset import Dataset
    from netgis.engine.analysis import Analysis
    from netgis.engine.optics import LossBudget
    from netgis.engine.strands.trace import TraceOptions
    from netgis.products.gaps import BuildPlan, GapParams
    from netgis.products.names import PlaceIndex, PlaceNames
    from netgis.products.search import PremiseSearch
    from netgis.products.tiles import TileAddress, TileAttributes
    from netgis.storage import Repository
    from netgis.storage.repository import LayerExtent
    from netgis.storage.results import StoredRun

log = logging.getLogger("netgis.api.services")

#: Build plans kept per application.
PLAN_CACHE_SIZE = 4
#: Bytes of encoded vector tiles kept per application (least recently used dropped first).
TILE_CACHE_BYTES = 64 * 1024 * 1024
#: Reads of a tile before it is sent with rows and analysis of different data versions
#: (each attempt after the first follows a write that landed during the one before).
TILE_READ_ATTEMPTS = 3
#: Key of a cached build plan: data version, drop_m and the gap parameters.
PlanKey = tuple[int, float, "GapParams"]
#: Key of a cached map page: data version first, then the normalised parameters.
PageKey = tuple[Hashable, ...]
#: Key of a cached analysis: see :func:`analysis_key`. Opaque to everything but this module.
AnalysisKey = tuple[Hashable, ...]
#: Seconds between two attempts to reach a database that was down.
RECONNECT_INTERVAL_S = 1.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CacheStats(NamedTuple):
    """How a cache has served since it was made: lookups answered from it, lookups that
    computed the value (or found nothing), and the values it holds now (/metrics)."""

    hits: int
    misses: int
    entries: int


def analysis_key(version: int, drop_m: float, *extra: Hashable) -> AnalysisKey:
    """The cache key of an analysis: data version, drop length and any further parameters.

    The one place the key is built, so a new analysis parameter (an optical loss
    budget, say) is one more ``extra`` item here and nowhere else.

    Examples
    --------
    >>> analysis_key(3, 150, None)
    (3, 150.0, None)
    """
    return (int(version), float(drop_m), *extra)


class SingleFlight(Generic[K, V]):
    """An LRU of computed values (a :class:`cachetools.LRUCache`) in which each missing key
    is computed once, by one caller: the one cache of what the API computes or renders.

    A caller that finds its key computed returns at once, whatever else is being
    computed: there is no lock around computations, only a short one around the
    table. A caller whose key is being computed by another waits for that result
    (or its exception) instead of computing it again. A failed computation is not
    kept; the next caller tries again.

    Parameters
    ----------
    size
        Values kept, least recently used dropped first.

    Examples
    --------
    >>> memo: SingleFlight[str, int] = SingleFlight(size=1)
    >>> memo.get("a", lambda: 1), memo.get("a", lambda: 2), memo.get("b", lambda: 3)
    (1, 1, 3)
    >>> memo.keys()
    ['b']
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._done: LRUCache[K, V] = LRUCache(maxsize=size)
        self._running: dict[K, Future[V]] = {}
        # a caller waiting for another's computation counts as a hit: it computes nothing
        self._hits = 0
        self._misses = 0

    def get(self, key: K, compute: Callable[[], V],
            admit: Callable[[], None] | None = None) -> V:
        """The value of ``key``, computed by ``compute()`` when missing.

        ``admit`` is called before this caller starts a computation (not when the
        value is kept or being computed by another caller); it may raise to refuse.
        """
        with self._lock:
            if key in self._done:
                self._hits += 1
                return self._done[key]
            future = self._running.get(key)
            if future is None:
                if admit is not None:
                    admit()
                future = Future()
                self._running[key] = future
                owner = True
                self._misses += 1
            else:
                owner = False
                self._hits += 1
        if not owner:
            return future.result()
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._running[key]
            self._done[key] = value
        future.set_result(value)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key`` (most recently used)."""
        with self._lock:
            self._done[key] = value

    def peek(self, key: K) -> V | None:
        """The kept value of ``key``, or None."""
        with self._lock:
            return self._done.get(key)

    def keys(self) -> list[K]:
        """The keys kept, in the order they were first kept."""
        with self._lock:
            return list(self._done)

    def keep_only(self, wanted: Callable[[K], bool]) -> None:
        """Drop every kept value whose key is not ``wanted``."""
        with self._lock:
            for key in [k for k in self._done if not wanted(k)]:
                del self._done[key]

    def stats(self) -> CacheStats:
        """Hits, misses (computations started) and values kept."""
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._done))


def _version_of(key: AnalysisKey) -> int:
    version = key[0]
    assert isinstance(version, int)
    return version


@dataclass(frozen=True)
class AnalysisFailure:
    """The newest data could not be analysed; an older analysis is served meanwhile."""

    failed_version: int
    served_version: int
    error: str


class AnalysisCache:
    """The newest dataset read from the database and the last few analyses of it.

    Analyses are kept per :func:`analysis_key` (data version and parameters), at
    most ``size`` of them. A request for a kept analysis never waits for another
    one being computed; two requests for the same missing one compute it once.

    Parameters
    ----------
    size
        Analyses kept, least recently used dropped first.

    Examples
    --------
    >>> AnalysisCache(size=2).size
    2
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        # the dataset of the newest version only: reading it is the expensive part of a change
        self._datasets: SingleFlight[int, tuple[int, Dataset]] = SingleFlight(1)
        self._analyses: SingleFlight[AnalysisKey, tuple[int, Analysis]] = SingleFlight(size)
        # the newest good analysis per (drop, optics), served while newer data cannot be
        # analysed (one bad stored row must not take the service down), and that failure
        self._lock = threading.Lock()
        self._last_good: dict[tuple[object, ...], tuple[int, Analysis]] = {}
        self._failed: dict[AnalysisKey, NetgisError] = {}
        self.failure: AnalysisFailure | None = None
        #: analyses this process computed (not served from the cache or stored results)
        self.computed = 0
        #: called with the seconds of each analysis computed here (api.routers.metrics)
        self.on_analysed: Callable[[float], None] | None = None

    def dataset(self, repo: Repository) -> tuple[int, Dataset]:
        """The repository's dataset (WGS84) and the data version it belongs to."""
        return self._dataset_of(repo, repo.data_version())

    def analysis(self, repo: Repository, drop_m: float, budget: LossBudget | None = None,
                 admit: Callable[[], None] | None = None) -> tuple[int, Analysis]:
        """The analysis of the repository's current data for ``drop_m`` (and ``budget``).

        ``admit`` is called only when this request would start a new analysis.
        """
        version = repo.data_version()
        # a LossBudget holds a dict: its key() is the hashable identity
        optics = budget.key() if budget is not None else ()
        key = analysis_key(version, drop_m, *optics)

        def compute() -> tuple[int, Analysis]:
            from netgis.engine.analysis import analyze

            read_version, dataset = self._dataset_of(repo, version)
            started = time.perf_counter()
            result = analyze(dataset, drop_m=float(drop_m), budget=budget)
            with self._lock:
                self.computed += 1
            if self.on_analysed is not None:
                self.on_analysed(time.perf_counter() - started)
            if read_version != version:
                # written to meanwhile: the result belongs to the newer version as well
                self._analyses.put(analysis_key(read_version, drop_m, *optics),
                                   (read_version, result))
            return read_version, result

        params = (float(drop_m), *optics)
        with self._lock:
            failed = self._failed.get(key)
        try:
            if failed is not None:
                # this version already failed: do not read and validate it again
                raise failed
            result = self._analyses.get(key, compute, admit)
        except StorageError:
            raise  # an outage is a 503, not stale data
        except NetgisError as exc:
            with self._lock:
                self._failed = {k: e for k, e in self._failed.items()
                                if _version_of(k) >= version}
                self._failed[key] = exc
                last = self._last_good.get(params)
                if last is None:
                    raise
                self.failure = AnalysisFailure(failed_version=version, served_version=last[0],
                                               error=str(exc))
            log.error("analysis of data version %s failed; serving version %s: %s", version,
                      last[0], exc)
            return last
        with self._lock:
            kept = self._last_good.get(params)
            if kept is None or kept[0] <= result[0]:
                self._last_good[params] = result
            if self.failure is not None and result[0] >= self.failure.failed_version:
                self.failure = None
        return result

    def kept(self) -> list[AnalysisKey]:
        """The keys of the analyses kept, least recently used first."""
        return self._analyses.keys()

    def stats(self) -> CacheStats:
        """How the analyses were served (computed: misses)."""
        return self._analyses.stats()

    def _dataset_of(self, repo: Repository, version: int) -> tuple[int, Dataset]:
        def read() -> tuple[int, Dataset]:
            read_version, dataset = repo.read_consistent()
            # analyses of older data can never be asked for again through this cache
            self._analyses.keep_only(lambda key: _version_of(key) >= read_version)
            return read_version, dataset

        newest = self._datasets.keys()
        if newest and newest[0] > version:
            # a newer version is already read (a request saw the old one a moment ago)
            kept = self._datasets.peek(newest[0])
            if kept is not None:
                return kept
        return self._datasets.get(version, read)


class PlanCache:
    """Build plans of the gap clusters per (data version, drop_m, link_m, placement, bounds).

    Like :class:`AnalysisCache`: a kept plan is served while another is computed,
    and a missing one is computed once.

    Parameters
    ----------
    size
        Plans kept, least recently used dropped first.
    """

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self.size = size
        self._plans: SingleFlight[PlanKey, BuildPlan] = SingleFlight(size)

    def plan(self, version: int, analysis: Analysis, params: GapParams,
             admit: Callable[[], None] | None = None) -> BuildPlan:
        """The build plan of ``analysis``, the analysis of data version ``version``."""
        from netgis.products.gaps import plan_builds

        key: PlanKey = (int(version), float(analysis.drop_m), params)
        return self._plans.get(key, lambda: plan_builds(
            analysis.premises, analysis.spans, analysis.nodes, drop_m=analysis.drop_m,
            params=params), admit)

    def kept(self) -> list[PlanKey]:
        """The keys of the plans kept, least recently used first."""
        return self._plans.keys()

    def stats(self) -> CacheStats:
        """How the plans were served (computed: misses)."""
        return self._plans.stats()


@dataclass(frozen=True)
class MapPage:
    """A rendered map page, its Content-Security-Policy and its (strong) ETag."""

    body: bytes
    policy: str
    etag: str

    @classmethod
    def of(cls, html: str, policy: str) -> MapPage:
        """The page of ``html``; its ETag is a digest of the bytes served.

        Examples
        --------
        >>> MapPage.of("<p>hi</p>", "default-src 'none'").etag
        '"0a4735281db700223af63abc387c351f"'
        """
        body = html.encode("utf-8")
        return cls(body, policy, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')

    def matches(self, if_none_match: str | None) -> bool:
        """Whether an ``If-None-Match`` header names this page (a 304 then)."""
        return etag_matches(if_none_match, self.etag)


class PageCache:
    """Rendered map pages per data version and normalised parameters, least recently used
    dropped first; a page being rendered is rendered once however many ask for it.

    Parameters
    ----------
    size
        Pages kept.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._pages: SingleFlight[PageKey, MapPage] = SingleFlight(size)

    def page(self, key: PageKey, render: Callable[[], MapPage],
             admit: Callable[[], None] | None = None) -> MapPage:
        """The page of ``key`` (data version first), rendered by ``render()`` when missing.

        Pages of older data versions are dropped when a newer one is rendered. ``admit``
        is called only when this request would render the page (it may refuse).
        """
        version = key[0]
        assert isinstance(version, int)
        kept = self._pages.keys()
        if kept and any(k[0] != version for k in kept):
            self._pages.keep_only(lambda k: isinstance(k[0], int) and k[0] >= version)
        return self._pages.get(key, render, admit)

    def kept(self) -> list[PageKey]:
        """The keys of the pages kept, least recently used first."""
        return self._pages.keys()

    def stats(self) -> CacheStats:
        """How the pages were served (rendered: misses)."""
        return self._pages.stats()


@dataclass(frozen=True)
class TileAnswer:
    """A vector tile as the API answers it: its ETag and its bytes (None: not modified)."""

    etag: str
    body: bytes | None


class TileCache:
    """Encoded vector tiles by (analysis key, layer, z, x, y), at most ``max_bytes`` of them.

    A tile missing from the cache is encoded by the caller; two callers asking for
    the same missing tile at once may both encode it (cheap, and never wrong).

    Examples
    --------
    >>> cache = TileCache(max_bytes=5)
    >>> cache.put(("a",), b"1234"); cache.put(("b",), b"56"); cache.get(("a",)) is None
    True
    """

    def __init__(self, max_bytes: int = TILE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._tiles: LRUCache[Hashable, bytes] = LRUCache(maxsize=max_bytes, getsizeof=len)
        self._hits = 0
        self._misses = 0

    def get(self, key: Hashable) -> bytes | None:
        """The kept tile of ``key`` (marked as used), or None."""
        with self._lock:
            body = self._tiles.get(key)
            if body is None:
                self._misses += 1
            else:
                self._hits += 1
            return body

    def stats(self) -> CacheStats:
        """Tiles found, tiles not found (encoded by the caller) and tiles kept."""
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._tiles))

    @property
    def size_bytes(self) -> int:
        """Bytes of the tiles kept."""
        with self._lock:
            return int(self._tiles.currsize)

    def put(self, key: Hashable, body: bytes) -> None:
        """Keep ``body`` for ``key``, dropping the least recently used tiles beyond the budget
        (a tile larger than the whole budget is not kept)."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            self._tiles[key] = body


def tile_etag(key: AnalysisKey, address: TileAddress, *,
              rows_version: int | None = None) -> str:
    """The strong ETag of a tile: its address and the analysis (data version, parameters).

    ``rows_version``: the data version of the features when it is not the analysis's
    (a tile read while writes landed), so that body never shares an ETag with another.
    """
    parts: tuple[object, ...] = (key, address.layer, address.z, address.x, address.y)
    text = repr(parts if rows_version is None else (*parts, "rows", rows_version))
    return '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (or is ``*``), weak tags included."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


class ResultStore:
    """Stored analysis results (:mod:`netgis.storage.results`) as one API process uses them.

    Finds the stored run of a data version and parameters (remembered once found:
    a run never changes), and stores each analysis the process computes, in one
    background thread, never in a request. Of several processes that compute the
    same analysis, the database keeps the first run stored (unique index).

    Parameters
    ----------
    keep
        Runs kept per parameters (the newest data versions); older ones are pruned.
    """

    #: Runs remembered per process.
    REMEMBER = 16
    #: Least seconds between two updates of the live analysis's stored run.
    FOLLOW_INTERVAL_S = 5.0

    def __init__(self, keep: int = 1) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._runs: LRUCache[tuple[int, str], StoredRun] = LRUCache(maxsize=self.REMEMBER)
        self._handled: set[tuple[int, str]] = set()
        self._pending: list[Future[int | None]] = []
        self._executor: ThreadPoolExecutor | None = None
        #: runs this process stored whole, and runs it brought to a newer version by rows
        self.stored = 0
        self.updated = 0
        # the live analysis's run: (run id, data version, its result frames), and the
        # newest state waiting to be written
        self._base: tuple[int, int, dict[str, Any]] | None = None
        self._latest: tuple[Repository, int, Analysis] | None = None
        self._following = False
        self._closing = threading.Event()

    def run(self, repo: Repository, version: int, key: str) -> StoredRun | None:
        """The stored run of data version ``version`` and parameters ``key``, or None."""
        from netgis.storage.results import find_run

        with self._lock:
            hit = self._runs.get((version, key))
        if hit is not None:
            return hit
        run = find_run(repo.engine, version, key)
        if run is not None:
            with self._lock:
                self._runs[(version, key)] = run
        return run

    def schedule(self, repo: Repository, version: int, analysis: Analysis) -> None:
        """Store ``analysis`` of data version ``version`` in the background (once)."""
        from netgis.storage.results import params_key

        handle = (int(version), params_key(analysis.drop_m, analysis.budget))
        with self._lock:
            if handle in self._handled or handle in self._runs:
                return
            if len(self._handled) > 4 * self.REMEMBER:
                newest = max(v for v, _ in self._handled)
                self._handled = {h for h in self._handled if h[0] >= newest}
            self._handled.add(handle)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1,
                                                    thread_name_prefix="netgis-store")
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._executor.submit(self._store, repo, handle, analysis))

    def _store(self, repo: Repository, handle: tuple[int, str],
               analysis: Analysis) -> int | None:
        from netgis.storage.results import store_analysis

        try:
            run_id = store_analysis(repo.engine, analysis, data_version=handle[0],
                                    keep=self.keep)
        except Exception as exc:  # a background job: log it, let a later request retry
            log.warning("analysis of data version %s not stored: %s", handle[0], exc)
            with self._lock:
                self._handled.discard(handle)
            return None
        if run_id is not None:
            with self._lock:
                self.stored += 1
            log.info("stored the analysis of data version %s as run %s", handle[0], run_id)
        return run_id

    def follow(self, repo: Repository, version: int, analysis: Analysis) -> None:
        """Keep the stored run of the live analysis current (in the background): the first
        time stored whole, then brought to each newer version by the rows that changed
        (:func:`netgis.storage.results.update_run`). Versions that arrive while one is
        being written are skipped for the newest."""
        with self._lock:
            self._latest = (repo, int(version), analysis)
            if self._following:
                return
            self._following = True
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1,
                                                    thread_name_prefix="netgis-store")
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._executor.submit(self._follow_loop))

    def _follow_loop(self) -> int | None:
        while True:
            with self._lock:
                job, self._latest = self._latest, None
                if job is None:
                    self._following = False
                    return None
            self._follow_one(*job)
            # edits coming in a stream are written together: the diff of a million rows
            # costs CPU the live analysis needs
            self._closing.wait(self.FOLLOW_INTERVAL_S)

    def _follow_one(self, repo: Repository, version: int, analysis: Analysis) -> None:
        from netgis.storage.results import (
            find_run,
            params_key,
            result_frames,
            store_analysis,
            update_run,
        )

        base = self._base
        try:
            if base is not None and base[1] == version:
                return
            if base is not None and base[1] < version:
                frames = update_run(repo.engine, base[0], analysis, from_version=base[1],
                                    data_version=version, before=base[2])
                if frames is not None:
                    self._base = (base[0], version, frames)
                    with self._lock:
                        self.updated += 1
                    return
            found = find_run(repo.engine, version, params_key(analysis.drop_m, analysis.budget))
            run_id = found.run_id if found is not None else store_analysis(
                repo.engine, analysis, data_version=version, keep=self.keep)
            if run_id is None:  # stored meanwhile by another process
                found = find_run(repo.engine, version,
                                 params_key(analysis.drop_m, analysis.budget))
                run_id = found.run_id if found is not None else None
            elif found is None:
                with self._lock:
                    self.stored += 1
            self._base = None if run_id is None else (run_id, version, result_frames(analysis))
        except Exception as exc:  # a background job: log it; the next version tries again
            log.warning("results of data version %s not stored: %s", version, exc)
            self._base = None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the analyses scheduled so far are stored (or failed)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.exception(timeout=timeout)

    def close(self) -> None:
        """Finish the stores under way and stop the background thread."""
        self._closing.set()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._closing.clear()


class Services:
    """The repository of one application and everything the API keeps about its data.

    Parameters
    ----------
    settings
        The application's settings: database URL, default drop length, cache size,
        rate of new analyses per anonymous client.

    Notes
    -----
    The database is opened by :meth:`opened` (when the application starts), not
    when the object is made. A database that cannot be reached then does not stop
    the application: every request needing it answers 503 (a
    :class:`~netgis.errors.StorageError`) and tries to reach it again, at most once
    per :data:`RECONNECT_INTERVAL_S`, until it is back.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.analyses = AnalysisCache(settings.analysis_cache_size)
        self.plans = PlanCache()
        self.pages = PageCache(settings.map_cache_size)
        self.results = ResultStore(settings.results_keep)
        # the address index of the default analysis of the newest data version
        self.searches: SingleFlight[int, PremiseSearch] = SingleFlight(1)
        self.limiter = RateLimiter(settings.analysis_rate_per_minute, settings.analysis_burst)
        self.tiles = TileCache()
        self._tile_attributes: SingleFlight[tuple[AnalysisKey, str], TileAttributes | None] = (
            SingleFlight(4 * max(1, settings.analysis_cache_size)))
        self._extents: SingleFlight[int, dict[str, LayerExtent]] = SingleFlight(1)
        #: the street and area of the plant per data version (products/names.py)
        self._names: SingleFlight[int, PlaceNames] = SingleFlight(2)
        #: the streets and areas indexed per data version, to name the features of a tile
        self._place_index: SingleFlight[int, PlaceIndex] = SingleFlight(2)
        # the newest tile attributes per layer, whose id index a new state may reuse
        self._tile_reuse: dict[str, TileAttributes] = {}
        #: the server's default analysis, kept current edit by edit (api/live.py)
        self.live = LiveState(lambda: self.repo, drop_m=float(settings.drop_m),
                              budget=settings.loss_budget(), poll_s=settings.live_poll_s,
                              on_published=self._after_publish,
                              before_publish=self._snapshot_if_due)
        #: the tokens of threads that only wait for the live analysis to reflect a data
        #: version (made by the app's start, in its event loop; None: the request threads')
        self.waiters: anyio.CapacityLimiter | None = None
        self._search_kept: tuple[int, Analysis, PremiseSearch] | None = None
        self._search_lock = threading.Lock()
        #: the first search index is being made (in a thread of its own)
        self._search_warming = threading.Event()
        #: the strand plant per data version and its traces (api/strand_states.py)
        self.strand_states = StrandStates(self, SingleFlight(1), SingleFlight(STATES_KEPT))
        #: the analysis result collections of the live analysis (api/result_features.py)
        #: and bead_classes when the FCC files are set (read now: a bad file stops the start)
        self.result_states = ResultStates(self, SingleFlight(len(RESULT_COLLECTIONS) + 1),
                                          BeadInputs.of_settings(settings))
        self._last_snapshot = -float("inf")
        self._repo: Repository | None = None
        self._ready = False
        self._connect_lock = threading.Lock()
        self._last_attempt = -float("inf")

    # ---------------------------------------------------------------- lifecycle

    @contextmanager
    def opened(self) -> Iterator[Repository]:
        """Connect to the settings' database (schema brought up to date) for one run of the app.

        Runs may overlap, as a test client and a live server of one app do:
        the newest repository serves, and each run closes the connections of
        the repository it opened. The caches outlive a run: they are versioned.
        """
        from netgis.storage import Repository

        # create=False: a SpatiaLite file that goes missing while serving is an outage,
        # never silently replaced by a new empty database; the app creates it at start
        # when allowed (api.app), and the first request brings the schema up to date
        repo = Repository.from_url(self.settings.database_url, create=False)
        self._repo = repo
        self._ready = False
        self._last_attempt = -float("inf")
        repo.after_write = self._reflect
        try:
            yield repo
        finally:
            repo.after_write = None
            self.live.stop()
            self.results.close()
            repo.close()

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until the live analysis of the current data is published and what follows
        it (search index, KPI snapshot, stored results) is done: for tools and tests that
        judge the database by what requests change."""
        self.live.current(wait_s=timeout)
        self.live.wait_settled(timeout)
        self.results.wait(timeout)

    def _reflect(self, version: int) -> None:
        """After a write of this process: wait (in the writer's thread, at most
        ``write_visible_timeout_s``) until the live analysis reflects it."""
        timeout = self.settings.write_visible_timeout_s
        if timeout <= 0:
            self.live.wake()
            return
        try:
            self.live.wait_for(version, timeout)
        except NetgisError as exc:
            # the write stands; its analysis failed, and /health says so
            log.warning("data version %s written but not analysed: %s", version, exc)

    def _connect(self) -> None:
        """Bring the schema up to date (once per run); a StorageError while it cannot."""
        with self._connect_lock:
            if self._ready:
                return
            now = time.monotonic()
            if now - self._last_attempt < RECONNECT_INTERVAL_S:
                # many requests during an outage must not each wait for a connection attempt
                raise StorageError("the database was not reachable a moment ago")
            self._last_attempt = now
            assert self._repo is not None
            self._repo.init()
            self._ready = True
            log.info("connected to the database")

    @property
    def repo(self) -> Repository:
        """The open repository (a StorageError, answered 503, while it cannot be reached)."""
        if self._repo is None:
            raise RuntimeError("the services are not open: the application has not started")
        if not self._ready:
            self._connect()
        return self._repo

    # ------------------------------------------------------------------- reads

    def drop_m(self, drop_m: float | None) -> float:
        """``drop_m`` as a float, or the server's default when None."""
        return float(drop_m if drop_m is not None else self.settings.drop_m)

    def budget(self, budget: LossBudget | None = None) -> LossBudget:
        """``budget``, or the server's optical parameters (settings) when None."""
        return budget if budget is not None else self.settings.loss_budget()

    def data_version(self) -> int:
        """The database's data version (one query, no analysis)."""
        return self.repo.data_version()

    def extents(self, years: Mapping[str, str]) -> dict[str, LayerExtent]:
        """Every layer's extent (bbox, and year range of the ``years`` fields), computed once
        per data version by the database's extent aggregate."""
        repo = self.repo

        def read() -> dict[str, LayerExtent]:
            read_version, found = repo.extents(years=years)
            if read_version != version:
                # a write came in between: what was read belongs to the newer version
                self._extents.put(read_version, found)
            return found

        version = repo.data_version()
        return self._extents.get(version, read)

    def dataset(self) -> tuple[int, Dataset]:
        """The current dataset (WGS84) and its data version, read consistently."""
        return self.analyses.dataset(self.repo)

    def analysis(self, drop_m: float | None = None,
                 budget: LossBudget | None = None) -> tuple[int, Analysis]:
        """The data version and the analysis of the current data, cached per version, drop
        length and optical parameters (``budget``; the server's settings when None).

        A request that would start a new analysis at other than the server's defaults
        counts against its client's rate (429 when used up).
        """
        drop, optics = self.drop_m(drop_m), self.budget(budget)
        version, result = self._analysis(drop, optics)
        if self.settings.stored_results and not self.is_default(drop, optics):
            self.results.schedule(self.repo, version, result)
        return version, result

    def live_default(self, drop_m: float | None = None,
                     budget: LossBudget | None = None) -> Published | None:
        """The live analysis when it answers a read at these parameters at once: the
        server's defaults, once its first state is published (the version is noted for the
        answer). None otherwise: the caller takes :meth:`analysis`, which may wait."""
        if not self.is_default(self.drop_m(drop_m), self.budget(budget)):
            return None
        published = self.live.published
        if published is not None:
            note_version(published.version)
        return published

    def is_default(self, drop: float, optics: LossBudget) -> bool:
        """Whether these are the server's analysis parameters (the live analysis's)."""
        # however asked for: a budget equal to the settings' one is the default
        return (float(drop) == float(self.settings.drop_m)
                and optics.key() == self.settings.loss_budget().key())

    def _analysis(self, drop: float, optics: LossBudget) -> tuple[int, Analysis]:
        """The analysis at these parameters: the live one at the server's defaults (never
        waited on), else one per data version, a new one charged to the client
        (:meth:`admit`)."""
        if self.is_default(drop, optics):
            published = self.live.current()
            note_version(published.version)
            return published.version, published.analysis
        version, result = self.analyses.analysis(self.repo, drop, optics, admit=self.admit)
        note_version(version)
        return version, result

    def wait_for_version(self, version: int) -> None:
        """Wait until the live analysis reflects data version ``version`` (``min_version``).

        Raises
        ------
        ParameterError
            ``version`` is newer than the database's data version.
        StorageError
            Not reflected within ``min_version_timeout_s`` (503, try again).
        """
        current = self.repo.data_version()
        if version > current:
            raise ParameterError([Problem("query", None, "min_version",
                                          f"data version {version} does not exist yet (the "
                                          f"database is at {current})")],
                                 f"min_version {version} is newer than the data ({current})")
        if self.live.wait_for(version, self.settings.min_version_timeout_s) is None:
            raise StorageError(f"data version {version} is not reflected yet; try again")

    def served_version(self, drop_m: float | None = None) -> int:
        """The data version answers at ``drop_m`` (and the server's optics) reflect now."""
        drop = self.drop_m(drop_m)
        if self.is_default(drop, self.budget()):
            return self.live.current().version
        return self.data_version()

    def stored(self, drop_m: float | None = None,
               budget: LossBudget | None = None) -> StoredRun | None:
        """The stored results of the current data at these parameters, or None.

        None as well when stored results are turned off (``NETGIS_STORED_RESULTS``);
        callers then use :meth:`analysis`.
        """
        if not self.settings.stored_results:
            return None
        if self.is_default(self.drop_m(drop_m), self.budget(budget)):
            # the live analysis is current and in memory: nothing to look up
            return None
        from netgis.storage.results import params_key

        key = params_key(self.drop_m(drop_m), self.budget(budget))
        with _storage_errors():
            return self.results.run(self.repo, self.data_version(), key)

    def stored_premise(self, run: StoredRun, premise_id: str) -> tuple[
            gpd.GeoDataFrame, dict[str, Any] | None] | None:
        """A premise and its loss breakdown from ``run`` (None: the data changed since)."""
        from netgis.storage.results import ResultReader

        with _storage_errors():
            return ResultReader(self.repo.engine).premise(run, premise_id)

    def stored_serviceability(self, run: StoredRun, lon: float,
                              lat: float) -> dict[str, Any] | None:
        """A serviceability lookup from ``run`` (None: the data changed since)."""
        from netgis.storage.results import ResultReader

        with _storage_errors():
            return ResultReader(self.repo.engine).serviceability(run, lon, lat)

    def gap_params(self, link_m: float | None = None, placement: str | None = None,
                   max_units: float | None = None,
                   max_extent_m: float | None = None) -> GapParams:
        """The gap parameters of a request: those given (None: not given), the others the
        defaults, the cluster bounds the server's (settings)."""
        from netgis.products.gaps import GapParams

        default = GapParams()
        return GapParams(
            link_m=default.link_m if link_m is None else link_m,
            placement=default.placement if placement is None else placement,
            max_units=float(self.settings.gap_max_units if max_units is None else max_units),
            max_extent_m=float(self.settings.gap_max_extent_m if max_extent_m is None
                               else max_extent_m))

    def plan(self, version: int, analysis: Analysis,
             params: GapParams | None = None) -> BuildPlan:
        """The build plan of ``analysis``, as :meth:`analysis` returned it with ``version``,
        at ``params`` (None: :meth:`gap_params`, the server's)."""
        server = self.gap_params()
        params = params or server
        default = float(analysis.drop_m) == float(self.settings.drop_m) and params == server
        return self.plans.plan(version, analysis, params, admit=None if default else self.admit)

    def names(self, version: int, dataset: Dataset) -> PlaceNames:
        """The street and area of every span and node of data version ``version`` (whose
        dataset is ``dataset``; its streets, when it has none, those the database keeps),
        found once per data version, to name spans and builds on the dashboard, the report
        and the maps."""
        from netgis.products.names import place_names

        return self._names.get(version, lambda: place_names(self._with_streets(dataset)))

    def _with_streets(self, dataset: Dataset) -> Dataset:
        """``dataset`` with its streets, or when it has none those the database keeps."""
        if dataset.streets is not None:
            return dataset
        return replace(dataset, streets=self.repo.read_streets())

    def place_index(self, version: int, dataset: Dataset) -> PlaceIndex:
        """The streets and areas of data version ``version`` indexed to name features (that
        of :meth:`names` when it is found already), once per data version."""
        named = self._names.peek(version)
        if named is not None:
            return named.index

        return self._place_index.get(version, lambda: self.new_place_index(dataset))

    def new_place_index(self, dataset: Dataset) -> PlaceIndex:
        """``dataset``'s streets (when it has none, those the database keeps) and areas
        indexed to name features (a design plan's, which have no data version)."""
        from netgis.products.names import PlaceIndex

        return PlaceIndex.of(self._with_streets(dataset))

    def tile_places(self, version: int, dataset: Dataset
                    ) -> Callable[[np.ndarray], np.ndarray]:
        """What names the spans and nodes of a tile of data version ``version``: each WGS84
        geometry's "street, area" (None where neither is known), by the rules and the index
        that name them on the dashboard and in the map pages (docs/spec.md §2.12)."""
        return places_of(self.place_index(version, dataset))

    def map_page(self, key: PageKey, render: Callable[[], MapPage],
                 shared: bool = False) -> MapPage:
        """A map page, cached per data version (``key[0]``) and normalised parameters.

        Rendering a page costs the client a token (:meth:`admit`) unless it is ``shared``:
        a page at the server's defaults, which every client asks for alike.
        """
        return self.pages.page(key, render, admit=None if shared else self.admit)

    def search(self) -> tuple[int, Analysis, PremiseSearch]:
        """The address index of the current data, built once per data version.

        It indexes the analysis at the server's defaults (which is never rate-limited),
        so every hit carries that analysis's serviceability.
        """
        published = self.live.current()
        kept = self._search_kept
        if kept is None or kept[0] < published.version:
            kept = self._search_of(published, wait=kept is None)
        note_version(kept[0])
        return kept

    def _search_of(self, published: Published, *, wait: bool = True
                   ) -> tuple[int, Analysis, PremiseSearch]:
        """The search index of a published analysis: the address index of the one before
        when no premise's id, address or location id changed (only the values shown).

        ``wait=False``: while another request builds one, answer from the one kept (it
        says which data version it reflects) instead of waiting.
        """
        from netgis.products.search import premise_search, same_keys

        if not self._search_lock.acquire(blocking=wait):
            kept = self._search_kept
            if kept is not None:
                return kept
            self._search_lock.acquire()
        try:
            kept = self._search_kept
            if kept is not None and kept[0] >= published.version:
                return kept
            premises = published.analysis.premises
            if kept is not None and same_keys(kept[2].premises, premises):
                search = premise_search(premises, index=kept[2].index)
            else:
                search = premise_search(premises)
            self._search_kept = (published.version, published.analysis, search)
            return self._search_kept
        finally:
            self._search_lock.release()

    def admit(self) -> None:
        """Called before a request starts new work (an analysis, a build plan, a page, a
        report or a scenario not kept): an anonymous client spends a token, or gets a 429.

        The callers spare what every client shares: the analysis, plan and pages at the
        server's defaults are made at most once per data version. Keyed clients and
        work outside a request (snapshots after a write) are never limited.
        """
        client = current_client()
        if client is None or client.keyed:
            return
        self.limiter.admit(client.address)

    # ------------------------------------------------------------ KPI snapshots

    def kpis(self, drop_m: float | None = None) -> tuple[int, Analysis]:
        """The analysis whose KPIs the feeds serve; stores a snapshot when the data changed.

        Snapshots are taken at the server's drop length only, so a feed asked
        for another drop length stores nothing.
        """
        return self.analysis(self.drop_m(drop_m))

    def kpi_feed(self, drop_m: float | None = None) -> tuple[int, Mapping[str, Any]]:
        """The data version and KPIs (``kpis.json`` shape) the feeds serve.

        From the stored results when the current data has them, else from the
        analysis (:meth:`kpis`); stores a snapshot when the data changed. When the data
        has strand layers, ``network`` also holds the capacity KPIs of the same data
        version (docs/strands.md); without them the KPIs are exactly the analysis's.
        """
        drop = self.drop_m(drop_m)

        def route() -> tuple[int, Mapping[str, Any]]:
            run = self.stored(drop)
            if run is None:
                version, result = self.kpis(drop)
                return version, result.kpis
            note_version(run.data_version)
            return run.data_version, run.kpis

        version, kpis, capacity = self.strand_states.aligned(route, drop)
        return version, with_capacity(kpis, capacity)

    def capacity_kpis(self, answer: Callable[[], tuple[int, Any]],
                      drop_m: float | None = None
                      ) -> tuple[int, Any, dict[str, float | int] | None]:
        """``answer()`` (its data version first, made from the analysis at ``drop_m``) and
        the capacity KPIs of the same data version (None without strand layers)."""
        return self.strand_states.aligned(answer, self.drop_m(drop_m))

    # ------------------------------------------------------------ strand plant

    def strands(self, options: TraceOptions | None = None) -> tuple[int, StrandState]:
        """The data version and the strand plant of the current data traced at ``options``
        (None: the server's loss parameters): plant, plain trace, best paths and capacity,
        each computed once per data version and parameters. A 409 when the database holds
        no strand layers."""
        state = self.strand_states.state(options)
        note_version(state.version)
        return state.version, state

    def ensure_snapshot(self) -> int | None:
        """Store a KPI snapshot of the data the live analysis reflects, unless that data
        version has one (the new snapshot's id, or None)."""
        return self._snapshot(self.live.current())

    def _snapshot(self, published: Published) -> int | None:
        # version 0: nothing was ever loaded, there is no network to measure
        if published.version == 0:
            return None
        repo = self.repo
        if repo.has_kpi_snapshot(published.version):
            return None
        snapshot_id = repo.save_kpi_snapshot(
            {**published.analysis.kpis, "drop_m": float(self.settings.drop_m)},
            data_version=published.version)
        self._last_snapshot = time.monotonic()
        return snapshot_id

    def _snapshot_if_due(self, published: Published) -> None:
        """In the live analysis's thread, before readers see a new state: a KPI snapshot when
        one is due (a bulk load or import, or ``kpi_snapshot_interval_s`` since the last)."""
        if published.path != "none":
            due = published.bulk or (time.monotonic() - self._last_snapshot
                                     >= self.settings.kpi_snapshot_interval_s)
            if due:
                self._snapshot(published)

    def _after_publish(self, published: Published) -> None:
        """In the live analysis's thread, once readers see a new state: its stored results
        brought up to date in the background (``NETGIS_STORED_RESULTS``; PostGIS only).
        The first state's search index is made ready in a thread started here; later
        ones on demand (from the one before, without indexing the addresses again)."""
        if self._search_kept is None and published.path != "none" \
                and not self._search_warming.is_set():
            # in a thread of its own: indexing a million addresses takes seconds, which
            # the live analysis would otherwise spend before it looks at the next edit
            self._search_warming.set()
            threading.Thread(target=self._search_of, args=(published,),
                             name="netgis-search-index", daemon=True).start()
        repo = self.repo
        # SpatiaLite has one writer: a store of a million rows would hold every edit back
        # for its whole transaction, so there the live analysis is not stored (docs/scale.md)
        if (self.settings.stored_results and published.path != "none" and published.version
                and repo.engine.dialect.name == "postgresql"):
            self.results.follow(repo, published.version, published.analysis)

    # ------------------------------------------------------------------ vector tiles

    def analysis_for_tiles(self, drop_m: float | None = None, budget: LossBudget | None = None
                           ) -> tuple[AnalysisKey, Analysis]:
        """The analysis tiles are made of and its key (data version and parameters).

        A tile at new parameters starts that analysis: it is charged like any other
        request that does (:meth:`admit`); tiles of a kept analysis never are.
        """
        drop = self.drop_m(drop_m)
        optics = self.budget(budget)
        version, result = self._analysis(drop, optics)
        return analysis_key(version, drop, *optics.key()), result

    def tile_attributes(self, key: AnalysisKey, result: Analysis, layer: str
                        ) -> TileAttributes | None:
        """The analysis columns vector tiles of ``layer`` carry, indexed by the layer's id,
        from ``result`` (the analysis of ``key``: data version and parameters, as
        :meth:`analysis_for_tiles` gives them); None for a layer without analysis columns.

        The one place tiles get analysis values from: today the cached in-memory
        analysis (computed once per data version and parameters); stored result
        tables can take its place here.
        """
        from netgis.products.tiles import tile_attributes

        def make() -> TileAttributes | None:
            before = self._tile_reuse.get(layer)
            made = tile_attributes(result, layer, reuse=before)
            if made is not None:
                self._tile_reuse[layer] = made
            return made

        return self._tile_attributes.get((key, layer), make)

    def tile(self, address: TileAddress, drop_m: float | None = None,
             budget: LossBudget | None = None, if_none_match: str | None = None) -> TileAnswer:
        """The vector tile ``address`` of the current data, cached per data version and
        analysis parameters; no body when ``if_none_match`` names its ETag."""
        from netgis.products.tiles import PLACE_LAYERS

        for _ in range(TILE_READ_ATTEMPTS):
            key, result = self.analysis_for_tiles(drop_m, budget)
            attributes = self.tile_attributes(key, result, address.layer)
            etag = tile_etag(key, address)
            if etag_matches(if_none_match, etag):
                return TileAnswer(etag, None)
            cache_key = (key, address)
            body = self.tiles.get(cache_key)
            if body is not None:
                return TileAnswer(etag, body)
            places = self.tile_places(_version_of(key), result.dataset) \
                if address.layer in PLACE_LAYERS else None
            version, body = self.repo.versioned_vector_tile(address, attributes, places)
            if version == _version_of(key):
                self.tiles.put(cache_key, body)
                return TileAnswer(etag, body)
            # a write landed between the analysis and the rows: the analysis of the new
            # version is what the next attempt joins them with
        # the data kept changing: rows and analysis values of different versions, sent
        # once under an ETag of its own and never kept
        return TileAnswer(tile_etag(key, address, rows_version=version), body)


def places_of(index: PlaceIndex) -> Callable[[np.ndarray], np.ndarray]:
    """Each WGS84 geometry's "street, area" by ``index`` (None where neither is known)."""
    from netgis.geodesy import WGS84, transform_geoms
    from netgis.products.names import places_text

    def places(geoms: np.ndarray) -> np.ndarray:
        own = geoms if index.crs is None or index.crs == WGS84 else \
            np.asarray(transform_geoms(geoms, WGS84, index.crs))
        return np.asarray(places_text(index.places(own)), dtype=object)

    return places


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Database errors of the stored-results queries as the repository reports them."""
    from netgis.storage.repository import _storage_errors as storage_errors

    with storage_errors():
        yield
