"""Analysis commands: ``analyze``, ``scenario``, ``kpis``, ``gaps`` and ``bead``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from netgis.cli.common import (
    AttenOpt,
    BudgetOpt,
    DatasetArg,
    DropOpt,
    FixedOpt,
    PonClassOpt,
    SpliceOpt,
    _analyze,
    _budget,
    _collector_paused,
    _database_url,
    _echo_json,
    _echo_kpis,
    _echo_warnings,
    _load,
    _progress,
    _read_area,
    _split,
    _split_ratios,
    app,
)
from netgis.errors import Problem, ValidationError
from netgis.schema import (
    DEFAULT_DROP_M,
    DEFAULT_H3_RES,
    DEFAULT_LINK_M,
    DEFAULT_MAX_CLUSTER_EXTENT_M,
    DEFAULT_MAX_CLUSTER_UNITS,
    DEFAULT_PLACEMENT,
    DEFAULT_REACH_M,
    RESULT_FORMATS,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from netgis.engine.analysis import Analysis, Progress
    from netgis.engine.optics import LossBudget


FormatOpt = Annotated[str, typer.Option(
    "--format", help="csv (the contract's tables), gpkg (one GeoPackage of layers with "
                     "geometry) or parquet (one GeoParquet file per layer).")]


def _check_format(fmt: str) -> None:
    if fmt not in RESULT_FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(RESULT_FORMATS)}, not {fmt!r}",
                   err=True)
        raise typer.Exit(2)


@app.command()
def analyze(
    dataset: Annotated[Path | None, typer.Argument(help="A .gpkg file or a directory of layer "
                                                   "files (omit with --db).")] = None,
    drop_m: DropOpt = DEFAULT_DROP_M,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("netgis-out"),
    db: Annotated[bool, typer.Option("--db", help="Read the dataset from the database "
                                     "(NETGIS_DATABASE_URL, default ./netgis.db).")] = False,
    budget_db: BudgetOpt = None,
    pon_class: PonClassOpt = None,
    atten_db_per_km: AttenOpt = None,
    splice_db: SpliceOpt = None,
    fixed_db: FixedOpt = None,
    store: Annotated[bool, typer.Option(
        "--store", help="With --db: also store the results in the database's result tables "
                        "(keyed by data version and parameters), where API servers read "
                        "them.")] = False,
    keep: Annotated[int, typer.Option(
        "--keep", min=1, help="With --store: data versions whose stored results are "
                              "kept (the newest).")] = 1,
    engine: Annotated[str, typer.Option(
        "--engine", help="local (one process) or dask (premise partitions on a Dask "
                         "cluster; same outputs).")] = "local",
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Dask scheduler address (tcp://HOST:PORT); default: a local "
                            "cluster of this machine's cores. Only with --engine dask.")] = None,
    timings: Annotated[bool, typer.Option(
        "--timings", help="Print the seconds of each step on stderr.")] = False,
    stream: Annotated[bool | None, typer.Option(
        "--stream/--no-stream", help="Stream the premises in chunks (GeoParquet premises; "
                                     "memory: the network plus a few chunks) or read them "
                                     "all at once. Default: stream beyond 2 M premises.",
        show_default=False)] = None,
    fmt: FormatOpt = "csv",
) -> None:
    """Coverage, redundancy and optical reach of DATASET: KPIs on stdout, CSVs and kpis.json.

    The files go into --out (default ./netgis-out), which must be new, empty or a
    folder netgis wrote before; where they went is said on stderr. With --format gpkg or
    parquet the three tables are GIS layers with geometry instead (results.gpkg, or
    premise_results/span_results/node_results.parquet).
    """
    from netgis.engine.outputs import check_output_dir, write_outputs

    _check_format(fmt)

    if store and not db:
        typer.echo("error: --store needs --db (results are stored next to the data they "
                   "belong to)", err=True)
        raise typer.Exit(2)
    budget = _budget(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db)
    if engine not in ("local", "dask"):
        typer.echo(f"error: --engine must be local or dask, not {engine!r}", err=True)
        raise typer.Exit(2)
    if stream and (db or dataset is None or engine == "dask"):
        typer.echo("error: --stream needs a DATASET with GeoParquet premises (not --db, not "
                   "--engine dask)", err=True)
        raise typer.Exit(2)
    if fmt != "csv" and (engine == "dask" or stream):
        typer.echo(f"error: --format {fmt} needs the premises in memory (not --engine dask, "
                   "not --stream)", err=True)
        raise typer.Exit(2)
    # before any work: a folder of someone else's is refused, not overwritten
    check_output_dir(out)
    if engine == "dask" or scheduler is not None:
        if engine != "dask" or db or dataset is None:
            typer.echo("error: --scheduler needs --engine dask, and --engine dask a DATASET "
                       "(not --db)", err=True)
            raise typer.Exit(2)
        from netgis.engine.distributed import analyze_dask

        with _progress(timings) as step:
            done = analyze_dask(dataset, out, drop_m=drop_m, budget=budget,
                                scheduler=scheduler, progress=step)
        _echo_warnings(done.warnings)
        _wrote(out)
        _echo_kpis(done.kpis["network"])
        return
    if not db and dataset is not None and fmt == "csv" and (
            _streams(dataset) if stream is None else stream):
        from netgis.engine.streamed import analyze_chunked

        with _progress(timings) as step:
            done = analyze_chunked(dataset, out, drop_m=drop_m, budget=budget, progress=step)
        _echo_warnings(done.warnings)
        _wrote(out)
        _echo_kpis(done.kpis["network"])
        return
    with _progress(timings) as step, _collector_paused():
        if store:
            version, result = _analyze_stored_data(drop_m, step, budget=budget)
        else:
            result = _analyze(dataset, db, drop_m, step, budget=budget)
        step("write")
        if fmt == "csv":
            write_outputs(result, out)
            files = None
        else:
            from netgis.products.result_layers import write_analysis_layers

            files = write_analysis_layers(result, out, fmt=fmt)
        if store:
            _store_results(result, version, keep)
    _wrote(out, files)
    _echo_kpis(result.kpis["network"])


def _wrote(out: Path, files: list[str] | None = None) -> None:
    """Say on stderr where the results went (stdout holds only the KPI JSON): ``files``,
    by default the CSVs and kpis.json."""
    from netgis.schema import ANALYSIS_FILES

    shown = ", ".join(ANALYSIS_FILES if files is None else files)
    typer.echo(f"results written to {out.resolve()}: {shown}", err=True)


def _analyze_stored_data(drop_m: float, step: Progress, *,
                         budget: LossBudget | None = None) -> tuple[int, Analysis]:
    """The analysis of the database's data and the data version it belongs to."""
    from netgis.engine.analysis import analyze as run_analysis
    from netgis.storage import Repository

    with Repository.from_url(_database_url()) as repo:
        version, ds = repo.read_consistent()
    result = run_analysis(ds, drop_m=drop_m, budget=budget, progress=step)
    _echo_warnings(ds.warnings, result.warnings)
    return version, result


