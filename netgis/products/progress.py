"""Coverage progress at a glance: the numbers and Vega-Lite charts of ``/dashboard`` and the
council report (``netgis report``, ``GET /report``).

Everything here is pure and web-free: an :class:`~netgis.engine.analysis.Analysis`, its KPI
history (the snapshots :meth:`netgis.storage.Repository.kpi_history` returns, or none
for a dataset file), a :class:`~netgis.products.feeds.Goal` and the ranked gap clusters go in;
a :class:`Dashboard` (plain dicts and lists, JSON-ready) comes out, with
:func:`chart_specs` (Vega-Lite specifications made by altair) and :func:`summary`
(the plain-words paragraph). The pages themselves are built in :mod:`maps.dashboard`.

The numbers are the feeds' own: the KPIs of ``kpis.json``, the history of
``/kpis/history`` and the goal view of ``/kpis/goal`` (:func:`netgis.products.feeds.goal_progress`,
so the projected date and its window are the same as there).

Examples
--------
>>> from datetime import date
>>> from netgis.engine.analysis import analyze
>>> from netgis.generate import generate_city
>>> board = build_dashboard(analyze(generate_city(premises=60, seed=3)), as_of=date(2026, 1, 1))
>>> sorted(chart_specs(board))
['areas', 'builds', 'coverage', 'protection', 'spof']
>>> summary(board).startswith("Coverage of the network is ")
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from netgis.errors import NotFoundError
from netgis.jsonsafe import json_safe
from netgis.products.feeds import (
    DEFAULT_MIN_SPAN_DAYS,
    DEFAULT_PACE_WINDOW_DAYS,
    Goal,
    goal_progress,
)
from netgis.products.names import PlaceNames, place_label, place_names, places_text

if TYPE_CHECKING:
    import geopandas as gpd
    from pyproj import CRS

    from netgis.engine.analysis import Analysis
    from netgis.products.program import Program

#: Single points of failure and builds shown (the issue asks for the top 10 builds).
TOP_N = 10
#: Okabe & Ito's palette: told apart by readers with any common colour-vision deficiency.
PALETTE = {"blue": "#0072B2", "orange": "#E69F00", "green": "#009E73",
           "vermillion": "#D55E00", "purple": "#CC79A7", "sky": "#56B4E9", "black": "#000000"}
#: Protection classes of docs/spec.md §2.5 (Protected), in the order a reader meets them.
PROTECTIONS = (("span_protected_pct", "a span cut"), ("node_protected_pct", "a node failure"),
               ("duct_protected_pct", "a duct failure"))
#: Chart name -> the map page (under /maps) that shows the same thing on the map.
CHART_MAPS = {"coverage": "coverage", "areas": "areas", "protection": "criticality",
              "spof": "criticality", "builds": "gaps"}
#: Chart name -> heading, in page order.
CHART_TITLES = {
    "coverage": "Coverage over time and the goal",
    "areas": "Coverage and protection per area",
    "protection": "Passed units protected against single failures",
    "spof": "Top single points of failure",
    "builds": "Top builds of the gap ranking",
}
#: The coverage chart's legend: measured KPI snapshots, and points estimated by
#: ``netgis kpis backfill`` (drawn dashed; the legend shows only when there are some).
MEASURED_SERIES = "Measured (KPI snapshots)"
ESTIMATED_SERIES = "Estimated from install_year"
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@dataclass(frozen=True)
class Dashboard:
    """What the dashboard and the report show, for the network or one area.

    ``kpis`` is the scope's KPI object (``kpis.json["network"]`` or one area's);
    ``areas`` the per-area KPIs (only the chosen one with ``area_id``);
    ``history`` the scope's snapshots (``taken_at`` ISO text, the KPIs), oldest
    first; ``goal`` the scope's row of :func:`netgis.products.feeds.goal_progress`;
    ``spofs`` the top spans and nodes by units cut off (``kind``, ``id``,
    ``units``, ``premises``); ``builds`` the top gap clusters by rank
    (``rank``, ``cluster_id``, ``units``, ``premises``, ``route_m``, ``cost``,
    ``cost_per_unit``); both also ``place`` ("street, area",
    :mod:`netgis.products.names`) where it is known. ``history_source`` says where the
    history came from (``"database"``, or ``"none"`` for a dataset file).
    """

    kpis: dict[str, Any]
    areas: list[dict[str, Any]]
    history: list[dict[str, Any]]
    goal: dict[str, Any]
    spofs: list[dict[str, Any]]
    builds: list[dict[str, Any]]
    as_of: str
    generated_at: str
    area_id: str | None = None
    area_name: str | None = None
    data_version: int | None = None
    history_source: str = "database"
    drop_m: float | None = None
    #: the build programme's coverage at the end of each year (``year``, ``coverage_pct``,
    #: ``cost``, ``units_passed``, ``clusters``), network only; empty without a programme
    program: list[dict[str, Any]] = field(default_factory=list)
    #: the budget per year of that programme
    program_budget: float | None = None

    @property
    def scope_name(self) -> str:
        """"the network", or the area's name (its id when it has none)."""
        if self.area_id is None:
            return "the network"
        return self.area_name or self.area_id


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): json_safe(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _iso(value: str | datetime) -> str:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return str(when.astimezone(UTC).isoformat())


def _area(analysis: Analysis, area_id: str) -> tuple[dict[str, Any], gpd.GeoSeries]:
    for area in analysis.kpis.get("areas") or []:
        if str(area["area_id"]) == area_id:
            areas = analysis.dataset.areas
            return dict(area), cast("gpd.GeoSeries",
                                    areas.geometry[areas["area_id"].astype(str) == area_id])
    raise NotFoundError("areas", area_id)


def _inside(frame: gpd.GeoDataFrame, shape: gpd.GeoSeries) -> pd.Series:
    """Which rows of ``frame`` intersect ``shape`` (boundary included), vectorised."""
    if frame.empty:
        return pd.Series(np.zeros(0, dtype=bool), index=frame.index)
    polygon = shape.to_crs(cast("CRS", frame.crs)).union_all()
    return frame.geometry.intersects(polygon)


def _with_place(records: list[dict[str, Any]], places: Sequence[str | None]
                ) -> list[dict[str, Any]]:
    """Each record with its ``place`` ("street, area") where one is known; without, the
    record is as it was before places existed."""
    return [{**r, "place": p} if p else r for r, p in zip(records, places, strict=True)]


def _top_spofs(analysis: Analysis, shape: gpd.GeoSeries | None, n: int,
               names: PlaceNames) -> list[dict[str, Any]]:
    spans, nodes = analysis.spans, analysis.nodes
    if shape is not None:
        spans, nodes = spans[_inside(spans, shape)], nodes[_inside(nodes, shape)]
    parts = [
        pd.DataFrame({"kind": "span", "id": spans["span_id"].astype(str),
                      "units": spans["cut_units"].astype("int64"),
                      "premises": spans["cut_premises"].astype("int64")}),
        pd.DataFrame({"kind": "node", "id": nodes["node_id"].astype(str),
                      "units": nodes["failure_units"].astype("int64"),
                      "premises": nodes["failure_premises"].astype("int64")}),
    ]
    both = pd.concat(parts, ignore_index=True)
    both = both[both["units"] > 0]
    # ties in units: fewer premises first is arbitrary, so order by id for a stable answer
    top = both.sort_values(["units", "premises", "kind", "id"],
                           ascending=[False, False, True, True]).head(n)
    records = _records(top)
    return _with_place(records, [names.place(r["kind"], r["id"]) for r in records])


_BUILD_COLUMNS = ("rank", "cluster_id", "units", "premises", "route_m", "cost", "cost_per_unit")


def _top_builds(clusters: gpd.GeoDataFrame | None, shape: gpd.GeoSeries | None,
                n: int, names: PlaceNames) -> list[dict[str, Any]]:
    if clusters is None or clusters.empty:
        return []
    if shape is not None:
        clusters = clusters[_inside(clusters, shape)]
    top = clusters.sort_values("rank").head(n)
    records = _records(pd.DataFrame({c: top[c] for c in _BUILD_COLUMNS}))
    return _with_place(records, places_text(names.places(top.geometry.to_numpy())))


def ranked_clusters(analysis: Analysis) -> gpd.GeoDataFrame:
    """The gap clusters ranked at the defaults of ``/analysis/gaps?view=clusters``."""
    from netgis.products.gaps import plan_builds

    return plan_builds(analysis.premises, analysis.spans, analysis.nodes,
                       drop_m=analysis.drop_m).clusters


def build_dashboard(
    analysis: Analysis,
    *,
    history: Sequence[Mapping[str, Any]] | None = None,
    goal: Goal | None = None,
    as_of: date | None = None,
    area_id: str | None = None,
    clusters: gpd.GeoDataFrame | None = None,
    window_days: int = DEFAULT_PACE_WINDOW_DAYS,
    min_span_days: float = DEFAULT_MIN_SPAN_DAYS,
    data_version: int | None = None,
    top_n: int = TOP_N,
    program: Program | None = None,
    names: PlaceNames | None = None,
) -> Dashboard:
    """Gather the numbers of the dashboard for the network or the area ``area_id``.

    Parameters
    ----------
    analysis
        The analysis of the current data (its KPIs are those of the feeds).
    history
        The scope's KPI snapshots, oldest first (``taken_at`` and the KPIs), as
        ``Repository.kpi_history(area_id=...)`` returns them; ``None`` when there
        is no history (a dataset file): the dashboard then has the current KPIs only.
    goal
        Target coverage and date (default :class:`~netgis.products.feeds.Goal`).
    as_of
        The day progress is measured on (default: today, UTC).
    area_id
        Narrow everything to this area (a :class:`~netgis.errors.NotFoundError`
        when the data has no such area).
    clusters
        The ranked gap clusters (``BuildPlan.clusters``); ``None``: no builds shown.
    window_days, min_span_days
        The pace window of :func:`netgis.products.feeds.goal_progress`.
    data_version
        The data version the analysis describes, when it comes from a database.
    top_n
        Single points of failure and builds listed.
    program
        A build programme (:func:`netgis.products.program.run_program`) whose coverage
        line is drawn beside the actual one (the network only: not with ``area_id``).
    names
        The street and area of the spans, nodes and builds
        (:func:`netgis.products.names.place_names` of the analysed dataset, which is
        what ``None`` computes): each single point of failure and build known to lie
        somewhere carries it as ``place`` ("Lindenstraße, Nordend").
    """
    day = as_of or datetime.now(UTC).date()
    shape = None
    area_name = None
    if area_id is not None:
        scope, shape = _area(analysis, area_id)
        area_name = scope.get("name")
        areas = [scope]
    else:
        scope = dict(analysis.kpis["network"])
        areas = [dict(a) for a in analysis.kpis.get("areas") or []]
    # the goal view of the one scope shown: its KPIs as a network of their own
    kpis_of_scope = {"network": scope, "areas": []}
    series = [{**{k: json_safe(v) for k, v in h.items() if k not in ("area_id", "name")},
               "taken_at": _iso(h["taken_at"])} for h in (history or ())]
    names = names if names is not None else place_names(analysis.dataset)
    progress = goal_progress(kpis_of_scope, goal=goal or Goal(), as_of=day,
                             history={None: series}, window_days=window_days,
                             min_span_days=min_span_days)[0]
    return Dashboard(
        kpis={k: json_safe(v) for k, v in scope.items()},
        areas=[{k: json_safe(v) for k, v in a.items()} for a in areas],
        history=series, goal=progress,
        spofs=_top_spofs(analysis, shape, top_n, names),
        builds=_top_builds(clusters, shape, top_n, names),
        as_of=day.isoformat(),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        area_id=area_id, area_name=area_name, data_version=data_version,
        history_source="none" if history is None else "database",
        drop_m=float(analysis.drop_m),
        program=[] if program is None or area_id is not None else [
            {"year": y.year, "coverage_pct": y.coverage_pct, "cost": round(y.cost, 2),
             "units_passed": y.units_passed, "clusters": len(y.clusters)}
            for y in program.years],
        program_budget=None if program is None else program.budget_per_year,
    )


# --------------------------------------------------------------------------------- summary


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} %"


