"""KPI feeds: the ``kpis.json`` object as table rows, CSV, Prometheus text and a goal view.

Everything here is pure: a KPI dict (the shape of :attr:`netgis.engine.analysis.Analysis.kpis`)
and, for the goal view, a KPI history go in; new rows, text or dicts come out.

One *row* per scope: the network first, then every area in the order of
``kpis["areas"]``. Each row has ``scope`` (``"network"`` or ``"area"``),
``area_id`` and ``name`` (``None`` for the network), then every KPI of
:data:`netgis.schema.NETWORK_KPIS` (``spof_spans`` / ``spof_nodes`` are ``None``
for areas, which have no such KPIs).

Examples
--------
>>> kpis = {"network": {"units_total": 4, "units_passed": 3, "coverage_pct": 75.0},
...         "areas": [{"area_id": "a1", "name": "North", "units_total": 2, "units_passed": 2,
...                    "coverage_pct": 100.0}]}
>>> [(r["scope"], r["area_id"], r["coverage_pct"]) for r in kpi_rows(kpis)]
[('network', None, 75.0), ('area', 'a1', 100.0)]
>>> [ln for ln in prometheus_text(kpis).splitlines() if ln.startswith("netgis_units ")
...  or ln.startswith("netgis_units{")]
['netgis_units 4', 'netgis_units{area_id="a1",area_name="North"} 2']
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from netgis.errors import Problem, ValidationError
from netgis.schema import (
    CAPACITY_KPI_FIELDS,
    CAPACITY_KPIS,
    KPI_BY_NAME,
    KPI_FIELDS,
    NETWORK_KPIS,
    KpiField,
)

#: Columns of a KPI row, in CSV order.
ROW_COLUMNS: tuple[str, ...] = ("scope", "area_id", "name", *NETWORK_KPIS)
#: The same when the KPIs carry the capacity KPIs of strand layers (docs/strands.md).
CAPACITY_ROW_COLUMNS: tuple[str, ...] = (*ROW_COLUMNS, *CAPACITY_KPIS)
#: KPIs that are whole numbers (everything else is a float).
INT_KEYS = frozenset(f.name for f in (*KPI_FIELDS, *CAPACITY_KPI_FIELDS) if f.type == "int")


def has_capacity(kpis: Mapping[str, Any]) -> bool:
    """Whether ``kpis`` carry the capacity KPIs (a dataset with strand layers)."""
    network = kpis.get("network") or {}
    return any(k in network for k in CAPACITY_KPIS)


def row_columns(kpis: Mapping[str, Any]) -> tuple[str, ...]:
    """The CSV columns of ``kpis``: the capacity KPIs last, only when they are there."""
    return CAPACITY_ROW_COLUMNS if has_capacity(kpis) else ROW_COLUMNS
NETWORK_SCOPE = "network"
AREA_SCOPE = "area"

METRIC_PREFIX = "netgis_"
#: Label of an area's samples (the network's carry none), as the JSON and CSV feeds name them.
AREA_LABELS = ("area_id", "area_name")
_DAYS_PER_MONTH = 365.2425 / 12


# --------------------------------------------------------------------------- rows and CSV


def kpi_rows(kpis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per scope (network first, then the areas), columns :data:`ROW_COLUMNS`.

    Examples
    --------
    >>> rows = kpi_rows({"network": {"coverage_pct": None}, "areas": []})
    >>> rows[0]["scope"], rows[0]["coverage_pct"], rows[0]["spof_spans"]
    ('network', None, None)
    """
    if "network" not in kpis:
        raise ValidationError([Problem("kpis", None, "network",
                                       "a KPI object needs a 'network' member")])
    network = kpis["network"]
    keys = row_columns(kpis)[3:]
    rows = [{"scope": NETWORK_SCOPE, "area_id": None, "name": None,
             **{k: network.get(k) for k in keys}}]
    for area in kpis.get("areas") or []:
        rows.append({"scope": AREA_SCOPE, "area_id": area.get("area_id"),
                     "name": area.get("name"), **{k: area.get(k) for k in keys}})
    return rows


