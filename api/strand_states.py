"""The strand-level plant of the current data in an API process (docs/strands.md).

What the strand routes answer from, kept per data version like the analyses of
:mod:`api.services`:

- :class:`StrandBase`: one data version's dataset with its strand layers (one consistent
  read, ``Repository.read_consistent_plant``) and the indexed plant
  (:func:`netgis.strand_plant.strand_plant`); the plant is None when the database holds
  no strand row. Only the newest version is kept.
- :class:`StrandState`: a base traced at one set of loss parameters
  (:class:`netgis.engine.strands.trace.TraceOptions`): the plain trace, each path's loss,
  the best path of every drop and premise, the paths as ``trace_paths.csv`` rows and the
  capacity per drop length, each computed once, when first asked for.
- :class:`StrandStates`: both caches, and the capacity KPIs lined up with the data
  version of an answer made from the live analysis (``/kpis``, ``/metrics``, the
  dashboard).

Nothing here is kept by object identity: every key starts with the data version.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from netgis.errors import ConflictError, NetgisError, Problem, StorageUnavailable
from netgis.schema import DEFAULT_CONNECTOR_DB, STRAND_LAYER_NAMES

if TYPE_CHECKING:
    from netgis.api.services import Services, SingleFlight
    from netgis.dataset import Dataset
    from netgis.engine.optics import LossBudget
    from netgis.engine.strands.capacity import Capacity
    from netgis.engine.strands.trace import Best, Trace, TraceOptions
    from netgis.strand_plant import StrandPlant

T = TypeVar("T")
log = logging.getLogger("netgis.api.strands")
#: Traces (data version and loss parameters) kept per API process.
STATES_KEPT = 4
#: Tries at lining the capacity KPIs up with an answer of the live analysis while writes
#: land (each waits until the live analysis reflects the newest data).
ALIGN_ATTEMPTS = 5
#: Seconds a try waits for the live analysis to reflect the newest data.
ALIGN_WAIT_S = 30.0


def no_strand_layers() -> ConflictError:
    """The answer of a strand route on a database without strand layers: a 409 saying so."""
    return ConflictError([Problem(
        "layers", None, None,
        "the database holds no strand layers (" + ", ".join(STRAND_LAYER_NAMES) + "): load "
        "them with the dataset (netgis db load) or write them to their collections "
        "(/collections/cables/items, ...); see docs/strands.md")])


def options_key(options: TraceOptions) -> tuple[Hashable, ...]:
    """A hashable identity of trace options (for the caches)."""
    return (*options.budget.key(), float(options.connector_db), bool(options.include_planned))


@dataclass
class StrandBase:
    """One data version: the dataset with its strand layers, and the indexed plant."""

    version: int
    dataset: Dataset
    #: None when the database holds no strand row
    plant: StrandPlant | None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _span_rows: dict[str, int] | None = field(default=None, repr=False)
    _span_geoms: np.ndarray | None = field(default=None, repr=False)

    def require_plant(self) -> StrandPlant:
        """The plant; a 409 (:func:`no_strand_layers`) when there is none."""
        if self.plant is None:
            raise no_strand_layers()
        return self.plant

    def span_coords(self, span_id: str) -> np.ndarray:
        """The WGS84 coordinates (lon, lat) of a span's line, as stored (n x 2)."""
        import shapely

        with self._lock:
            if self._span_rows is None:
                spans = self.dataset.spans
                if spans.crs is not None and not spans.crs.equals("EPSG:4326"):
                    spans = spans.to_crs(4326)
                self._span_geoms = np.asarray(spans.geometry.values, dtype=object)
                self._span_rows = {s: i for i, s in
                                   enumerate(spans["span_id"].astype(str).tolist())}
        assert self._span_geoms is not None
        geom = self._span_geoms[self._span_rows[span_id]]
        return np.asarray(shapely.get_coordinates(geom), dtype=float)


#: The parts of a state made of hundreds of thousands of Python objects or more (the walk
#: of every OLT port, the paths of each premise and port).
_LARGE_PARTS = frozenset({"trace", "by_premise", "by_port"})