def _store_results(result: Analysis, version: int, keep: int) -> None:
    """Store ``result`` as the run of data version ``version``; say so on stderr."""
    from netgis.storage import Repository
    from netgis.storage.results import find_run, params_key, store_analysis

    with Repository.from_url(_database_url()) as repo:
        repo.init()  # the result tables of a database loaded before they existed
        run_id = store_analysis(repo.engine, result, data_version=version, keep=keep)
        if run_id is None:
            run = find_run(repo.engine, version, params_key(result.drop_m, result.budget))
            typer.echo(f"results of data version {version} were stored already"
                       + (f" (run {run.run_id})" if run is not None else ""), err=True)
        else:
            typer.echo(f"stored results of data version {version} as run {run_id}", err=True)


def _streams(dataset: Path) -> bool:
    """Stream the premises in chunks? Only GeoParquet premises beyond STREAM_ABOVE."""
    from netgis.engine.streamed import STREAM_ABOVE, premise_rows

    rows = premise_rows(dataset)
    return rows is not None and rows > STREAM_ABOVE


@app.command()
def scenario(
    dataset: Annotated[Path | None, typer.Argument(help="Dataset (omit with --db).")] = None,
    cut_spans: Annotated[list[str] | None, typer.Option("--cut-spans", help="span_id(s) cut; "
                                                        "repeat or comma-separate.")] = None,
    fail_nodes: Annotated[list[str] | None, typer.Option("--fail-nodes")] = None,
    fail_ducts: Annotated[list[str] | None, typer.Option("--fail-ducts")] = None,
    area: Annotated[Path | None, typer.Option("--area", help="A vector file whose polygons "
                                              "fail everything they touch.")] = None,
    drop_m: DropOpt = DEFAULT_DROP_M,
    db: Annotated[bool, typer.Option("--db")] = False,
    ids: Annotated[bool, typer.Option("--ids/--no-ids", help="List the lost premise ids.")] =
    True,
    budget_db: BudgetOpt = None,
    pon_class: PonClassOpt = None,
    atten_db_per_km: AttenOpt = None,
    splice_db: SpliceOpt = None,
    fixed_db: FixedOpt = None,
    split: Annotated[list[str] | None, typer.Option(
        "--split", help="NODE=RATIO: what if splitter NODE were a 1:RATIO one; "
                        "repeatable.")] = None,
) -> None:
    """What fails together and what-ifs on the optical parameters.

    Failures (--cut-spans, --fail-nodes, --fail-ducts, --area) report the premises
    and units that lose every path to a working core. Optical options (--budget-db,
    --pon-class, ..., --split) report the premises that enter or leave the budget
    compared with the default parameters, without editing the data.
    """
    from netgis.engine.analysis import budget_scenario
    from netgis.engine.analysis import scenario as run_scenario

    polygon, polygon_crs = _read_area(area) if area is not None else (None, 4326)
    what_if = _budget(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db)
    ratios = _split_ratios(split)
    with _progress() as step:
        result = _analyze(dataset, db, drop_m, step)
    impact = run_scenario(result, spans=_split(cut_spans), nodes=_split(fail_nodes),
                          ducts=_split(fail_ducts), area=polygon, area_crs=polygon_crs)
    summary: dict[str, Any] = dict(impact.summary())
    if not ids:
        del summary["premise_ids"]
    if what_if is not None or ratios:
        change = budget_scenario(result, budget=what_if, split_ratios=ratios)
        _echo_warnings(change.warnings)
        optics = change.summary()
        if not ids:
            del optics["entering"], optics["leaving"]
        summary["optics"] = optics
    _echo_json(summary)


