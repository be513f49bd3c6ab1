"""The analyses of design plans in an API process (docs/plans.md).

A plan's analysis is main's published live analysis with the plan's edits applied
as one change (:class:`netgis.engine.live.LiveAnalysis`). Each plan keeps its own
live analysis: a write of the plan is applied to it incrementally (only the features
written since the plan version it reflects), so a plan's answers follow its edits as
main's follow main's. When main's published version moves on, the plan's analysis is
brought along by main's changes since (the change feed, as main's own live analysis
is): every feature main wrote or deleted that the plan does not write or delete itself
is applied to the plan's analysis too. Only when the feed cannot say what changed (a
bulk load, too many rows) is the plan's analysis made again from main's new state and
all the plan's edits.

Readers of a plan wait for its analysis (a plan has no readers that must never wait:
its planner asked for what they changed); one plan is analysed by one thread at a
time, different plans in parallel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from netgis.engine.live import Changes, LiveAnalysis
from netgis.schema import LAYER_NAMES, LAYERS
from netgis.storage.plans import Plans

if TYPE_CHECKING:
    from netgis.api.live import Published
    from netgis.api.services import Services
    from netgis.engine.analysis import Analysis
    from netgis.engine.optics import LossBudget
    from netgis.products.gaps import BuildPlan, GapParams
    from netgis.products.names import PlaceIndex
    from netgis.products.tiles import LayerTiles


#: Analyses of plans at other parameters (drop_m, optics) kept per API process.
MAX_OTHER_ANALYSES = 4


@dataclass
class PlanState:
    """A plan's analysis and the versions it reflects."""

    name: str
    #: main's data version the plan's analysis starts from
    main_version: int
    #: the plan's version it reflects
    plan_version: int
    main: Analysis
    analysis: Analysis
    live: LiveAnalysis
    #: how the last update was made: "full" (from main's state and every edit) or the
    #: live engine's path of the edits since ("premises", "network", ...)
    path: str


