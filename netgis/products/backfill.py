"""A new installation's coverage history, estimated from the spans' ``install_year``.

A database starts its KPI history on the day it is loaded: the dashboard of a new
installation shows one dot. The plant itself knows more: each span may record the year
it was installed. For each past year *Y*, :func:`estimate_history` analyses the plant
with only the spans installed by the end of *Y* in service, and gives its KPIs as they
would have been on 31 December of *Y*, marked as an estimate.

The rules (docs/feeds.md, "Estimated history"):

- a span in service today with an ``install_year`` after *Y* is not in service in *Y*;
  one without an ``install_year`` is taken as in service all along (the answer counts
  them: ``spans_unknown_year``); planned and retired spans are never in service;
- nodes and premises record no year: today's nodes and premises stand in every year,
  so coverage is of today's units;
- the years run from the first ``install_year`` of a span in service to the last year
  that ends before ``before`` (the first measured snapshot, or now); years in which no
  span was installed repeat the year before without another analysis.

Examples
--------
>>> from datetime import UTC, datetime
>>> from netgis.generate import generate_city
>>> history = estimate_history(generate_city(premises=300, seed=1),
...                            before=datetime(2026, 1, 1, tzinfo=UTC))
>>> history.points[0].year, history.points[-1].year
(2004, 2025)
>>> history.points[0].kpis["network"]["coverage_pct"] < history.points[-1].kpis[
...     "network"]["coverage_pct"]
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from netgis.errors import Problem, ValidationError
from netgis.schema import DEFAULT_DROP_M, IN_SERVICE

if TYPE_CHECKING:
    from netgis.dataset import Dataset

#: What an estimated point is estimated from, as the KPI feeds and the dashboard say it.
ESTIMATE_BASIS = "install_year"
#: The status a span not yet installed in a past year is analysed with.
_NOT_YET = "planned"


@dataclass(frozen=True)
class EstimatedPoint:
    """The KPIs of the plant as it stood at the end of ``year`` (``taken_at``: 31 December
    of it, 00:00 UTC). ``kpis`` has the ``kpis.json`` shape plus ``drop_m`` and
    ``estimate`` (``basis``, ``year``, ``spans_in_service``)."""

    year: int
    taken_at: datetime
    kpis: dict[str, Any]


@dataclass(frozen=True)
class EstimatedHistory:
    """The estimated points, oldest first, and what they rest on."""

    points: list[EstimatedPoint] = field(default_factory=list)
    #: spans in service today without an ``install_year`` (taken as in service all along)
    spans_unknown_year: int = 0
    #: spans in service today with an ``install_year``
    spans_with_year: int = 0
    #: analyses run (one per year in which spans were installed)
    analyses: int = 0

    def summary(self) -> dict[str, Any]:
        """Plain numbers for the command line: years, counts, coverage per year."""
        return {
            "years": [p.year for p in self.points],
            "coverage_pct": {str(p.year): p.kpis["network"].get("coverage_pct")
                             for p in self.points},
            "spans_with_year": self.spans_with_year,
            "spans_unknown_year": self.spans_unknown_year,
            "analyses": self.analyses,
        }


def year_end(year: int) -> datetime:
    """The instant an estimated point of ``year`` stands at: 31 December, 00:00 UTC.

    Examples
    --------
    >>> year_end(2019).isoformat()
    '2019-12-31T00:00:00+00:00'
    """
    return datetime(year, 12, 31, tzinfo=UTC)


def estimate_history(dataset: Dataset, *, drop_m: float = DEFAULT_DROP_M,
                     before: datetime | None = None) -> EstimatedHistory:
    """The KPIs at the end of every past year, from the spans' ``install_year``.

    Parameters
    ----------
    dataset
        The plant as it is today.
    drop_m
        The drop length of the analyses (the server's, for its history).
    before
        Only years whose end (:func:`year_end`) is before this instant: the first
        measured snapshot of the history, or now (default).

    Returns
    -------
    EstimatedHistory
        No point when no span in service records an ``install_year``.
    """
    from netgis.engine.analysis import analyze

    cutoff = before or datetime.now(UTC)
    if cutoff.tzinfo is None:
        raise ValidationError([Problem("kpi_snapshots", None, "taken_at",
                                       "before must be an aware date-time")])
    spans = dataset.spans
    in_service = (spans["status"] == IN_SERVICE).to_numpy(dtype=bool)
    years = spans["install_year"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    known = in_service & np.isfinite(years)
    out = EstimatedHistory(spans_unknown_year=int((in_service & ~known).sum()),
                           spans_with_year=int(known.sum()))
    if not known.any():
        return out
    first = int(years[known].min())
    last = cutoff.year if year_end(cutoff.year) < cutoff else cutoff.year - 1
    # the strand layers describe today's glass: the estimate is of the route alone
    base = replace(dataset, strands={}, strand_index=None)
    points: list[EstimatedPoint] = []
    previous: tuple[bytes, Mapping[str, Any]] | None = None
    analyses = 0
    for year in range(first, last + 1):
        later = known & (years > year)
        key = later.tobytes()
        if previous is None or previous[0] != key:
            status = spans["status"].where(~later, _NOT_YET)
            result = analyze(replace(base, spans=spans.assign(status=status)), drop_m=drop_m)
            previous = (key, result.kpis)
            analyses += 1
        kpis = {**previous[1], "drop_m": float(drop_m),
                "estimate": {"basis": ESTIMATE_BASIS, "year": year,
                             "spans_in_service": int((in_service & ~later).sum())}}
        points.append(EstimatedPoint(year=year, taken_at=year_end(year), kpis=kpis))
    return replace(out, points=points, analyses=analyses)
