"""KPI feeds: the ``kpis.json`` object as table rows, CSV, Prometheus text and a goal view.

Everything here is pure: a KPI dict (the shape of :attr:`netgis.analysis.Analysis.kpis`)
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
>>> print([ln for ln in prometheus_text(kpis).splitlines() if ln.startswith("netgis_units")][0])
netgis_units{scope="network",area="",area_name=""} 4
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from netgis.errors import Problem, ValidationError
from netgis.schema import KPI_FIELDS, NETWORK_KPIS

#: Columns of a KPI row, in CSV order.
ROW_COLUMNS: tuple[str, ...] = ("scope", "area_id", "name", *NETWORK_KPIS)
#: KPIs that are whole numbers (everything else is a float).
INT_KEYS = frozenset(f.name for f in KPI_FIELDS if f.type == "int")
NETWORK_SCOPE = "network"
AREA_SCOPE = "area"

#: Prometheus help text of each KPI (the metric name is :func:`metric_name` of the key).
KPI_HELP: dict[str, str] = {f.name: f.description for f in KPI_FIELDS}
METRIC_PREFIX = "netgis_"
_LABELS = ("scope", "area", "area_name")
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
    rows = [{"scope": NETWORK_SCOPE, "area_id": None, "name": None,
             **{k: network.get(k) for k in NETWORK_KPIS}}]
    for area in kpis.get("areas") or []:
        rows.append({"scope": AREA_SCOPE, "area_id": area.get("area_id"),
                     "name": area.get("name"), **{k: area.get(k) for k in NETWORK_KPIS}})
    return rows


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
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
    writer.writerow(ROW_COLUMNS)
    for row in kpi_rows(kpis):
        writer.writerow([_csv_cell(row[c]) for c in ROW_COLUMNS])
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
    missing = [c for c in ROW_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError([Problem("kpis", None, c, "column missing from the CSV header")
                               for c in missing])
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for line in reader:
        row: dict[str, Any] = {}
        for col in ROW_COLUMNS:
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


def metric_name(key: str) -> str:
    """The Prometheus name of a KPI key.

    ``_total`` is reserved for counters in Prometheus, so ``premises_total`` and
    ``units_total`` (gauges that can go down) drop that suffix.

    Examples
    --------
    >>> metric_name("coverage_pct"), metric_name("units_total")
    ('netgis_coverage_pct', 'netgis_units')
    """
    base = key[: -len("_total")] if key.endswith("_total") else key
    return METRIC_PREFIX + base


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def prometheus_families(kpis: Mapping[str, Any], *,
                        data_version: int | None = None) -> list[MetricFamily]:
    """Every KPI as a gauge family labelled ``scope``, ``area``, ``area_name``.

    The network has ``scope="network", area="", area_name=""``; an area has
    ``scope="area"`` and its id and name. Null KPIs give no sample (never NaN).
    With ``data_version`` a ``netgis_data_version`` gauge is added.

    Examples
    --------
    >>> fams = prometheus_families({"network": {"coverage_pct": 80.0, "take_rate_pct": None}})
    >>> [(f.name, len(f.samples)) for f in fams if f.samples]
    [('netgis_coverage_pct', 1)]
    """
    rows = kpi_rows(kpis)
    families: list[MetricFamily] = []
    for key in NETWORK_KPIS:
        fam = MetricFamily(metric_name(key), KPI_HELP[key])
        for row in rows:
            value = _number(row[key])
            if value is None:
                continue
            labels = {"scope": row["scope"],
                      "area": "" if row["area_id"] is None else str(row["area_id"]),
                      "area_name": "" if row["name"] is None else str(row["name"])}
            fam.samples.append((labels, value))
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
    ['netgis_coverage_pct{scope="network",area="",area_name=""} 80.5']
    """
    lines: list[str] = []
    for fam in prometheus_families(kpis, data_version=data_version):
        help_text = fam.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {fam.name} {help_text}")
        lines.append(f"# TYPE {fam.name} gauge")
        for labels, value in fam.samples:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(labels[k])}"' for k in _LABELS
                                 if k in labels)
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


def pace_units_per_month(history: Sequence[Mapping[str, Any]]) -> float | None:
    """Least-squares slope of ``units_passed`` over ``taken_at``, in units per month.

    ``None`` with fewer than two snapshots at distinct times (no pace is known).

    Examples
    --------
    >>> pace = pace_units_per_month([
    ...     {"taken_at": "2025-01-01T00:00:00+00:00", "units_passed": 10},
    ...     {"taken_at": "2026-01-01T00:00:00+00:00", "units_passed": 22}])
    >>> round(pace, 2)
    1.0
    """
    points = [(_as_datetime(h["taken_at"]), h.get("units_passed")) for h in history]
    usable = [(t, float(u)) for t, u in points if u is not None]
    if len(usable) < 2:
        return None
    t0 = usable[0][0]
    months = np.asarray([(t - t0).total_seconds() / 86400.0 / _DAYS_PER_MONTH for t, _ in usable])
    units = np.asarray([u for _, u in usable])
    spread = months - months.mean()
    denom = float((spread**2).sum())
    if denom == 0.0:
        return None
    slope = float((spread * (units - units.mean())).sum()) / denom
    return round(slope, 9)


def goal_progress(
    kpis: Mapping[str, Any],
    *,
    goal: Goal | None = None,
    as_of: date,
    history: Mapping[str | None, Sequence[Mapping[str, Any]]] | None = None,
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

    Returns
    -------
    list of dict
        Per scope: ``scope``, ``area_id``, ``name``, ``target_pct``,
        ``target_date``, ``as_of``, ``units_total``, ``units_passed``,
        ``coverage_pct``, ``target_units``, ``gap_units`` (units still to pass),
        ``months_left``, ``required_units_per_month`` (to close the gap in
        time), ``pace_units_per_month`` (history slope, null without two
        snapshots), ``projected_coverage_pct`` (at the target date at that
        pace), ``on_track`` (gap closed, or pace >= required; null when
        unknown or when the scope has no units) and ``history_points``.

    Examples
    --------
    >>> kpis = {"network": {"units_total": 100, "units_passed": 40, "coverage_pct": 40.0}}
    >>> hist = {None: [{"taken_at": "2025-01-01T00:00:00+00:00", "units_passed": 10},
    ...                {"taken_at": "2026-01-01T00:00:00+00:00", "units_passed": 40}]}
    >>> g = goal_progress(kpis, goal=Goal(100.0, date(2027, 1, 1)), as_of=date(2026, 1, 1),
    ...                   history=hist)[0]
    >>> g["gap_units"], round(g["required_units_per_month"], 1), round(g["pace_units_per_month"], 1)
    (60, 5.0, 2.5)
    >>> g["on_track"]
    False
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
        pace = pace_units_per_month(series)
        if gap == 0:
            required: float | None = 0.0
        else:
            required = gap / months_left if months_left > 0 else None
        projected = None
        if pace is not None and units_total > 0:
            at_target = units_passed + pace * max(months_left, 0.0)
            projected = min(100.0, max(0.0, 100.0 * at_target / units_total))
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
            "projected_coverage_pct": projected, "on_track": on_track,
            "history_points": len(series),
        })
    return out