class PlanStates:
    """Per plan, its current analysis (see the module)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._states: dict[str, PlanState] = {}
        self._tiles: dict[tuple[str, str], tuple[tuple[int, int, int], LayerTiles]] = {}
        #: per plan, its streets and areas indexed for the places of its tiles (one per state)
        self._places: dict[str, tuple[tuple[int, int, int], PlaceIndex]] = {}
        self._other: dict[tuple[object, ...], Analysis] = {}
        self._builds: dict[tuple[object, ...], BuildPlan] = {}

    def plans(self) -> Plans:
        """The plans of the server's database."""
        return Plans(self.services.repo)

    def forget(self, name: str) -> None:
        """Drop a plan's analysis (the plan was discarded or merged)."""
        with self._lock:
            self._states.pop(name, None)
            self._places.pop(name, None)
            for key in [k for k in self._tiles if k[0] == name]:
                del self._tiles[key]

    def analysis(self, name: str, drop_m: float | None = None,
                 budget: LossBudget | None = None) -> tuple[PlanState, Analysis]:
        """The plan's state and its analysis at ``drop_m`` and ``budget`` (the server's when
        None): the live one at the server's parameters, else an analysis of the plan's data
        made for them (kept for the plan's current state; an anonymous client spends a
        token of the limit on new work for it, as for main's)."""
        from netgis.engine.analysis import analyze

        state = self.state(name)
        services = self.services
        drop, optics = services.drop_m(drop_m), services.budget(budget)
        if drop == state.live.drop_m and optics.key() == services.budget(state.live.budget).key():
            return state, state.analysis
        key = (name, id(state), state.main_version, state.plan_version, drop, optics.key())
        with self._lock:
            kept = self._other.get(key)
        if kept is not None:
            return state, kept
        services.admit()
        made = analyze(state.analysis.dataset, drop_m=drop, budget=optics)
        with self._lock:
            # a few kept per process: the newest parameters asked
            for old in [k for k in self._other if k[0] == name and k[1:4] != key[1:4]]:
                del self._other[old]
            while len(self._other) >= MAX_OTHER_ANALYSES:
                del self._other[next(iter(self._other))]
            self._other[key] = made
        return state, made

    def build_plan(self, state: PlanState, analysis: Analysis, params: GapParams) -> BuildPlan:
        """The gap build plan of a plan's ``analysis`` (of ``state``) at ``params``, kept
        for the plan's state (an anonymous client spends a token to make one)."""
        from netgis.products.gaps import plan_builds

        key = ("gaps", state.name, id(state), state.main_version, state.plan_version,
               float(analysis.drop_m), params)
        with self._lock:
            kept = self._builds.get(key)
        if kept is not None:
            return kept
        self.services.admit()
        made = plan_builds(analysis.premises, analysis.spans, analysis.nodes,
                           drop_m=analysis.drop_m, params=params)
        with self._lock:
            while len(self._builds) >= MAX_OTHER_ANALYSES:
                del self._builds[next(iter(self._builds))]
            self._builds[key] = made
        return made

    def tiles(self, name: str, layer: str) -> tuple[PlanState, LayerTiles]:
        """The plan's current state and the vector tiles of its ``layer`` (made once per
        state of the plan: an STRtree of the layer's features)."""
        from netgis.api.services import places_of
        from netgis.products.tiles import PLACE_LAYERS, LayerTiles

        state = self.state(name)
        key = (name, layer)
        stamp = (id(state), state.main_version, state.plan_version)
        with self._lock:
            kept = self._tiles.get(key)
        if kept is not None and kept[0] == stamp:
            return state, kept[1]
        frame = state.analysis.dataset.areas if layer == "areas" \
            else getattr(state.analysis, layer)
        places = None
        if layer in PLACE_LAYERS:  # named as main's are, by the plan's own streets and areas
            with self._lock:
                indexed = self._places.get(name)
            if indexed is None or indexed[0] != stamp:
                indexed = (stamp, self.services.new_place_index(state.analysis.dataset))
                with self._lock:
                    self._places[name] = indexed
            places = places_of(indexed[1])
        made = LayerTiles(frame, layer, places)
        with self._lock:
            self._tiles[key] = (stamp, made)
        return state, made

    def state(self, name: str) -> PlanState:
        """The plan's analysis at its current version and main's published one."""
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            plans = self.plans()
            plan_version = plans.version(name)  # NotFoundError for a plan that is not there
            published = self.services.live.current()
            state = self._states.get(name)
            if state is not None and state.main_version != published.version:
                state = self._follow_main(plans, state, published)
            if state is None:
                edits = plans.edits(name)
                live = LiveAnalysis(published.analysis.dataset, drop_m=self.services.live.drop_m,
                                    budget=self.services.live.budget)
                analysis = live.analysis if edits.empty else live.apply(
                    Changes.of(rows=edits.rows, deleted=edits.deleted))
                state = PlanState(name, published.version, edits.version, published.analysis,
                                  analysis, live, "full")
            elif state.plan_version < plan_version:
                edits = plans.edits(name, since=state.plan_version)
                if not edits.empty:
                    state.analysis = state.live.apply(
                        Changes.of(rows=edits.rows, deleted=edits.deleted))
                    state.path = state.live.last_path
                state.plan_version = edits.version
            with self._lock:
                self._states[name] = state
            return state

    def _follow_main(self, plans: Plans, state: PlanState, published: Published
                     ) -> PlanState | None:
        """``state`` brought to main's published analysis by main's changes since the
        version it started from, with the plan's own edits since; None when the change feed
        cannot say what changed (then the plan's analysis is made again)."""
        from netgis.api.live import MAX_CHANGE_ROWS

        changes = self.services.repo.changes_since(state.main_version,
                                                   max_rows=MAX_CHANGE_ROWS)
        if changes is None or changes.bulk or changes.version != published.version:
            return None
        own_edits = plans.edits(state.name)
        since = plans.edits(state.name, since=state.plan_version)
        rows: dict[str, gpd.GeoDataFrame] = {}
        deleted: dict[str, list[str]] = {}
        for layer in LAYER_NAMES:
            # what the plan writes or deletes itself stays as the plan has it
            own = own_edits.ids(layer) | since.ids(layer)
            parts: list[gpd.GeoDataFrame] = []
            frame = changes.rows.get(layer)
            if frame is not None and len(frame):
                ids = frame[LAYERS[layer].id_field].astype(str)
                parts.append(frame.iloc[np.flatnonzero(~ids.isin(own).to_numpy())])
            mine = since.rows.get(layer)
            if mine is not None and len(mine):
                # the plan's own edits since the state, in the same change
                parts.append(mine.to_crs(4326) if parts else mine)
            if parts:
                rows[layer] = parts[0] if len(parts) == 1 else gpd.GeoDataFrame(
                    pd.concat([parts[0], parts[1][list(parts[0].columns)]],
                              ignore_index=True), geometry="geometry", crs=parts[0].crs)
            deleted[layer] = [k for k in changes.deleted.get(layer, ()) if str(k) not in own] \
                + list(since.deleted.get(layer, ()))
        change = Changes.of(rows=rows, deleted=deleted)
        analysis = state.live.apply(change) if not change.empty else state.analysis
        return PlanState(state.name, published.version, since.version, published.analysis,
                         analysis, state.live, f"main+{state.live.last_path}")