def settle_heap() -> None:
    """Collect the garbage once, then keep every object alive now out of the cyclic garbage
    collector's full passes (``gc.freeze``).

    A trace of a large plant is millions of lists and tuples that live as long as their
    data version. Left to the collector, each of its full passes walks them all: measured
    at 1 M premises, 2.6 M objects, 0.1-0.2 s with every thread stopped, a few times per
    thousand requests (the p99 of ``GET /trace``). The objects frozen before are thawed
    first, so the states of older data versions, dropped since, are collected now.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class StrandState:
    """A base traced at one set of loss parameters; every part computed once, on demand."""

    def __init__(self, base: StrandBase, options: TraceOptions) -> None:
        self.base = base
        self.plant = base.require_plant()
        self.options = options
        self._lock = threading.RLock()
        self._parts: dict[Hashable, Any] = {}

    @property
    def version(self) -> int:
        """The data version traced."""
        return self.base.version

    def _once(self, key: Hashable, make: Callable[[], T]) -> T:
        got = self._parts.get(key)
        if got is not None:
            return got  # type: ignore[no-any-return]
        with self._lock:
            got = self._parts.get(key)
            if got is None:
                got = make()
                self._parts[key] = got
                if key in _LARGE_PARTS:
                    settle_heap()
            return got

    @property
    def trace(self) -> Trace:
        """The plain trace (no cut): every path from every OLT port."""
        from netgis.engine.strands.trace import trace_network

        return self._once("trace", lambda: trace_network(self.plant, self.options))

    @property
    def losses(self) -> np.ndarray:
        """Each path's loss (``fixed_db`` included)."""
        from netgis.engine.strands.trace import path_losses

        return self._once("losses", lambda: path_losses(self.trace, self.options))

    @property
    def best(self) -> Best:
        """The best path of each drop and premise."""
        from netgis.engine.strands.trace import best_paths

        return self._once("best", lambda: best_paths(self.trace, self.losses))

    @property
    def paths(self) -> pd.DataFrame:
        """Every path as a ``trace_paths.csv`` row, in depth-first order (row = path)."""
        from netgis.engine.strands.trace import path_frame

        return self._once("paths", lambda: path_frame(self.trace, self.options))

    def paths_of_port(self, port: str) -> np.ndarray:
        """The paths (numbers) from OLT port ``port``, in depth-first order."""
        def index() -> dict[str, np.ndarray]:
            ports = pd.Series(self.trace.path_port, dtype=object)
            return {str(k): np.asarray(v, dtype=np.int64)
                    for k, v in ports.groupby(ports, sort=False).indices.items()}

        found: dict[str, np.ndarray] = self._once("by_port", index)
        return found.get(port, np.zeros(0, dtype=np.int64))

    def paths_of_premise(self, premise: str) -> np.ndarray:
        """The paths (numbers) ending at ``premise``'s drops, best first (least loss, then
        path_id in code-point order)."""
        def index() -> dict[str, list[int]]:
            walker = self.trace.walker
            out: dict[str, list[int]] = {}
            for p, d in enumerate(self.trace.drop_row):
                if d >= 0:
                    out.setdefault(walker.drop_premise[d], []).append(p)
            return out

        found: dict[str, list[int]] = self._once("by_premise", index)
        chosen = found.get(premise, [])
        losses = self.losses
        ranked = sorted(chosen, key=lambda p: (float(losses[p]), self.trace.path_id(p)))
        return np.asarray(ranked, dtype=np.int64)

    def kept(self, key: Hashable) -> Any:
        """A part already computed (None when it is not)."""
        return self._parts.get(key)

    def capacity(self, drop_m: float, passed: Callable[[], pd.Series]) -> Capacity:
        """Capacity at drop length ``drop_m``; ``passed()`` gives the route analysis's
        ``passed`` of this data version (indexed by premise_id), asked for only when the
        capacity at that length is not kept."""
        from netgis.engine.strands.capacity import capacity

        return self._once(("capacity", float(drop_m)), lambda: capacity(
            self.plant, passed(), drop_m=float(drop_m), options=self.options,
            trace=self.trace))