def _month(iso: str) -> str:
    when = datetime.fromisoformat(iso)
    return f"{_MONTHS[when.month - 1]} {when.year}"


def _years(n: int) -> str:
    return "one year" if n == 1 else f"{n} years"


def summary(board: Dashboard) -> str:
    """The plain-words paragraph of the report: where coverage stands and how fast it moves.

    Examples
    --------
    >>> board = Dashboard(kpis={"coverage_pct": 93.5, "units_passed": 935, "units_total": 1000},
    ...     areas=[], history=[{"taken_at": "2026-03-02T00:00:00+00:00", "coverage_pct": 91.2}],
    ...     goal={"target_pct": 100.0, "target_date": "2027-12-31", "gap_units": 65,
    ...           "pace_units_per_month": 1.2, "projected_date": "2030-06-01",
    ...           "pace_window_days": 365, "pace_note": None, "pace_snapshots": 5},
    ...     spofs=[], builds=[], as_of="2026-09-30", generated_at="")
    >>> text = summary(board)
    >>> text.split(". ")[0]
    'Coverage of the network rose from 91.2 % to 93.5 % since March 2026 (935 of 1000 units passed)'
    >>> text.split(", ")[-2:]
    ['100 % is reached in 2030', '3 years after the goal (2027-12-31).']
    """
    kpis, goal = board.kpis, board.goal
    now = kpis.get("coverage_pct")
    units = (f"{int(kpis.get('units_passed') or 0)} of {int(kpis.get('units_total') or 0)} "
             "units passed")
    first = next((h for h in board.history if h.get("coverage_pct") is not None), None)
    if first is None:
        where = f"Coverage of {board.scope_name} is {_pct(now)} ({units})."
    else:
        before = float(first["coverage_pct"])
        since = _month(first["taken_at"]) + (" (estimated from install_year)"
                                             if first.get("estimated") else "")
        verb = ("rose" if now is not None and now > before + 0.05 else
                "fell" if now is not None and now < before - 0.05 else "stayed")
        if verb == "stayed":
            where = (f"Coverage of {board.scope_name} stayed at {_pct(now)} since "
                     f"{since} ({units}).")
        else:
            where = (f"Coverage of {board.scope_name} {verb} from {_pct(before)} to "
                     f"{_pct(now)} since {since} ({units}).")
    target = f"{goal['target_pct']:g} %"
    goal_day = date.fromisoformat(goal["target_date"])
    if goal.get("gap_units") == 0:
        return f"{where} The target of {target} is reached."
    if board.history_source == "none":
        return (f"{where} There is no KPI history: this report was made from a dataset file, "
                f"not a database, so no pace and no date for {target} can be given. The goal "
                f"is {target} by {goal_day.isoformat()}.")
    pace = goal.get("pace_units_per_month")
    if pace is None:
        return (f"{where} {goal.get('pace_note')}. The goal is {target} by "
                f"{goal_day.isoformat()}.")
    window = f"At the pace of the last {goal['pace_window_days']} days ({pace:.1f} units a month)"
    projected = goal.get("projected_date")
    if pace <= 0 or projected is None:
        return f"{where} {window}, {target} is never reached."
    year = date.fromisoformat(projected).year
    late = year - goal_day.year
    if late > 0:
        when = f"{_years(late)} after the goal ({goal_day.isoformat()})"
    elif late < 0:
        when = f"{_years(-late)} before the goal ({goal_day.isoformat()})"
    else:
        when = f"the year of the goal ({goal_day.isoformat()})"
    return f"{where} {window}, {target} is reached in {year}, {when}."