KPI_FORMATS = ("json", "csv", "prom")


@app.command()
def kpis(
    target: Annotated[str | None, typer.Argument(
        metavar="[DATASET|snapshot|backfill]",
        help="A .gpkg file or directory of layer files (omit with --db), or the word "
             "'snapshot' to store the database's KPIs in its history, or 'backfill' to "
             "estimate the history before its first snapshot from the spans' install_year "
             "(write ./snapshot or ./backfill for a dataset of that name).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, csv or prom (Prometheus "
                                     "text).")] = "json",
    drop_m: DropOpt = DEFAULT_DROP_M,
    db: Annotated[bool, typer.Option("--db", help="Read the dataset from the database "
                                     "(NETGIS_DATABASE_URL, default ./netgis.db).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="With backfill: print the estimated years, store nothing.")] = False,
) -> None:
    """Every KPI, network-wide and per area, as JSON rows, CSV or Prometheus text.

    `netgis kpis snapshot` analyses the database and stores the KPIs with its
    data version in the KPI history (served by GET /kpis/history).
    `netgis kpis backfill` stores, for each year before the first snapshot, the KPIs of
    the plant with only the spans installed by then (install_year) in service, marked
    estimated; running it again changes nothing, and no measured snapshot is touched.
    """
    from netgis.engine.analysis import analyze as run_analysis
    from netgis.products.feeds import kpi_rows, kpis_csv, prometheus_text

    if target == "backfill":
        from netgis.cli.history import backfill

        backfill(drop_m=drop_m, dry_run=dry_run)
        return
    if dry_run:
        typer.echo("error: --dry-run goes with 'netgis kpis backfill' only", err=True)
        raise typer.Exit(2)
    if fmt not in KPI_FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(KPI_FORMATS)}, not {fmt!r}",
                   err=True)
        raise typer.Exit(2)
    snapshot = target == "snapshot"
    version: int | None = None
    with _progress() as step:
        if db or snapshot:
            from netgis.storage import Repository

            repo = Repository.from_url(_database_url())
            try:
                version, ds = repo.read_consistent()
                result = run_analysis(ds, drop_m=drop_m, progress=step)
                snapshot_id = repo.save_kpi_snapshot(
                    {**result.kpis, "drop_m": drop_m}, data_version=version) if snapshot else None
            finally:
                repo.engine.dispose()
        else:
            ds = _load(Path(target) if target is not None else None, False)
            result = run_analysis(ds, drop_m=drop_m, progress=step)
    _echo_warnings(ds.warnings, result.warnings)
    if snapshot:
        _echo_json({"snapshot_id": snapshot_id, "data_version": version, "drop_m": drop_m,
                    "network": result.kpis["network"]})
    elif fmt == "csv":
        sys.stdout.write(kpis_csv(result.kpis))
    elif fmt == "prom":
        sys.stdout.write(prometheus_text(result.kpis, data_version=version))
    else:
        from datetime import UTC, datetime

        _echo_json({"data": kpi_rows(result.kpis),
                    "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "data_version": version, "drop_m": drop_m})


@app.command()
def gaps(
    dataset: DatasetArg,
    drop_m: DropOpt = DEFAULT_DROP_M,
    h3_res: Annotated[int, typer.Option("--h3-res", help="H3 resolution of the roll-up.")] =
    DEFAULT_H3_RES,
    link_m: Annotated[float, typer.Option("--link-m", help="Unpassed premises this close "
                                          "(meters) share one build cluster.")] =
    DEFAULT_LINK_M,
    max_units: Annotated[float, typer.Option("--max-units", help="Largest build cluster in "
                                             "units; a larger one is split at its natural "
                                             "breaks.")] = DEFAULT_MAX_CLUSTER_UNITS,
    max_extent_m: Annotated[float, typer.Option("--max-extent-m", help="Widest build cluster, "
                                                "meters (bounding box diagonal).")] =
    DEFAULT_MAX_CLUSTER_EXTENT_M,
    placement: Annotated[str, typer.Option(help="Placement of the new route (prices it).")] =
    DEFAULT_PLACEMENT,
    cost_per_m: Annotated[float | None, typer.Option("--cost-per-m", help="Cost per meter of "
                                                     "new route (default by placement).")] = None,
    roads: Annotated[Path | None, typer.Option("--roads", help="Road lines: joins follow "
                                               "them.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("netgis-out"),
    after: Annotated[Path | None, typer.Option("--after", help="Also write the dataset plus "
                                               "the sketch (in service) here, for `netgis "
                                               "analyze`.")] = None,
    fmt: FormatOpt = "csv",
) -> None:
    """Gap roll-ups (H3, areas) and a ranked build list with a sketch of the new routes.

    With --format gpkg or parquet the tables are GIS layers (gaps.gpkg, or gap_clusters,
    h3_gaps, gap_areas and gap_premises .parquet) beside the sketch (gaps_plan.gpkg).
    """
    from netgis.products.gaps import GapParams, gap_analysis, write_gaps

    _check_format(fmt)
    road_frame = _read_lines(roads) if roads is not None else None
    with _progress() as step:
        result = _analyze(dataset, False, drop_m, step)
        step("gaps")
        params = GapParams(link_m=link_m, max_units=max_units, max_extent_m=max_extent_m,
                           placement=placement, h3_res=h3_res,
                           cost_per_m=() if cost_per_m is None else ((placement, cost_per_m),))
        found = gap_analysis(result, params, roads=road_frame)
        if fmt == "csv":
            write_gaps(found, out)
        else:
            from netgis.products.result_layers import write_gap_layers

            write_gap_layers(found, result, out, fmt=fmt)
        if after is not None:
            from netgis.io import write_dataset
            from netgis.products.gaps import apply_plan

            write_dataset(apply_plan(result.dataset, found.plan), after)
    clusters = found.plan.clusters.drop(columns="geometry")
    top = json.loads(clusters.head(10).to_json(orient="records"))
    _echo_json({"premises_not_passed": int(found.hexes["premises"].sum()),
                "units_not_passed": int(found.hexes["units"].sum()),
                "h3_cells": len(found.hexes), "clusters": len(clusters),
                "planned_spans": len(found.plan.spans), "top": top, "out": str(out)})


def _read_lines(path: Path) -> gpd.GeoDataFrame:
    from netgis.io import read_frame

    frame = read_frame(path, subject="roads", shown=str(path))
    if frame.crs is None:
        raise ValidationError([Problem("roads", None, "geometry", f"{path} has no CRS")])
    return frame[frame.geometry.geom_type.isin(["LineString", "MultiLineString"])]


@app.command()
def bead(
    dataset: DatasetArg,
    availability: Annotated[list[Path], typer.Option("--availability", help="FCC BDC "
                                                     "availability CSV (repeat for several).")],
    locations: Annotated[Path, typer.Option("--locations", help="Fabric-style CSV (location_id,"
                                            " latitude, longitude) or a point layer.")],
    drop_m: DropOpt = DEFAULT_DROP_M,
    reach_m: Annotated[float, typer.Option("--reach-m", help="Unpassed locations within this "
                                           "many meters count as reachable.")] =
    DEFAULT_REACH_M,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("netgis-out"),
    fmt: FormatOpt = "csv",
) -> None:
    """BEAD class of every FCC location, joined to the plant: writes bead.csv, prints counts.

    With --format gpkg or parquet it writes the layer bead_classes (the rows of bead.csv
    with each location's point) to bead.gpkg or bead_classes.parquet instead.
    """
    from netgis.products.bead import bead as run_bead
    from netgis.products.bead import write_bead

    _check_format(fmt)
    with _progress() as step:
        result = _analyze(dataset, False, drop_m, step)
        step("bead")
        answer = run_bead(result.lit_spans, availability, locations, drop_m=drop_m,
                          reach_m=reach_m)
        if fmt == "csv":
            write_bead(answer, out)
        else:
            from netgis.products.bead import read_locations
            from netgis.products.result_layers import write_bead_layer

            # the points again: the answer keeps only their ids
            write_bead_layer(answer, read_locations(locations), out, fmt=fmt)
    _echo_json(answer.summary)