class StrandStates:
    """The strand bases and traces of one application (see the module)."""

    def __init__(self, services: Services, bases: SingleFlight[int, StrandBase],
                 states: SingleFlight[tuple[Hashable, ...], StrandState]) -> None:
        self.services = services
        #: the newest base (size 1) and the traces kept (:data:`STATES_KEPT`)
        self._bases = bases
        self._states = states
        self._lock = threading.Lock()
        #: data version -> whether it holds strand rows
        self._present: dict[int, bool] = {}

    def default_options(self) -> TraceOptions:
        """The server's loss parameters (settings), the default connector loss, no planned
        plant."""
        return self.options(None)

    def options(self, budget: LossBudget | None, connector_db: float | None = None,
                include_planned: bool = False) -> TraceOptions:
        """Trace options of a request (None: the server's budget, the default connector)."""
        from netgis.engine.strands.trace import TraceOptions

        return TraceOptions(budget=self.services.budget(budget),
                            connector_db=DEFAULT_CONNECTOR_DB if connector_db is None
                            else float(connector_db),
                            include_planned=bool(include_planned))

    def is_default(self, options: TraceOptions) -> bool:
        """Whether ``options`` are the server's (a trace every client shares)."""
        return options_key(options) == options_key(self.default_options())

    def known_absent(self, version: int) -> bool:
        """Whether data version ``version`` is known to hold no strand row (no query: False
        when not known yet)."""
        with self._lock:
            return self._present.get(version) is False

    def present(self, version: int | None = None) -> bool:
        """Whether the database holds a strand row (at data version ``version``: known
        without a query once asked for that version)."""
        if version is not None:
            with self._lock:
                known = self._present.get(version)
            if known is not None:
                return known
        repo = self.services.repo
        now = repo.data_version()
        found = bool(repo.strands.present())
        if repo.data_version() == now:
            with self._lock:
                if len(self._present) > 64:
                    self._present.clear()
                self._present[now] = found
        return found

    def base(self) -> StrandBase:
        """The dataset with its strand layers at the database's current data version."""
        repo = self.services.repo
        version = repo.data_version()

        def read() -> StrandBase:
            from netgis.strand_plant import strand_plant

            read_version, dataset = repo.read_consistent_plant()
            plant = strand_plant(dataset, dataset.strands) if dataset.strands else None
            made = StrandBase(read_version, dataset, plant)
            if read_version != version:
                # written to meanwhile: what was read belongs to the newer version
                self._bases.put(read_version, made)
            return made

        kept = self._bases.keys()
        if kept and kept[0] > version:
            newer = self._bases.peek(kept[0])
            if newer is not None:
                return newer
        return self._bases.get(version, read)

    def state(self, options: TraceOptions | None = None) -> StrandState:
        """The current data traced at ``options`` (None: the server's); a 409 without
        strand layers. A trace at other than the server's parameters not kept costs an
        anonymous client a token of the limit on new work (429 when none is left)."""
        options = options or self.default_options()
        base = self.base()
        base.require_plant()
        key = (base.version, *options_key(options))
        self._states.keep_only(lambda k: isinstance(k[0], int) and k[0] >= base.version)
        admit = None if self.is_default(options) else self.services.admit
        return self._states.get(key, lambda: StrandState(base, options), admit)

    # ------------------------------------------------------------ capacity

    def passed(self, version: int, drop_m: float) -> pd.Series:
        """The route analysis's ``passed`` of data version ``version`` at ``drop_m`` (indexed
        by premise_id): the live analysis's or the cached one's when they reflect that
        version, else an analysis of the strand base's own dataset."""
        services = self.services
        default = services.is_default(drop_m, services.budget())
        for _ in range(ALIGN_ATTEMPTS):
            got, result = services.analysis(drop_m)
            if got == version:
                return result.premises.set_index("premise_id")["passed"]
            if got > version or not default:
                break
            services.live.wait_for(version, ALIGN_WAIT_S)
        from netgis.engine.analysis import analyze_parts

        base = self.base()
        if base.version != version:
            raise StorageUnavailable(f"data version {version} is no longer the newest",
                                     reason="the data changed while it was read")
        return analyze_parts(base.dataset, drop_m=drop_m)[0].premises \
            .set_index("premise_id")["passed"]

    def capacity(self, state: StrandState, drop_m: float) -> Capacity:
        """The capacity of ``state`` at ``drop_m`` (premises passed at the same version)."""
        return state.capacity(drop_m, lambda: self.passed(state.version, drop_m))

    def aligned(self, answer: Callable[[], tuple[int, T]], drop_m: float
                ) -> tuple[int, T, dict[str, float | int] | None]:
        """``answer()`` (something made from the live analysis, or an analysis at
        ``drop_m``: its data version first) with the capacity KPIs of the same data
        version at the server's loss parameters; None for them when that version holds no
        strand layers. While writes land, ``answer()`` is asked again once the live
        analysis reflects the newest data.

        The answer never fails for want of its capacity KPIs: when they cannot be had for
        its data version (the database is away, the strand layers cannot be read, the live
        analysis cannot follow the writes), those kept for that version are given, else
        None, and the reason is logged.
        """
        version, value = answer()
        try:
            if not self.present(version):
                return version, value, None
            for _ in range(ALIGN_ATTEMPTS):
                base = self.base()
                if base.version == version:
                    if base.plant is None:
                        return version, value, None
                    cap = self.capacity(self.state(self.default_options()), drop_m)
                    return version, value, dict(cap.kpis)
                if self.services.live.wait_for(base.version, ALIGN_WAIT_S) is None:
                    break  # the live analysis cannot reflect that version now
                version, value = answer()
            reason = "the data kept changing, or the live analysis cannot reflect it now"
        except NetgisError as exc:
            reason = str(exc)
        log.warning("capacity KPIs of data version %s not computed: %s", version, reason)
        return version, value, self._kept_capacity(version, drop_m)

    def _kept_capacity(self, version: int, drop_m: float) -> dict[str, float | int] | None:
        """The capacity KPIs of data version ``version`` at the server's parameters when
        they were computed and are still kept (no query), else None."""
        base = self._bases.peek(version)
        if base is None or base.plant is None:
            return None
        state = self._states.peek((version, *options_key(self.default_options())))
        kept = None if state is None else state.kept(("capacity", float(drop_m)))
        return None if kept is None else dict(kept.kpis)


def with_capacity(kpis: Mapping[str, Any], capacity: Mapping[str, Any] | None
                  ) -> Mapping[str, Any]:
    """``kpis`` (``kpis.json`` shape) with the capacity KPIs in ``network`` (when given)."""
    if capacity is None:
        return kpis
    return {**kpis, "network": {**kpis["network"], **capacity}}