# ---------------------------------------------------------------------------------- charts


def _theme() -> dict[str, Any]:
    # dark text on white: the contrast WCAG asks for; Okabe-Ito colours for the marks
    ink = "#222222"
    return {
        "font": "DejaVu Sans, Verdana, sans-serif",
        "axis": {"labelColor": ink, "titleColor": ink, "labelFontSize": 12, "labelLimit": 320,
                 "titleFontSize": 12, "domainColor": "#555555", "tickColor": "#555555"},
        "legend": {"labelColor": ink, "titleColor": ink, "labelFontSize": 12, "labelLimit": 400,
                   "titleFontSize": 12, "orient": "bottom"},
        "title": {"color": ink},
        "range": {"category": list(PALETTE.values())},
        "view": {"stroke": None},
    }


def chart_specs(board: Dashboard, *, width: int = 520) -> dict[str, dict[str, Any]]:
    """The five charts as Vega-Lite specifications (dicts), keyed by :data:`CHART_TITLES`.

    Every mark carries a ``description`` (its ARIA label: what a screen reader says,
    and what the tests read back); every chart a ``description`` of its own.
    """
    import altair as alt

    specs = {
        "coverage": _coverage_chart(alt, board, width),
        "areas": _areas_chart(alt, board, width),
        "protection": _protection_chart(alt, board, width),
        "spof": _spof_chart(alt, board, width),
        "builds": _builds_chart(alt, board, width),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, chart in specs.items():
        spec = _plain_text(chart.to_dict())
        spec["config"] = _theme()
        spec["usermeta"] = {"embedOptions": {"actions": False}}
        out[name] = spec
    return out


#: Characters no chart text keeps: control characters and the line and paragraph
#: separators (Unicode categories Cc, Zl, Zp).
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _plain_text(value: Any) -> Any:
    """``value`` (a spec) with each control character and line or paragraph separator of
    its text shown as a space.

    Vega-Lite compiles some values (the order of a bar chart's labels) into expressions,
    whose parser takes U+2028 and U+2029 for the end of a line inside a string: the chart
    fails to draw, in the browser and in vl-convert. Ids cannot hold them; area names,
    free text, and data stored before ids were checked for them can.
    """
    if isinstance(value, str):
        return _BREAKS.sub(" ", value)
    if isinstance(value, dict):
        return {_plain_text(k): _plain_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_text(v) for v in value]
    return value


def _coverage_chart(alt: Any, board: Dashboard, width: int) -> Any:
    goal = board.goal
    now = {"taken_at": board.as_of + "T12:00:00+00:00", "coverage_pct": board.kpis.get(
        "coverage_pct"), "series": "now"}
    measured = [h for h in board.history if h.get("coverage_pct") is not None
                and not h.get("estimated")]
    estimated = [{"taken_at": h["taken_at"], "coverage_pct": h["coverage_pct"],
                  "series": ESTIMATED_SERIES} for h in board.history
                 if h.get("coverage_pct") is not None and h.get("estimated")]
    # without estimated points the chart is as it was before they existed
    series = MEASURED_SERIES if estimated else "snapshot"
    points = [{"taken_at": h["taken_at"], "coverage_pct": h["coverage_pct"], "series": series}
              for h in measured]
    if not points and not estimated:
        points = [now]
    when = "timeFormat(toDate(datum.taken_at), '%Y-%m-%d') + ': ' + " \
           "format(datum.coverage_pct, '.1f') + ' %'"
    history = alt.Chart(alt.Data(values=points)).transform_calculate(
        label="'Coverage on ' + " + when)
    x = alt.X("taken_at:T", title="Date", axis=alt.Axis(format="%Y-%m", labelAngle=0))
    y = alt.Y("coverage_pct:Q", title="Coverage (% of units passed)",
              scale=alt.Scale(zero=False, nice=True))
    # one legend for both lines when there are estimates: measured solid, estimated dashed
    dash: dict[str, Any] = {"strokeDash": alt.StrokeDash("series:N", title=None, scale=alt.Scale(
        domain=[MEASURED_SERIES, ESTIMATED_SERIES], range=[[1, 0], [6, 4]]))} if estimated else {}
    layers: list[Any] = []
    if estimated:
        # the estimated years, joined to the first measured snapshot by the same dashes
        joined = estimated + [{**p, "series": ESTIMATED_SERIES} for p in points[:1]]
        guess = alt.Chart(alt.Data(values=joined)).transform_calculate(
            label="'Estimated from install_year: coverage on ' + " + when)
        layers.append(guess.mark_line(color=PALETTE["blue"], strokeWidth=2, aria=False)
                      .encode(x=x, y=y, **dash))
        layers.append(guess.transform_filter(f"datum.series == '{ESTIMATED_SERIES}'")
                      .mark_point(color=PALETTE["blue"], filled=False, size=60).encode(
            x=x, y=y, description="label:N", tooltip=alt.Tooltip("label:N", title="Estimate")))
    if points:
        layers.append(history.mark_line(color=PALETTE["blue"], strokeWidth=2, aria=False)
                      .encode(x=x, y=y, **dash))
        layers.append(history.mark_point(color=PALETTE["blue"], filled=True, size=60).encode(
            x=x, y=y, description="label:N", tooltip=alt.Tooltip("label:N", title="Snapshot")))
    target = [{"target_pct": goal["target_pct"], "target_date": goal["target_date"],
               "label": f"Goal: {goal['target_pct']:g} % by {goal['target_date']}"}]
    goal_rule = alt.Chart(alt.Data(values=target)).mark_rule(
        color=PALETTE["vermillion"], strokeWidth=2).encode(
        y="target_pct:Q", description="label:N")
    goal_day = alt.Chart(alt.Data(values=target)).mark_rule(
        color=PALETTE["vermillion"], strokeDash=[2, 2]).encode(
        x="target_date:T", description="label:N")
    layers += [goal_rule, goal_day]
    projected = goal.get("projected_date")
    last = points[-1] if points else estimated[-1]
    if projected is not None and last.get("coverage_pct") is not None:
        ends = [{"when": last["taken_at"], "coverage_pct": last["coverage_pct"], "end": "from"},
                {"when": projected + "T00:00:00+00:00", "coverage_pct": goal["target_pct"],
                 "end": "to"}]
        pace = alt.Chart(alt.Data(values=ends)).transform_calculate(
            label=f"'Projected at the pace of the last {goal['pace_window_days']} days: ' + "
                  "format(datum.coverage_pct, '.1f') + ' % on ' + "
                  "timeFormat(toDate(datum.when), '%Y-%m-%d')")
        layers.append(pace.mark_line(color=PALETTE["orange"], strokeDash=[6, 4],
                                     strokeWidth=2, aria=False).encode(
            x="when:T", y="coverage_pct:Q"))
        layers.append(pace.mark_point(color=PALETTE["orange"], shape="diamond", size=80,
                                      filled=True).encode(
            x="when:T", y="coverage_pct:Q", description="label:N",
            tooltip=alt.Tooltip("label:N", title="Projection")))
    if board.program and last.get("coverage_pct") is not None:
        steps = [{"when": last["taken_at"], "coverage_pct": last["coverage_pct"],
                  "label": f"Programme starts at {last['coverage_pct']:.1f} %"}]
        steps += [{"when": f"{p['year']}-12-31T12:00:00+00:00",
                   "coverage_pct": p["coverage_pct"],
                   "label": f"Programme: {p['coverage_pct']:.1f} % at the end of {p['year']} "
                            f"({p['clusters']} builds, cost {p['cost']:,.0f})"}
                  for p in board.program]
        planned = alt.Chart(alt.Data(values=steps))
        layers.append(planned.mark_line(color=PALETTE["green"], strokeDash=[2, 3],
                                        strokeWidth=2, aria=False).encode(
            x="when:T", y="coverage_pct:Q"))
        layers.append(planned.mark_point(color=PALETTE["green"], shape="square", size=60,
                                         filled=True).encode(
            x="when:T", y="coverage_pct:Q", description="label:N",
            tooltip=alt.Tooltip("label:N", title="Programme")))
    counted = (f"{len(board.history) - len(estimated)} KPI snapshots and {len(estimated)} "
               "points estimated from install_year (dashed)" if estimated else
               f"{len(board.history)} KPI snapshots")
    text = (f"Line chart of coverage of {board.scope_name} over time: {counted}, "
            f"now {_pct(board.kpis.get('coverage_pct'))}; goal "
            f"{goal['target_pct']:g} % by {goal['target_date']}; projected date "
            f"{projected or 'none'}.")
    if board.program:
        end = board.program[-1]
        text += (f" Build programme at {board.program_budget:,.0f} a year: "
                 f"{end['coverage_pct']:.1f} % at the end of {end['year']}.")
    return alt.layer(*layers).properties(width=width, height=260, description=text)


def _areas_chart(alt: Any, board: Dashboard, width: int) -> Any:
    rows = []
    for area in board.areas:
        name = str(area.get("name") or area["area_id"])
        for key, what in (("coverage_pct", "Coverage (of all units)"),
                          ("span_protected_pct", "Protected against a span cut (of passed)")):
            rows.append({"area_id": str(area["area_id"]), "area": name, "measure": what,
                         "value": area.get(key), "coverage": area.get("coverage_pct")})
    base = alt.Chart(alt.Data(values=rows)).transform_filter(
        "isValid(datum.value)").transform_calculate(
        label="datum.area + ': ' + datum.measure + ' ' + format(datum.value, '.1f') + ' %'")
    sort = alt.EncodingSortField(field="coverage", op="min", order="ascending")
    chart = base.mark_bar().encode(
        y=alt.Y("area:N", sort=sort, title="Area (lowest coverage first)"),
        yOffset=alt.YOffset("measure:N"),
        x=alt.X("value:Q", title="Percent", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("measure:N", title=None,
                        scale=alt.Scale(range=[PALETTE["blue"], PALETTE["orange"]])),
        description="label:N", tooltip=alt.Tooltip("label:N", title="Area"),
    )
    n = max(1, len(board.areas))
    text = (f"Bar chart of coverage and span-cut protection for {len(board.areas)} area(s), "
            "sorted by coverage, lowest first.")
    return chart.properties(width=width, height=min(40 * n, 600), description=text)


def _protection_chart(alt: Any, board: Dashboard, width: int) -> Any:
    rows = [{"key": key, "failure": f"Protected against {what}",
             "value": board.kpis.get(key)} for key, what in PROTECTIONS]
    chart = alt.Chart(alt.Data(values=rows)).transform_filter(
        "isValid(datum.value)").transform_calculate(
        label="datum.failure + ': ' + format(datum.value, '.1f') + ' % of passed units'"
    ).mark_bar(color=PALETTE["green"]).encode(
        y=alt.Y("failure:N", sort=[r["failure"] for r in rows], title=None),
        x=alt.X("value:Q", title="Percent of passed units", scale=alt.Scale(domain=[0, 100])),
        description="label:N", tooltip=alt.Tooltip("label:N", title="Protection"),
    )
    text = "Bar chart of the share of passed units protected against " + ", ".join(
        f"{what} ({_pct(board.kpis.get(key))})" for key, what in PROTECTIONS) + "."
    return chart.properties(width=width, height=120, description=text)


def _spof_chart(alt: Any, board: Dashboard, width: int) -> Any:
    rows = [{**s, "item": place_label(s.get("place"), None, f"{s['kind']} {s['id']}")}
            for s in board.spofs]
    chart = alt.Chart(alt.Data(values=rows)).transform_calculate(
        label="datum.item + ': ' + datum.units + ' units (' + datum.premises + "
              "' premises) cut off'"
    ).mark_bar().encode(
        y=alt.Y("item:N", sort=[r["item"] for r in rows],
                title=_row_title(board.spofs, "Span or node")),
        x=alt.X("units:Q", title="Units cut off when it fails"),
        color=alt.Color("kind:N", title="Kind", scale=alt.Scale(
            domain=["span", "node"], range=[PALETTE["vermillion"], PALETTE["purple"]])),
        description="label:N", tooltip=alt.Tooltip("label:N", title="Single point of failure"),
    )
    text = (f"Bar chart of the {len(rows)} single points of failure that cut off the most "
            "units." if rows else "No single point of failure: no span or node cuts off a "
            "passed unit.")
    return chart.properties(width=width, height=max(40, 24 * len(rows)), description=text)


def _row_title(items: Sequence[Mapping[str, Any]], title: str) -> str | None:
    """The title of a bar chart's rows: none where a row's label names its place ("Lindenstraße,
    Nordend: span s05" says what it is, and Vega sets a title beside long labels over them)."""
    return None if any("place" in item for item in items) else title


def _builds_chart(alt: Any, board: Dashboard, width: int) -> Any:
    rows = [{**b, "build": place_label(b.get("place"), None, f"#{b['rank']} {b['cluster_id']}")}
            for b in board.builds]
    chart = alt.Chart(alt.Data(values=rows)).transform_calculate(
        label="datum.build + ': ' + format(datum.cost_per_unit, ',.0f') + ' per unit, ' + "
              "datum.units + ' units, ' + format(datum.route_m, ',.0f') + ' m of route'"
    ).mark_bar(color=PALETTE["sky"], stroke=PALETTE["blue"]).encode(
        y=alt.Y("build:N", sort=[r["build"] for r in rows],
                title=_row_title(board.builds, "Build (rank, cluster)")),
        x=alt.X("cost_per_unit:Q", title="Cost per unit passed"),
        description="label:N", tooltip=alt.Tooltip("label:N", title="Build"),
    )
    text = (f"Bar chart of the cost per unit of the top {len(rows)} builds of the gap ranking."
            if rows else "No build: every premise is passed.")
    return chart.properties(width=width, height=max(40, 24 * len(rows)), description=text)


def chart_svgs(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each Vega-Lite spec rendered to SVG on this machine (vl-convert: no browser, no
    network), for the self-contained report."""
    import vl_convert as vlc

    return {name: str(vlc.vegalite_to_svg(dict(spec))) for name, spec in specs.items()}
