"""Commands that make pages or serve them: ``map``, ``report`` and ``serve``."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated, Any

import typer

from netgis.cli.common import (
    DatasetArg,
    DropOpt,
    _analyze,
    _database_url,
    _echo_json,
    _echo_warnings,
    _load,
    _progress,
    _split,
    app,
)
from netgis.cli.db import DatabaseUrlOpt
from netgis.schema import (
    DEFAULT_CRITICAL_TOP,
    DEFAULT_DROP_M,
    DEFAULT_HEX_RESOLUTION,
    DEFAULT_MAX_FEATURES,
    DEFAULT_REACH_M,
    MAP_KINDS,
)


@app.command("map")
def map_(
    kind: Annotated[str, typer.Argument(help=f"{', '.join(MAP_KINDS)} or bead.")],
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    drop_m: DropOpt = DEFAULT_DROP_M,
    tiles: Annotated[str | None, typer.Option(
        "--tiles", envvar="NETGIS_TILES_URL",
        help="XYZ tile URL of the base map ({z}/{x}/{y}); none by default.")] = None,
    tiles_attribution: Annotated[str, typer.Option(help="Attribution of the tiles.")] = "",
    max_features: Annotated[int, typer.Option(help="Roll up into H3 hexagons above this "
                                              "many features.")] =
    DEFAULT_MAX_FEATURES,
    hex_res: Annotated[int, typer.Option("--hex-res", help="H3 resolution of rolled-up "
                                         "premises.")] =
    DEFAULT_HEX_RESOLUTION,
    cut_spans: Annotated[list[str] | None, typer.Option(
        "--cut-spans", help="criticality: a scenario's span_id(s), comma-separated.")] = None,
    fail_nodes: Annotated[list[str] | None, typer.Option("--fail-nodes")] = None,
    fail_ducts: Annotated[list[str] | None, typer.Option("--fail-ducts")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="criticality: draw this many of the "
                                     "worst spans, and of the worst nodes.")] =
    DEFAULT_CRITICAL_TOP,
    availability: Annotated[list[Path] | None, typer.Option(
        "--availability", help="bead: FCC BDC availability CSV (repeat for several).")] = None,
    locations: Annotated[Path | None, typer.Option(
        "--locations", help="bead: Fabric-style CSV or a point layer with location_id.")] =
    None,
    reach_m: Annotated[float, typer.Option(
        "--reach-m", help="bead: unpassed locations within this many meters of a lit span "
                          "count as reachable.")] = DEFAULT_REACH_M,
) -> None:
    """Write a KIND map of DATASET as one self-contained HTML page (no CDN, works offline)."""
    if kind not in (*MAP_KINDS, "bead"):
        raise typer.BadParameter(f"KIND must be one of {', '.join(MAP_KINDS)} or bead, not "
                                 f"{kind!r}")
    if kind == "bead" and (not availability or locations is None):
        raise typer.BadParameter("a bead map needs --availability and --locations")
    from netgis import maps
    from netgis.engine.analysis import scenario as run_scenario
    from netgis.io import atomic_file

    with _progress() as step:
        result = _analyze(dataset, False, drop_m, step)
    impact = None
    failed = (_split(cut_spans), _split(fail_nodes), _split(fail_ducts))
    if kind == "criticality" and any(failed):
        impact = run_scenario(result, spans=failed[0], nodes=failed[1], ducts=failed[2])
    ranking = None
    if kind == "gaps":
        from netgis.products.gaps import gap_analysis

        ranking = gap_analysis(result).plan.clusters
    if kind == "bead":
        from netgis.maps.bead import bead_map
        from netgis.products.bead import bead

        assert availability and locations is not None  # checked above
        answer = bead(result.lit_spans, availability, locations, drop_m=drop_m,
                      reach_m=reach_m)
        m = bead_map(answer, spans=result.spans, tiles_url=tiles,
                     tiles_attribution=tiles_attribution, max_features=max_features)
    else:
        m = maps.build_map(kind, result, scenario=impact, ranking=ranking, top=top,
                           hex_resolution=hex_res if kind != "gaps" else None,
                           tiles_url=tiles, tiles_attribution=tiles_attribution,
                           max_features=max_features)
    html = maps.inline_html(m)
    # written beside the target and renamed: a reader never sees half a page
    with atomic_file(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    _echo_json({"map": kind, "out": str(out), "bytes": len(html.encode("utf-8"))})


@app.command()
def report(
    dataset: Annotated[Path | None, typer.Argument(
        help="A .gpkg file or directory of layer files (omit with --db).")] = None,
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write (self-contained, "
                                      "printable).")] = Path("report.html"),
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the report as PDF beside "
                                      "it (OUT with the suffix .pdf).")] = False,
    db: Annotated[bool, typer.Option("--db", help="Read the data and its KPI history from the "
                                     "database (NETGIS_DATABASE_URL, default ./netgis.db).")]
    = False,
    area_id: Annotated[str | None, typer.Option("--area-id", help="Narrow the report to one "
                                                "area.")] = None,
    drop_m: DropOpt = DEFAULT_DROP_M,
    goal_pct: Annotated[float, typer.Option(
        "--goal-pct", envvar="NETGIS_GOAL_COVERAGE_PCT", help="Coverage target, percent of "
        "units passed.")] = 100.0,
    goal_date: Annotated[str, typer.Option(
        "--goal-date", envvar="NETGIS_GOAL_DATE", help="Day the target should be reached "
        "(YYYY-MM-DD).")] = "2030-12-31",
    window_days: Annotated[int, typer.Option(
        "--window-days", envvar="NETGIS_GOAL_WINDOW_DAYS", min=1,
        help="Days of KPI history the pace is measured over.")] = 365,
    min_span_days: Annotated[float, typer.Option(
        "--min-span-days", envvar="NETGIS_GOAL_MIN_SPAN_DAYS", min=0,
        help="Least time the snapshots of the window must span for a pace.")] = 28.0,
    program_budget_per_year: Annotated[float | None, typer.Option(
        "--program-budget-per-year", envvar="NETGIS_PROGRAM_BUDGET_PER_YEAR", min=0,
        help="Draw the build programme at this budget per year beside the actual coverage "
             "(`netgis program`; the network, not with --area-id).")] = None,
) -> None:
    """Write the coverage progress report (the content of /dashboard) as one printable HTML
    file, with a plain-words summary; --pdf also prints it to PDF.

    From a dataset file there is no KPI history (the summary says so); with --db the
    history is the database's KPI snapshots (GET /kpis/history), at the database's
    drop length.
    """
    from datetime import date

    from netgis.engine.analysis import analyze as run_analysis
    from netgis.io import atomic_file
    from netgis.maps.dashboard import report_html, report_pdf
    from netgis.products.feeds import Goal
    from netgis.products.progress import build_dashboard, ranked_clusters, summary

    try:
        goal = Goal(goal_pct, date.fromisoformat(goal_date))
    except ValueError as exc:
        raise typer.BadParameter(f"--goal-date: {exc}") from None
    if dataset is None and not db:
        raise typer.BadParameter("give a DATASET or --db")
    history: list[dict[str, Any]] | None = None
    version: int | None = None
    with _progress() as step:
        if db:
            from netgis.storage import Repository

            with Repository.from_url(_database_url()) as repo:
                version, ds = repo.read_consistent()
                history = repo.kpi_history(area_id=area_id)
            result = run_analysis(ds, drop_m=drop_m, progress=step)
        else:
            assert dataset is not None
            ds = _load(dataset, False)
            result = run_analysis(ds, drop_m=drop_m, progress=step)
    _echo_warnings(ds.warnings, result.warnings)
    program = None
    if program_budget_per_year is not None and area_id is None:
        from netgis.products.program import MAX_YEARS, run_program

        next_year = date.today().year + 1
        program = run_program(ds, budget_per_year=program_budget_per_year,
                              start_year=next_year, goal_pct=goal_pct, drop_m=drop_m,
                              max_years=min(MAX_YEARS, max(1, goal.target_date.year
                                                           - next_year + 6)))
    board = build_dashboard(result, history=history, goal=goal, area_id=area_id,
                            clusters=ranked_clusters(result), window_days=window_days,
                            min_span_days=min_span_days, data_version=version,
                            program=program)
    html = report_html(board)
    document = report_pdf(html) if pdf else None
    pdf_path = out.with_suffix(".pdf")
    # each file written beside its target and renamed: no half-written report
    with atomic_file(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    if document is not None:
        with atomic_file(pdf_path) as tmp:
            tmp.write_bytes(document)
    _echo_json({"out": str(out), "pdf": str(pdf_path) if document is not None else None,
                "area_id": area_id, "data_version": version, "summary": summary(board)})


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database_url: DatabaseUrlOpt = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (uvicorn). They share the analysis results stored in "
                    "the database, so each need not compute them.")] = 1,
    basemap: Annotated[Path | None, typer.Option(
        "--basemap", help="MBTiles or PMTiles file served as the maps' base map "
                          "(/basemap.json, docs/basemap.md); default NETGIS_BASEMAP.")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(
        "--ssl-certfile", envvar="NETGIS_SSL_CERTFILE", exists=True, dir_okay=False,
        help="Serve https: the server's certificate chain (PEM), with its key unless "
             "--ssl-keyfile is given (docs/deploy.md).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(
        "--ssl-keyfile", envvar="NETGIS_SSL_KEYFILE", exists=True, dir_okay=False,
        help="The private key (PEM, unencrypted) of --ssl-certfile.")] = None,
) -> None:
    """Serve the HTTP API (OGC API - Features, analysis, KPI feeds) on HOST:PORT; Ctrl-C stops.

    With --ssl-certfile it serves https, and every response says Strict-Transport-Security
    (NETGIS_HSTS_MAX_AGE). Behind a reverse proxy, set NETGIS_FORWARDED_ALLOW_IPS to its
    address so that its X-Forwarded-* headers count.
    """
    import os

    import uvicorn

    from netgis.api.app import create_app
    from netgis.api.server import configure, uvicorn_options
    from netgis.api.settings import Settings

    # NETGIS_* settings come from the environment; --database-url and --basemap win over it
    given: dict[str, Any] = {"database_url": database_url, "basemap": basemap}
    settings = Settings(**{k: v for k, v in given.items() if v is not None})
    tls = _tls_options(ssl_certfile, ssl_keyfile)
    # the URLs below only once the port is known to be free: not before "address in use"
    _check_port(host, port)
    base = f"{'https' if tls else 'http'}://{host}:{port}"
    typer.echo(f"netgis serves {settings.database_url} on {base}/", err=True)
    for what, path in (("OGC API - Features", "/collections"), ("API docs", "/docs"),
                       ("coverage KPIs", "/analysis/coverage"), ("dashboard", "/dashboard"),
                       ("report", "/report"), ("health", "/health")):
        typer.echo(f"  {what:<20} {base}{path}", err=True)
    for kind in MAP_KINDS:
        typer.echo(f"  {kind + ' map':<20} {base}/maps/{kind}", err=True)
    if workers > 1:
        # each worker process builds its app from the environment (api.main)
        os.environ["NETGIS_DATABASE_URL"] = settings.database_url
        if settings.basemap is not None:
            os.environ["NETGIS_BASEMAP"] = str(settings.basemap)
        typer.echo(f"  {'workers':<20} {workers}", err=True)
        uvicorn.run("netgis.api.main:app", host=host, port=port, workers=workers,
                    **uvicorn_options(settings), **tls)
        return
    configure(settings)
    app = create_app(settings)
    # everything loaded so far lives as long as the server: kept out of the garbage
    # collector's full passes, which would rescan it while big pages (10,000 features) are built
    gc.freeze()
    uvicorn.run(app, host=host, port=port, **uvicorn_options(settings), **tls)


def _tls_options(certfile: Path | None, keyfile: Path | None) -> dict[str, Any]:
    """uvicorn's TLS options (none for plain http); exit 2 naming the problem when the
    certificate and key cannot be loaded together (checked now, not when uvicorn starts)."""
    import ssl

    if certfile is None:
        if keyfile is not None:
            typer.echo("error: --ssl-keyfile needs --ssl-certfile", err=True)
            raise typer.Exit(2)
        return {}
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        given = f"{certfile}" + (f" with key {keyfile}" if keyfile is not None else "")
        typer.echo(f"error: --ssl-certfile {given}: not a PEM certificate chain and its "
                   f"private key ({exc})", err=True)
        raise typer.Exit(2) from None
    return {"ssl_certfile": str(certfile),
            **({"ssl_keyfile": str(keyfile)} if keyfile is not None else {})}


def _check_port(host: str, port: int) -> None:
    """Exit 2 with a clear message when HOST:PORT cannot be listened on (in use, no such
    interface). A probe: uvicorn binds it again a moment later, as it always does."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            # as uvicorn does: a port left in TIME_WAIT by an earlier server is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        import errno

        why = "is already in use" if exc.errno == errno.EADDRINUSE else \
            f"cannot be listened on ({exc.strerror or exc})"
        typer.echo(f"error: {host}:{port} {why}; stop what runs there or choose another "
                   "--port", err=True)
        raise typer.Exit(2) from None
