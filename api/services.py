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

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.settings import Settings
    from netgis.analysis import Analysis
    from netgis.dataset import Dataset
    from netgis.gaps import BuildPlan
    from netgis.optics import LossBudget
    from netgis.storage import Repository

#: Build plans kept per application.
PLAN_CACHE_SIZE = 4
#: Key of a cached build plan: data version, drop_m, link_m, placement.
PlanKey = tuple[int, float, float, str]


class AnalysisCache:
    """The newest dataset read from the database and the last few analyses of it.

    Parameters
    ----------
    size
        Analyses kept (one per drop length), least recently used dropped first.

    Examples
    --------
    >>> AnalysisCache(size=2).size
    2
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        # one lock: two requests asking for the same missing result compute it once
        self._lock = threading.Lock()
        self._dataset: tuple[int, Dataset] | None = None
        self._analyses: OrderedDict[tuple[object, ...], Analysis] = OrderedDict()

    def dataset(self, repo: Repository) -> tuple[int, Dataset]:
        """The repository's dataset (WGS84) and the data version it belongs to."""
        with self._lock:
            return self._dataset_locked(repo)

    def analysis(self, repo: Repository, drop_m: float,
                 budget: LossBudget | None = None) -> tuple[int, Analysis]:
        """The analysis of the repository's current data for ``drop_m`` and ``budget``."""
        from netgis.analysis import analyze
        from netgis.optics import LossBudget

        budget = budget or LossBudget()
        with self._lock:
            version, dataset = self._dataset_locked(repo)
            key = (version, float(drop_m), *budget.key())
            hit = self._analyses.get(key)
            if hit is None:
                hit = analyze(dataset, drop_m=float(drop_m), budget=budget)
                self._analyses[key] = hit
                while len(self._analyses) > self.size:
                    self._analyses.popitem(last=False)
            else:
                self._analyses.move_to_end(key)
            return version, hit

    def _dataset_locked(self, repo: Repository) -> tuple[int, Dataset]:
        version = repo.data_version()
        if self._dataset is not None and self._dataset[0] == version:
            return self._dataset
        self._dataset = repo.read_consistent()
        version = self._dataset[0]
        # analyses of older data can never be asked for again through this cache
        self._analyses = OrderedDict(
            (k, v) for k, v in self._analyses.items() if k[0] == version
        )
        return self._dataset


class PlanCache:
    """Build plans of the gap clusters per (data version, drop_m, link_m, placement).

    Parameters
    ----------
    size
        Plans kept, least recently used dropped first.
    """

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self.size = size
        # held while a plan is computed: two requests for the same missing plan compute it once
        self._lock = threading.Lock()
        self._plans: OrderedDict[PlanKey, BuildPlan] = OrderedDict()

    def plan(self, version: int, analysis: Analysis, link_m: float,
             placement: str) -> BuildPlan:
        """The build plan of ``analysis``, the analysis of data version ``version``."""
        from netgis.gaps import plan_builds

        key: PlanKey = (int(version), float(analysis.drop_m), float(link_m), placement)
        with self._lock:
            hit = self._plans.get(key)
            if hit is not None:
                self._plans.move_to_end(key)
                return hit
            plan = plan_builds(analysis.premises, analysis.spans, analysis.nodes,
                               drop_m=analysis.drop_m, link_m=link_m, placement=placement)
            self._plans[key] = plan
            while len(self._plans) > self.size:
                self._plans.popitem(last=False)
            return plan

    def kept(self) -> list[PlanKey]:
        """The keys of the plans kept, least recently used first."""
        with self._lock:
            return list(self._plans)


class SnapshotKeeper:
    """Stores one KPI snapshot per data version (at the server's drop length).

    The data versions known to have a snapshot are remembered, so the common
    case costs no query; the database is asked once per new version, so
    several processes rarely store the same version twice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored: set[int] = set()

    def ensure(self, repo: Repository, analyses: AnalysisCache, drop_m: float,
               budget: LossBudget | None = None) -> int | None:
        """Store a snapshot of the current data unless one exists; returns the new id or None."""
        with self._lock:
            version = repo.data_version()
            # version 0: nothing was ever loaded, there is no network to measure
            if version == 0 or version in self._stored:
                return None
            if repo.has_kpi_snapshot(version):
                self._stored.add(version)
                return None
            version, result = analyses.analysis(repo, drop_m, budget)
            if version in self._stored or repo.has_kpi_snapshot(version):
                self._stored.add(version)
                return None
            snapshot_id = repo.save_kpi_snapshot({**result.kpis, "drop_m": drop_m},
                                                 data_version=version)
            self._stored.add(version)
            return snapshot_id


class Services:
    """The repository of one application and everything the API keeps about its data.

    Parameters
    ----------
    settings
        The application's settings: database URL, default drop length, cache size.

    Notes
    -----
    The database is opened by :meth:`opened` (when the application starts), not
    when the object is made.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.analyses = AnalysisCache(settings.analysis_cache_size)
        self.plans = PlanCache()
        self.snapshots = SnapshotKeeper()
        self._repo: Repository | None = None

    # ---------------------------------------------------------------- lifecycle

    @contextmanager
    def opened(self) -> Iterator[Repository]:
        """Connect to the settings' database for one run of the app.

        Runs may overlap, as a test client and a live server of one app do:
        the newest repository serves, and each run closes the connections of
        the repository it opened. The caches outlive a run: they are versioned.
        """
        from netgis.storage import Repository

        # create=False: a SpatiaLite file that goes missing while serving is an outage,
        # never silently replaced by a new empty database; the app prepares the schema
        repo = Repository.from_url(self.settings.database_url, create=False)
        self._repo = repo
        try:
            yield repo
        finally:
            repo.close()

    @property
    def repo(self) -> Repository:
        """The open repository."""
        if self._repo is None:
            raise RuntimeError("the services are not open: the application has not started")
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

    def dataset(self) -> tuple[int, Dataset]:
        """The current dataset (WGS84) and its data version, read consistently."""
        return self.analyses.dataset(self.repo)

    def analysis(self, drop_m: float | None = None,
                 budget: LossBudget | None = None) -> tuple[int, Analysis]:
        """The data version and the analysis of the current data (cached per version,
        drop length and optical parameters)."""
        return self.analyses.analysis(self.repo, self.drop_m(drop_m), self.budget(budget))

    def plan(self, version: int, analysis: Analysis, link_m: float,
             placement: str) -> BuildPlan:
        """The build plan of ``analysis``, as :meth:`analysis` returned it with ``version``."""
        return self.plans.plan(version, analysis, link_m, placement)

    # ------------------------------------------------------------ KPI snapshots

    def kpis(self, drop_m: float | None = None) -> tuple[int, Analysis]:
        """The analysis whose KPIs the feeds serve; stores a snapshot when the data changed.

        Snapshots are taken at the server's drop length only, so a feed asked
        for another drop length stores nothing.
        """
        drop = self.drop_m(drop_m)
        version, result = self.analysis(drop)
        if drop == float(self.settings.drop_m):
            self.ensure_snapshot()
        return version, result

    def ensure_snapshot(self) -> int | None:
        """Store a KPI snapshot of the current data unless one exists (its id, or None)."""
        return self.snapshots.ensure(self.repo, self.analyses, float(self.settings.drop_m),
                                     self.budget())