def _csv_cell(value: Any, *, count: bool = False) -> str:
    if value is None:
        return ""
    if count and not isinstance(value, bool):
        # a count read back from JSON or summed by pandas may be a float: 12.0 is written 12
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # repr is the shortest text that reads back as the same float
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def kpis_csv(kpis: Mapping[str, Any]) -> str:
    """The KPI rows as CSV text with a header line; null is an empty cell.

    Examples
    --------
    >>> text = kpis_csv({"network": {"units_total": 3, "coverage_pct": 50.0}})
    >>> text.splitlines()[1][:20]
    'network,,,,3,,,50.0,'
    """
    buf = io.StringIO()
    # CRLF as RFC 4180 asks; it also makes the writer quote cells holding a bare CR
    writer = csv.writer(buf, lineterminator="\r\n")
    columns = row_columns(kpis)
    writer.writerow(columns)
    for row in kpi_rows(kpis):
        writer.writerow([_csv_cell(row[c], count=c in INT_KEYS) for c in columns])
    return buf.getvalue()


def read_kpis_csv(text: str) -> list[dict[str, Any]]:
    """Parse :func:`kpis_csv` output back into rows with typed values (the inverse).

    Examples
    --------
    >>> kpis = {"network": {"units_total": 3, "coverage_pct": 1 / 3}}
    >>> read_kpis_csv(kpis_csv(kpis)) == kpi_rows(kpis)
    True
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = CAPACITY_ROW_COLUMNS if all(c in (reader.fieldnames or [])
                                          for c in CAPACITY_KPIS) else ROW_COLUMNS
    missing = [c for c in ROW_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError([Problem("kpis", None, c, "column missing from the CSV header")
                               for c in missing])
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for line in reader:
        row: dict[str, Any] = {}
        for col in columns:
            cell = line[col]
            if cell == "" or col in ("scope", "area_id", "name"):
                row[col] = cell or None
                continue
            try:
                row[col] = int(cell) if col in INT_KEYS else float(cell)
            except ValueError:
                problems.append(Problem("kpis", line["area_id"] or line["scope"], col,
                                        f"not a {'whole ' if col in INT_KEYS else ''}"
                                        f"number: {cell!r}"))
        rows.append(row)
    if problems:
        raise ValidationError(problems)
    return rows


# ----------------------------------------------------------------------------- Prometheus


@dataclass(frozen=True)
class MetricFamily:
    """One gauge: its name, help text and ``(labels, value)`` samples (no null values)."""

    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


@dataclass(frozen=True)
class PrometheusKpi:
    """How one KPI is exposed to Prometheus: metric name, factor to base units, help text."""

    key: str
    name: str
    multiplier: float
    divisor: float
    help: str

    def to_base(self, value: float) -> float:
        """``value`` (in the KPI's unit) in the metric's base unit."""
        return value * self.multiplier / self.divisor


def prometheus_kpi(kpi: KpiField) -> PrometheusKpi:
    """The Prometheus form of a KPI (docs/spec.md §3.7, Prometheus names).

    Prometheus wants base units: a ``_pct`` KPI becomes a ``_ratio`` (0..1), a
    ``_km`` one ``_meters``; a count drops ``_total``, which Prometheus keeps
    for counters (these gauges can go down).

    Examples
    --------
    >>> from netgis.schema import KPI_BY_NAME
    >>> [(p.name, p.to_base(93.5)) for p in map(prometheus_kpi, [KPI_BY_NAME["coverage_pct"],
    ...  KPI_BY_NAME["route_km"], KPI_BY_NAME["premises_total"]])]
    [('netgis_coverage_ratio', 0.935), ('netgis_route_meters', 93500.0), ('netgis_premises', 93.5)]
    """
    key, multiplier, divisor, unit = kpi.name, 1.0, 1.0, kpi.unit
    # the help text states the formula in the gauge's own unit: "100 * a / b" is a percent,
    # the gauge holds a / b (0.93, not 93)
    text = kpi.description.rstrip(".")
    if key.endswith("_pct"):
        key, divisor, unit = key[: -len("_pct")] + "_ratio", 100.0, "ratio 0..1"
        text = text.replace("100 * ", "").replace("Percent of ", "Share of ")
    elif key.endswith("_km"):
        key, multiplier, unit = key[: -len("_km")] + "_meters", 1000.0, "meters"
        text = text.removesuffix(", km")
    elif key.endswith("_total"):
        key = key[: -len("_total")]
    help_text = f"{text[:1].upper()}{text[1:]} (KPI {kpi.name}; unit: {unit})."
    return PrometheusKpi(kpi.name, METRIC_PREFIX + key, multiplier, divisor, help_text)


#: The Prometheus form of every KPI, in ``kpis.json`` order.
PROMETHEUS_KPIS: tuple[PrometheusKpi, ...] = tuple(prometheus_kpi(f) for f in KPI_FIELDS)
#: The capacity KPIs' gauges, exposed only for KPIs that carry them.
PROMETHEUS_CAPACITY_KPIS: tuple[PrometheusKpi, ...] = tuple(
    prometheus_kpi(f) for f in CAPACITY_KPI_FIELDS)


def metric_name(key: str) -> str:
    """The Prometheus name of a KPI key.

    Examples
    --------
    >>> metric_name("coverage_pct"), metric_name("units_total"), metric_name("cable_km")
    ('netgis_coverage_ratio', 'netgis_units', 'netgis_cable_meters')
    """
    return prometheus_kpi(KPI_BY_NAME[key]).name


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def prometheus_families(kpis: Mapping[str, Any], *,
                        data_version: int | None = None) -> list[MetricFamily]:
    """Every KPI as a gauge family in base units (:data:`PROMETHEUS_KPIS`).

    The network's sample has no label; an area's carries ``area_id`` and
    ``area_name``. Null KPIs give no sample (never NaN). With
    ``data_version`` a ``netgis_data_version`` gauge is added.

    Examples
    --------
    >>> fams = prometheus_families({"network": {"coverage_pct": 80.0, "take_rate_pct": None}})
    >>> [(f.name, f.samples) for f in fams if f.samples]
    [('netgis_coverage_ratio', [({}, 0.8)])]
    """
    rows = kpi_rows(kpis)
    families: list[MetricFamily] = []
    gauges = PROMETHEUS_KPIS + (PROMETHEUS_CAPACITY_KPIS if has_capacity(kpis) else ())
    for kpi in gauges:
        fam = MetricFamily(kpi.name, kpi.help)
        for row in rows:
            value = _number(row[kpi.key])
            if value is None:
                continue
            labels = {} if row["scope"] == NETWORK_SCOPE else {
                "area_id": str(row["area_id"]), "area_name": str(row["name"] or "")}
            # int() first: a count stays exact; a ratio is the one rounding of value / 100
            scaled = float(int(value)) if kpi.key in INT_KEYS else kpi.to_base(value)
            fam.samples.append((labels, scaled))
        families.append(fam)
    if data_version is not None:
        families.append(MetricFamily(
            METRIC_PREFIX + "data_version", "Data version the KPIs describe (grows with writes).",
            [({}, float(data_version))]))
    return families


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def prometheus_text(kpis: Mapping[str, Any], *, data_version: int | None = None) -> str:
    """The KPIs in the Prometheus text exposition format (version 0.0.4).

    Examples
    --------
    >>> text = prometheus_text({"network": {"coverage_pct": 80.5}})
    >>> [line for line in text.splitlines() if line.startswith("netgis_coverage")]
    ['netgis_coverage_ratio 0.805']
    """
    lines: list[str] = []
    for fam in prometheus_families(kpis, data_version=data_version):
        help_text = fam.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {fam.name} {help_text}")
        lines.append(f"# TYPE {fam.name} gauge")
        for labels, value in fam.samples:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
                lines.append(f"{fam.name}{{{inner}}} {_format_value(value)}")
            else:
                lines.append(f"{fam.name} {_format_value(value)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ goal view


@dataclass(frozen=True)
class Goal:
    """A coverage target: ``target_pct`` percent of units passed by ``target_date``.

    Examples
    --------
    >>> Goal().target_pct, Goal().target_date.isoformat()
    (100.0, '2030-12-31')
    """

    target_pct: float = 100.0
    target_date: date = date(2030, 12, 31)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target_pct) and 0 < self.target_pct <= 100):
            raise ValidationError([Problem("parameters", None, "target_pct",
                                           f"must lie in (0, 100], got {self.target_pct}")])


def _as_datetime(value: Any) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(when, datetime):
        raise ValidationError([Problem("kpi_snapshots", None, "taken_at",
                                       f"not a date-time: {value!r}")])
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


#: How a note says there is no pace (the dashboard's summary reads it as a sentence).
_NO_PACE = "Not enough history yet to estimate a pace:"
#: Days of KPI history the goal view's pace is measured over, by default.
DEFAULT_PACE_WINDOW_DAYS = 365
#: Least time between the first and last snapshot of the window for a pace to be given:
#: two snapshots seconds apart (a load, then a fix) say nothing about a yearly build pace.
DEFAULT_MIN_SPAN_DAYS = 28.0


@dataclass(frozen=True)
class Pace:
    """The build pace measured over a window of KPI snapshots.

    ``units_per_month`` is the least-squares slope of ``units_passed`` over
    ``taken_at`` of the snapshots taken from ``start`` to ``end`` (null when
    there are fewer than two or they span less than ``min_span_days``:
    ``note`` then says why). ``span_days`` is the time from the first to
    the last snapshot used.
    """

    units_per_month: float | None
    window_days: int
    start: datetime
    end: datetime
    snapshots: int
    span_days: float
    note: str | None


def _day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def pace_over_window(history: Sequence[Mapping[str, Any]], *, as_of: date,
                     window_days: int = DEFAULT_PACE_WINDOW_DAYS,
                     min_span_days: float = DEFAULT_MIN_SPAN_DAYS) -> Pace:
    """Units passed per month over the snapshots of the ``window_days`` days up to ``as_of``.

    The window ends at the end of ``as_of`` (UTC) and starts ``window_days``
    days before; snapshots outside it are ignored.

    Examples
    --------
    >>> hist = [{"taken_at": "2025-01-01T00:00:00+00:00", "units_passed": 10},
    ...         {"taken_at": "2025-07-02T12:00:00+00:00", "units_passed": 16},
    ...         {"taken_at": "2026-01-01T00:00:00+00:00", "units_passed": 22}]
    >>> pace = pace_over_window(hist, as_of=date(2026, 1, 1), window_days=366)
    >>> round(pace.units_per_month, 2), pace.snapshots, pace.span_days
    (1.0, 3, 365.0)
    >>> pace_over_window(hist, as_of=date(2026, 1, 1)).snapshots  # 2025-01-01 is 366 days back
    2
    >>> pace_over_window(hist[-1:], as_of=date(2026, 1, 1)).note.split(": ")[1]
    'needs at least 2 KPI snapshots in the 365 days up to 2026-01-01, has 1'
    """
    if window_days < 1:
        raise ValidationError([Problem("parameters", None, "window_days",
                                       f"must be at least 1, got {window_days}")])
    end = _day_end(as_of)
    start = end - timedelta(days=window_days)
    usable = sorted((t, float(u)) for t, u in (
        (_as_datetime(h["taken_at"]), h.get("units_passed")) for h in history)
        if u is not None and start <= t < end)
    span = (usable[-1][0] - usable[0][0]).total_seconds() / 86400.0 if usable else 0.0

    def without(note: str) -> Pace:
        return Pace(None, window_days, start, end, len(usable), span, note)

    if len(usable) < 2:
        return without(f"{_NO_PACE} needs at least 2 KPI snapshots in the {window_days} days "
                       f"up to {as_of.isoformat()}, has {len(usable)}")
    if span < min_span_days:
        have = "less than a day" if span < 1 else \
            f"{span:.0f} day{'' if round(span) == 1 else 's'}"
        return without(f"{_NO_PACE} needs {min_span_days:g} days of KPI snapshots, has {have}")
    t0 = usable[0][0]
    months = np.asarray([(t - t0).total_seconds() / 86400.0 / _DAYS_PER_MONTH for t, _ in usable])
    units = np.asarray([u for _, u in usable])
    spread = months - months.mean()
    slope = float((spread * (units - units.mean())).sum()) / float((spread**2).sum())
    return Pace(round(slope, 9), window_days, start, end, len(usable), span, None)


def goal_progress(
    kpis: Mapping[str, Any],
    *,
    goal: Goal | None = None,
    as_of: date,
    history: Mapping[str | None, Sequence[Mapping[str, Any]]] | None = None,
    window_days: int = DEFAULT_PACE_WINDOW_DAYS,
    min_span_days: float = DEFAULT_MIN_SPAN_DAYS,
) -> list[dict[str, Any]]:
    """Progress of every scope (network, then areas) toward ``goal``.

    Parameters
    ----------
    kpis
        The current ``kpis.json`` object.
    goal
        Target coverage and date (default 100 % by 2030-12-31).
    as_of
        The day progress is measured on (usually today).
    history
        KPI snapshots per scope, keyed by area_id (``None`` for the network),
        each a time series of dicts with ``taken_at`` and ``units_passed`` (as
        :meth:`netgis.storage.Repository.kpi_history` returns them).
    window_days, min_span_days
        The pace is measured over the snapshots of the ``window_days`` days up
        to ``as_of`` (default 365), and only when they span at least
        ``min_span_days`` (default 28): see :func:`pace_over_window`.

    Returns
    -------
    list of dict
        Per scope: ``scope``, ``area_id``, ``name``, ``target_pct``,
        ``target_date``, ``as_of``, ``units_total``, ``units_passed``,
        ``coverage_pct``, ``target_units``, ``gap_units`` (units still to pass),
        ``months_left``, ``required_units_per_month`` (to close the gap in
        time), ``pace_units_per_month`` (slope over the window, null without
        enough history), the window (``pace_window_days``,
        ``pace_window_start``, ``pace_window_end``, ``pace_snapshots``,
        ``pace_span_days``, ``pace_note``: why there is no pace),
        ``projected_coverage_pct`` (at the target date at that pace),
        ``projected_date`` (the day the target is reached at that pace; null
        when reached already or never at that pace), ``on_track`` (gap closed,
        or pace >= required; null when unknown or when the scope has no
        units) and ``history_points`` (every snapshot of the scope).

    Examples
    --------
    >>> kpis = {"network": {"units_total": 100, "units_passed": 40, "coverage_pct": 40.0}}
    >>> hist = {None: [{"taken_at": "2025-01-01T00:00:00+00:00", "units_passed": 10},
    ...                {"taken_at": "2026-01-01T00:00:00+00:00", "units_passed": 40}]}
    >>> g = goal_progress(kpis, goal=Goal(100.0, date(2027, 1, 1)), as_of=date(2026, 1, 1),
    ...                   history=hist, window_days=366)[0]
    >>> g["gap_units"], round(g["required_units_per_month"], 1), round(g["pace_units_per_month"], 1)
    (60, 5.0, 2.5)
    >>> g["on_track"], g["projected_date"], g["pace_snapshots"]
    (False, '2028-01-01', 2)
    """
    goal = goal or Goal()
    history = history or {}
    months_left = (goal.target_date - as_of).days / _DAYS_PER_MONTH
    out: list[dict[str, Any]] = []
    for row in kpi_rows(kpis):
        units_total = int(row["units_total"] or 0)
        units_passed = int(row["units_passed"] or 0)
        target_units = math.ceil(goal.target_pct * units_total / 100.0 - 1e-9)
        gap = max(0, target_units - units_passed)
        series = history.get(row["area_id"] if row["scope"] == AREA_SCOPE else None, ())
        measured = pace_over_window(series, as_of=as_of, window_days=window_days,
                                    min_span_days=min_span_days)
        pace = measured.units_per_month
        if gap == 0:
            required: float | None = 0.0
        else:
            required = gap / months_left if months_left > 0 else None
        projected = None
        if pace is not None and units_total > 0:
            at_target = units_passed + pace * max(months_left, 0.0)
            projected = min(100.0, max(0.0, 100.0 * at_target / units_total))
        projected_date = None
        if gap > 0 and pace is not None and pace > 0:
            days = gap / pace * _DAYS_PER_MONTH
            # beyond date.max the target is never reached in any calendar we can print
            if days < (date.max - as_of).days:
                projected_date = (as_of + timedelta(days=math.ceil(days))).isoformat()
        on_track: bool | None
        if units_total == 0:
            on_track = None
        elif gap == 0:
            on_track = True
        elif months_left <= 0:
            on_track = False
        elif pace is None or required is None:
            on_track = None
        else:
            on_track = pace >= required
        out.append({
            "scope": row["scope"], "area_id": row["area_id"], "name": row["name"],
            "target_pct": goal.target_pct, "target_date": goal.target_date.isoformat(),
            "as_of": as_of.isoformat(), "units_total": units_total,
            "units_passed": units_passed, "coverage_pct": row["coverage_pct"],
            "target_units": target_units, "gap_units": gap, "months_left": months_left,
            "required_units_per_month": required, "pace_units_per_month": pace,
            "pace_window_days": measured.window_days,
            "pace_window_start": measured.start.isoformat(),
            "pace_window_end": measured.end.isoformat(),
            "pace_snapshots": measured.snapshots, "pace_span_days": measured.span_days,
            "pace_note": measured.note,
            "projected_coverage_pct": projected, "projected_date": projected_date,
            "on_track": on_track, "history_points": len(series),
        })
    return out
