"""``netgis kpis backfill``: a new installation's coverage history, estimated from the
spans' ``install_year`` (:mod:`netgis.products.backfill`) and stored in the database's KPI
history, marked estimated (docs/feeds.md, "Estimated history")."""

from __future__ import annotations

from typing import Any

from netgis.cli.common import _database_url, _echo_json, _echo_warnings, _progress


def backfill(*, drop_m: float, dry_run: bool = False) -> None:
    """Estimate the KPI history of the database (``NETGIS_DATABASE_URL``) before its first
    measured snapshot and store it (``dry_run``: print it only); the summary on stdout."""
    from netgis.products.backfill import estimate_history
    from netgis.storage import Repository

    repo = Repository.from_url(_database_url())
    try:
        with _progress():
            version, ds = repo.read_consistent()
            measured = [h for h in repo.kpi_history() if not h.get("estimated")]
            first = measured[0]["taken_at"] if measured else None
            history = estimate_history(ds, drop_m=drop_m, before=first)
        _echo_warnings(ds.warnings)
        out: dict[str, Any] = {"data_version": version, "drop_m": drop_m,
                               "first_measured": None if first is None else first.isoformat(),
                               **history.summary()}
        if dry_run:
            out["stored"] = False
        else:
            counts = repo.save_kpi_estimates([(p.taken_at, p.kpis) for p in history.points],
                                             data_version=version)
            out.update(stored=True, **counts)
    finally:
        repo.engine.dispose()
    _echo_json(out)
