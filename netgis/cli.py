"""The ``netgis`` command line: formats input and output, holds no analysis.

Exit codes: 0 success, 2 invalid input (every problem listed on stderr),
1 internal error. A user's mistake never prints a traceback.
"""

from __future__ import annotations

import gc
import io
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from netgis.errors import NetgisError, Problem, ValidationError
from netgis.schema import (
    DEFAULT_CRITICAL_TOP,
    DEFAULT_DROP_M,
    DEFAULT_H3_RES,
    DEFAULT_HEX_RESOLUTION,
    DEFAULT_LINK_M,
    DEFAULT_MAX_CLUSTER_EXTENT_M,
    DEFAULT_MAX_CLUSTER_UNITS,
    DEFAULT_MAX_FEATURES,
    DEFAULT_PLACEMENT,
    DEFAULT_REACH_M,
    DEFAULT_SEARCH_LIMIT,
    KM_DECIMALS,
    MAP_KINDS,
    MAX_SEARCH_LIMIT,
    PCT_DECIMALS,
    SNAP_TOLERANCE_M,
)

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely
    from pyproj import CRS

    from netgis.analysis import Analysis, Progress
    from netgis.dataset import Dataset
    from netgis.optics import LossBudget
    from netgis.storage import Repository

app = typer.Typer(
    name="netgis",
    help="Coverage and redundancy analysis of fiber plant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DatasetArg = Annotated[Path, typer.Argument(help="A .gpkg file or a directory of layer files.")]
DropOpt = Annotated[float, typer.Option("--drop-m", help="Maximum drop length in meters.")]
BudgetOpt = Annotated[float | None, typer.Option(
    "--budget-db", help="Optical budget in dB (default 28, GPON class B+).")]
PonClassOpt = Annotated[str | None, typer.Option(
    "--pon-class", help="Budget of a PON class: gpon-b+, gpon-c+, xgs-pon-n1, xgs-pon-n2.")]
AttenOpt = Annotated[float | None, typer.Option(
    "--atten-db-per-km", help="Fiber attenuation in dB/km (default 0.35).")]
SpliceOpt = Annotated[float | None, typer.Option(
    "--splice-db", help="Loss per splice node in dB (default 0.1).")]
FixedOpt = Annotated[float | None, typer.Option(
    "--fixed-db", help="Connector loss at both ends in dB (default 1.0).")]


@app.callback()
def _root() -> None:
    """Coverage and redundancy analysis of fiber plant."""


def _echo_json(obj: object, *, indent: int | None = 1) -> None:
    """``obj`` as JSON on stdout, text as it is (``Straße``, not ``Stra\\u00dfe``)."""
    sys.stdout.write(json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=False) + "\n")


def for_reading(kpis: Mapping[str, Any]) -> dict[str, Any]:
    """``kpis`` with percentages to :data:`~netgis.schema.PCT_DECIMALS` and km to
    :data:`~netgis.schema.KM_DECIMALS` decimals: what a person reads on a terminal.

    Examples
    --------
    >>> for_reading({"coverage_pct": 93.49828426946, "route_km": 52.2381234, "spof_spans": 3,
    ...              "take_rate_pct": None})
    {'coverage_pct': 93.5, 'route_km': 52.238, 'spof_spans': 3, 'take_rate_pct': None}
    """
    def shown(key: str, value: Any) -> Any:
        if isinstance(value, float) and key.endswith("_pct"):
            return round(value, PCT_DECIMALS)
        if isinstance(value, float) and key.endswith("_km"):
            return round(value, KM_DECIMALS)
        return value

    return {key: shown(key, value) for key, value in kpis.items()}


def _echo_kpis(kpis: Mapping[str, Any]) -> None:
    """The network KPIs on stdout: exactly ``kpis.json``'s ``network`` object when stdout is
    a file or a pipe (scripts read it), rounded for reading on a terminal."""
    _echo_json(for_reading(kpis) if sys.stdout.isatty() else kpis)


def _echo_warnings(*groups: Iterable[Problem]) -> None:
    """Each warning of ``groups`` once on stderr (the dataset's and the analysis's overlap)."""
    for w in dict.fromkeys(w for group in groups for w in group):
        typer.echo(f"warning: {w}", err=True)


def _report_problems(exc: ValidationError) -> None:
    _echo_warnings(exc.warnings)
    typer.echo(f"error: invalid input: {len(exc.problems)} problem(s)", err=True)
    for p in exc.problems:
        typer.echo(f"  {p}", err=True)


@app.command()
def validate(
    dataset: DatasetArg,
    snap_tolerance_m: Annotated[float, typer.Option(help="Span end to node tolerance.")] =
    SNAP_TOLERANCE_M,
) -> None:
    """Print every problem of DATASET as JSON; exit 2 if there is any error."""
    from netgis.io import validate_path

    report = validate_path(str(dataset), snap_tolerance_m=snap_tolerance_m)
    _echo_json(report.as_dict())
    if report.errors:
        raise typer.Exit(2)


@app.command()
def generate(
    premises: Annotated[int, typer.Option(help="Number of premises.")],
    out: Annotated[Path, typer.Option(help="Output: FILE.gpkg, or DIR.geojson/.fgb/.parquet.")],
    spans: Annotated[int | None, typer.Option(help="About how many spans (default N/10).")] =
    None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same city.")] = 0,
) -> None:
    """Write a synthetic city fiber plant; print a one-line JSON summary."""
    import time

    from netgis.generate import write_city

    started = time.perf_counter()
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(transient=True, console=Console(stderr=True)) as bar:
            task = bar.add_task("premises", total=premises)
            summary = write_city(out, premises=premises, spans=spans, seed=seed,
                                 progress=lambda done: bar.update(task, completed=done))
    else:
        summary = write_city(out, premises=premises, spans=spans, seed=seed)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    _echo_json(summary, indent=None)


# ---- netgis db: storage in SpatiaLite (default) or PostGIS -------------------------------

db_app = typer.Typer(help="Store datasets in SpatiaLite (default ./netgis.db) or PostGIS.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")

DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option("--database-url", envvar="NETGIS_DATABASE_URL",
                 help="sqlite:///FILE or postgresql+psycopg://USER@HOST/DB "
                      "(default sqlite:///./netgis.db)."),
]


def _repository(database_url: str | None) -> Repository:
    """A Repository to use in a ``with`` block (closes its connections at the end)."""
    from netgis.storage import Repository

    return Repository.from_url(database_url)


@db_app.command("init")
def db_init(database_url: DatabaseUrlOpt = None) -> None:
    """Create the spatial metadata, tables and indexes (safe to repeat)."""
    with _repository(database_url) as repo:
        repo.init()
        _echo_json(repo.stats())


@db_app.command("upgrade")
def db_upgrade(
    database_url: DatabaseUrlOpt = None,
    revision: Annotated[str, typer.Option(help="Target migration revision.")] = "head",
) -> None:
    """Run the database migrations up to REVISION (default: the newest)."""
    from netgis.storage import migrate

    with _repository(database_url) as repo:
        migrate.upgrade(repo.engine, revision)
        _echo_json({"revision": repo.revision()})


@db_app.command("load")
def db_load(
    dataset: DatasetArg,
    database_url: DatabaseUrlOpt = None,
    mode: Annotated[str | None, typer.Option(
        help="insert (add to the stored features, refuse existing ids), upsert (replace the "
             "stored features with these ids, keep the others) or replace (the database "
             "holds exactly DATASET afterwards). Default: load into an empty database only.")]
    = None,
) -> None:
    """Validate DATASET and load it into the database (created if new), all or nothing."""
    from netgis.errors import ConflictError
    from netgis.io import read_dataset
    from netgis.storage.repository import WRITE_MODES

    if mode is not None and mode not in WRITE_MODES:
        typer.echo(f"error: --mode must be {', '.join(WRITE_MODES)}, not {mode!r}", err=True)
        raise typer.Exit(2)
    data = read_dataset(dataset)
    for w in data.warnings:
        typer.echo(f"warning: {w}", err=True)
    with _repository(database_url) as repo:
        repo.init()  # a no-op on an initialised database; makes `db load` enough on a new one
        try:
            # checked above; the audit log names the command line as the one who wrote
            counts = repo.load_dataset(data, mode=mode or "insert",
                                       actor="cli", action="load", require_empty=mode is None)
        except ConflictError as exc:
            if mode is None:
                typer.echo("error: nothing loaded: the database holds data already; load with "
                           "--mode replace to switch to this dataset, --mode upsert to update "
                           "the stored features with it, or --mode insert to add it", err=True)
            else:
                typer.echo(f"error: nothing loaded: {len(exc.problems)} conflict(s)", err=True)
            for p in exc.problems:
                typer.echo(f"  {p}", err=True)
            raise typer.Exit(2) from None
        _echo_json({"loaded": dict(counts), "data_version": counts.data_version})


@db_app.command("export")
def db_export(
    file: Annotated[Path, typer.Argument(help="Target: .gpkg, or a directory (.geojson, .fgb, "
                                              ".parquet suffix picks the format).")],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Write the stored dataset (EPSG:4326) to FILE."""
    from netgis.io import write_dataset

    with _repository(database_url) as repo:
        data = repo.read_dataset()
    out = write_dataset(data, file)
    _echo_json({"written": str(out), **{k: len(v) for k, v in data.layers().items()}})


@db_app.command("history")
def db_history(
    database_url: DatabaseUrlOpt = None,
    layer: Annotated[str | None, typer.Option(help="Only writes of this layer.")] = None,
    feature_id: Annotated[str | None, typer.Option(
        "--id", help="Only writes of this feature id (bulk loads included).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only writes at or after this ISO 8601 time (without an offset: UTC).")] = None,
    actor: Annotated[str | None, typer.Option(
        help="Only writes by this API key name (cli: the command line).")] = None,
    action: Annotated[str | None, typer.Option(
        help="Only create, replace, patch, delete, import or load.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Entries at most.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Entries to skip.")] = 0,
) -> None:
    """Print the audit log of writes, newest first, as JSON lines (one entry per line).

    Each entry: id, time (UTC), actor (an API key's name, cli, local), action, layer,
    feature_ids, count, mode (bulk loads), data_version, and before/after (the features as
    GeoJSON, for writes of single features).
    """
    from datetime import datetime

    from netgis.schema import LAYER_NAMES
    from netgis.storage.audit import ACTIONS

    if layer is not None and layer not in LAYER_NAMES:
        typer.echo(f"error: --layer must be one of {', '.join(LAYER_NAMES)}", err=True)
        raise typer.Exit(2)
    if action is not None and action not in ACTIONS:
        typer.echo(f"error: --action must be one of {', '.join(ACTIONS)}", err=True)
        raise typer.Exit(2)
    try:
        when = None if since is None else datetime.fromisoformat(since)
    except ValueError:
        typer.echo(f"error: --since is not an ISO 8601 time: {since!r}", err=True)
        raise typer.Exit(2) from None
    with _repository(database_url) as repo:
        entries, _ = repo.audit_log(layer=layer, feature_id=feature_id, since=when,
                                    actor=actor, action=action, limit=limit, offset=offset)
    for entry in entries:
        line = {**entry, "time": entry["time"].isoformat().replace("+00:00", "Z")}
        _echo_json(line, indent=None)


@db_app.command("stats")
def db_stats(database_url: DatabaseUrlOpt = None) -> None:
    """Print the feature count per layer and the data version as JSON."""
    with _repository(database_url) as repo:
        _echo_json(repo.stats())


def main() -> None:
    """Entry point: run the typer app and map errors to exit codes."""
    for stream in (sys.stdout, sys.stderr):
        # JSON and messages carry names as they are: UTF-8 whatever the locale says
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8")
    try:
        rc = app(standalone_mode=False)
        # without standalone mode click returns the code of typer.Exit instead of exiting
        sys.exit(rc if isinstance(rc, int) else 0)
    except ValidationError as exc:
        _report_problems(exc)
        sys.exit(2)
    except NetgisError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # usage errors and genuine bugs end up here
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):  # a click usage error
            show()
            sys.exit(2)
        typer.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


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
) -> None:
    """Coverage, redundancy and optical reach of DATASET: KPIs on stdout, CSVs and kpis.json.

    The files go into --out (default ./netgis-out), which must be new, empty or a
    folder netgis wrote before; where they went is said on stderr.
    """
    from netgis.report import check_output_dir, write_outputs

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
    # before any work: a folder of someone else's is refused, not overwritten
    check_output_dir(out)
    if engine == "dask" or scheduler is not None:
        if engine != "dask" or db or dataset is None:
            typer.echo("error: --scheduler needs --engine dask, and --engine dask a DATASET "
                       "(not --db)", err=True)
            raise typer.Exit(2)
        from netgis.distributed import analyze_dask

        with _progress(timings) as step:
            done = analyze_dask(dataset, out, drop_m=drop_m, budget=budget,
                                scheduler=scheduler, progress=step)
        _echo_warnings(done.warnings)
        _wrote(out)
        _echo_kpis(done.kpis["network"])
        return
    if not db and dataset is not None and (_streams(dataset) if stream is None else stream):
        from netgis.chunked import analyze_chunked

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
        write_outputs(result, out)
        if store:
            _store_results(result, version, keep)
    _wrote(out)
    _echo_kpis(result.kpis["network"])


def _wrote(out: Path) -> None:
    """Say on stderr where the results went (stdout holds only the KPI JSON)."""
    from netgis.report import ANALYSIS_FILES

    typer.echo(f"results written to {out.resolve()}: {', '.join(ANALYSIS_FILES)}", err=True)


def _analyze_stored_data(drop_m: float, step: Progress, *,
                         budget: LossBudget | None = None) -> tuple[int, Analysis]:
    """The analysis of the database's data and the data version it belongs to."""
    from netgis.analysis import analyze as run_analysis
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
    from netgis.chunked import STREAM_ABOVE, premise_rows

    rows = premise_rows(dataset)
    return rows is not None and rows > STREAM_ABOVE


@app.command()
def partition(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", help="Output directory (a dataset of "
                                      "GeoParquet layer files).")],
    partitions: Annotated[int | None, typer.Option(
        min=1, help="Number of premises partitions (default: about 250,000 premises "
                    "each).")] = None,
) -> None:
    """Write DATASET with its premises Hilbert-ordered in spatial GeoParquet partitions."""
    from netgis.distributed import partition_dataset

    _echo_json(partition_dataset(dataset, out, partitions=partitions))


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
    from netgis.analysis import budget_scenario
    from netgis.analysis import scenario as run_scenario

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


def _budget(pon_class: str | None, budget_db: float | None, atten_db_per_km: float | None,
            splice_db: float | None, fixed_db: float | None) -> LossBudget | None:
    """The loss parameters the options ask for; None when none is given (the defaults)."""
    from netgis.optics import LossBudget

    if pon_class is None and all(v is None for v in (budget_db, atten_db_per_km, splice_db,
                                                     fixed_db)):
        return None
    base = LossBudget.preset(pon_class) if pon_class is not None else LossBudget()
    return base.with_(budget_db=budget_db, atten_db_per_km=atten_db_per_km,
                      splice_db=splice_db, fixed_db=fixed_db)


def _split_ratios(values: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in _split(values):
        node, _, ratio = item.partition("=")
        if not node or not ratio.isdigit():
            raise ValidationError([Problem("parameters", None, "split",
                                           f"expected NODE=RATIO, got {item!r}")])
        out[node] = int(ratio)
    return out


KPI_FORMATS = ("json", "csv", "prom")


@app.command()
def kpis(
    target: Annotated[str | None, typer.Argument(
        metavar="[DATASET|snapshot]",
        help="A .gpkg file or directory of layer files (omit with --db), or the word "
             "'snapshot' to store the database's KPIs in its history (write ./snapshot for "
             "a dataset of that name).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, csv or prom (Prometheus "
                                     "text).")] = "json",
    drop_m: DropOpt = DEFAULT_DROP_M,
    db: Annotated[bool, typer.Option("--db", help="Read the dataset from the database "
                                     "(NETGIS_DATABASE_URL, default ./netgis.db).")] = False,
) -> None:
    """Every KPI, network-wide and per area, as JSON rows, CSV or Prometheus text.

    `netgis kpis snapshot` analyses the database and stores the KPIs with its
    data version in the KPI history (served by GET /kpis/history).
    """
    from netgis.analysis import analyze as run_analysis
    from netgis.feeds import kpi_rows, kpis_csv, prometheus_text

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


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _read_area(path: Path) -> tuple[shapely.Geometry, CRS | int]:
    import shapely

    from netgis.errors import Problem
    from netgis.io import read_frame

    frame = read_frame(path, subject="area", shown=str(path))
    # types-geopandas types a masked GeoSeries as a plain Series
    polys = cast("gpd.GeoSeries",
                 frame.geometry[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])])
    if polys.empty:
        raise ValidationError([Problem("area", None, "geometry", f"{path} has no polygon")])
    return shapely.union_all(polys.to_numpy()), frame.crs or 4326


def _load(dataset: Path | None, db: bool) -> Dataset:
    if db:
        from netgis.storage import Repository

        with Repository.from_url(_database_url()) as repo:
            return repo.read_dataset()
    if dataset is None:
        raise typer.BadParameter("give a DATASET or --db")
    from netgis.io import read_dataset

    return read_dataset(dataset)


def _analyze(dataset: Path | None, db: bool, drop_m: float, step: Progress, *,
             budget: LossBudget | None = None) -> Analysis:
    """Load, analyze and echo the dataset's and the analysis's warnings on stderr."""
    from netgis.analysis import analyze as run_analysis

    ds = _load(dataset, db)
    result = run_analysis(ds, drop_m=drop_m, budget=budget, progress=step)
    _echo_warnings(ds.warnings, result.warnings)
    return result


def _database_url() -> str | None:
    import os

    return os.environ.get("NETGIS_DATABASE_URL") or None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a one-shot analysis keeps what it allocates.

    Reading, validating and locating a million premises allocate millions of
    objects (strings, geometries) that live to the end of the command; the
    collector's full passes over them free nothing and cost about 0.9 s of a
    1 M-premise run (benchmarks/RESULTS.md). Reference counting still frees
    everything else as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _progress:
    """A rich progress bar over the analysis steps on stderr when it is a terminal.

    Silent when stderr is not a terminal (pipes, CI, tests).
    """

    STEPS = ("read", "graph", "coverage", "optics", "redundancy", "kpis", "write")

    def __init__(self, timings: bool = False) -> None:
        self.timings: list[tuple[str, float]] | None = [] if timings else None

    def _timed(self, name: str) -> None:
        import time

        if self.timings is not None:
            self.timings.append((name, time.perf_counter()))

    def __enter__(self) -> Progress:
        self._timed("start")
        if not sys.stderr.isatty():
            return self._timed
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description:<10}"), BarColumn(),
                             TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                             transient=True, console=Console(stderr=True))
        self._bar.__enter__()
        self._task = self._bar.add_task("read", total=len(self.STEPS))

        def step(name: str) -> None:
            self._timed(name)
            done = self.STEPS.index(name) if name in self.STEPS else 0
            self._bar.update(self._task, description=name, completed=done)

        return step

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "_bar"):
            self._bar.__exit__(None, None, None)
        self._timed("end")
        if self.timings:
            # the first step runs from the start: reading and validating the dataset
            marks = [("read", self.timings[0][1]), *self.timings[1:]] \
                if self.timings[1][0] != "read" else self.timings[1:]
            for (name, t0), (_, t1) in pairwise(marks):
                typer.echo(f"timing: {name} {t1 - t0:.3f} s", err=True)


@app.command()
def search(
    dataset: Annotated[str | None, typer.Argument(
        metavar="[DATASET]", help="A .gpkg file or a directory of layer files (omit with "
        "--db).")] = None,
    text: Annotated[str | None, typer.Argument(
        metavar="TEXT", help="An address (typos, case, accents and the order of street and "
        "number do not matter), a premise_id or a location_id.")] = None,
    limit: Annotated[int, typer.Option(help="Most hits to print.", min=1,
                                       max=MAX_SEARCH_LIMIT)] = DEFAULT_SEARCH_LIMIT,
    drop_m: DropOpt = DEFAULT_DROP_M,
    db: Annotated[bool, typer.Option("--db", help="Read the dataset from the database "
                                     "(NETGIS_DATABASE_URL, default ./netgis.db).")] = False,
) -> None:
    """Find premises by address or id; print the hits (GeoJSON, best first) with their
    serviceability, or no hit and the nearest spellings (`suggestions`)."""
    from netgis.search import premise_search

    if db and text is None:
        dataset, text = None, dataset
    if text is None or not text.strip():
        raise typer.BadParameter("give the TEXT to search for", param_hint="TEXT")
    with _progress() as step:
        result = _analyze(None if dataset is None else Path(dataset), db, drop_m, step)
    _echo_json(premise_search(result.premises).search(text.strip(), limit=limit))


# ---- netgis gaps / bead: where to build next, FCC BDC eligibility ------------------------

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
) -> None:
    """Gap roll-ups (H3, areas) and a ranked build list with a sketch of the new routes."""
    from netgis.gaps import gap_analysis, write_gaps

    road_frame = _read_lines(roads) if roads is not None else None
    with _progress() as step:
        result = _analyze(dataset, False, drop_m, step)
        step("gaps")
        found = gap_analysis(result, h3_res=h3_res, link_m=link_m, max_units=max_units,
                             max_extent_m=max_extent_m, placement=placement,
                             cost_per_m=None if cost_per_m is None else {placement: cost_per_m},
                             roads=road_frame)
        write_gaps(found, out)
        if after is not None:
            from netgis.gaps import apply_plan
            from netgis.io import write_dataset

            write_dataset(apply_plan(result.dataset, found.plan), after)
    clusters = found.plan.clusters.drop(columns="geometry")
    top = json.loads(clusters.head(10).to_json(orient="records"))
    _echo_json({"premises_not_passed": int(found.hexes["premises"].sum()),
                "units_not_passed": int(found.hexes["units"].sum()),
                "h3_cells": len(found.hexes), "clusters": len(clusters),
                "planned_spans": len(found.plan.spans), "top": top, "out": str(out)})


def _read_lines(path: Path) -> gpd.GeoDataFrame:
    from netgis.errors import Problem
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
) -> None:
    """BEAD class of every FCC location, joined to the plant: writes bead.csv, prints counts."""
    from netgis.bead import bead as run_bead
    from netgis.bead import write_bead

    with _progress() as step:
        result = _analyze(dataset, False, drop_m, step)
        step("bead")
        answer = run_bead(result.lit_spans, availability, locations, drop_m=drop_m,
                          reach_m=reach_m)
        write_bead(answer, out)
    _echo_json(answer.summary)


# ---- netgis map: interactive Folium maps as one self-contained HTML file --------------------

@app.command("map")
def map_(
    kind: Annotated[str, typer.Argument(help=f"{', '.join(MAP_KINDS[:-1])} or {MAP_KINDS[-1]}.")],
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
) -> None:
    """Write a KIND map of DATASET as one self-contained HTML page (no CDN, works offline)."""
    if kind not in MAP_KINDS:
        raise typer.BadParameter(f"KIND must be one of {', '.join(MAP_KINDS)}, not {kind!r}")
    import maps
    from netgis.analysis import scenario as run_scenario
    from netgis.io import atomic_file

    with _progress() as step:
        result = _analyze(dataset, False, drop_m, step)
    impact = None
    failed = (_split(cut_spans), _split(fail_nodes), _split(fail_ducts))
    if kind == "criticality" and any(failed):
        impact = run_scenario(result, spans=failed[0], nodes=failed[1], ducts=failed[2])
    ranking = None
    if kind == "gaps":
        from netgis.gaps import gap_analysis

        ranking = gap_analysis(result).plan.clusters
    m = maps.build_map(kind, result, scenario=impact, ranking=ranking, top=top,
                       hex_resolution=hex_res if kind != "gaps" else None, tiles_url=tiles,
                       tiles_attribution=tiles_attribution, max_features=max_features)
    html = maps.inline_html(m)
    # written beside the target and renamed: a reader never sees half a page
    with atomic_file(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    _echo_json({"map": kind, "out": str(out), "bytes": len(html.encode("utf-8"))})


# ---- netgis import / export: OFDS and mapped GIS layers -----------------------------------

@app.command("import")
def import_(
    sources: Annotated[list[str], typer.Argument(
        metavar="[ofds] SOURCE...",
        help="'ofds' then OFDS files (a JSON network package or network, or the GeoJSON "
             "nodes and spans files in any order, or the folder `netgis export ofds` "
             "wrote); or GIS sources (any file GDAL reads, or a folder of them) with "
             "--mapping.")],
    out: Annotated[Path, typer.Option("--out", help="The dataset to write: FILE.gpkg, or "
                                      "DIR(.geojson|.fgb|.parquet).")],
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", help="TOML file mapping the sources' layers, fields and codes into the "
                          "data model (docs/interop.md).")] = None,
    cores: Annotated[list[str] | None, typer.Option(
        "--cores", help="ofds: node ids that become core nodes (comma-separated or "
                        "repeated); OFDS has no core.")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="ofds: leave out features that break the data model (listed "
                               "on stderr) instead of failing.")] = False,
) -> None:
    """Import plant from another format into a dataset file, all or nothing.

    `netgis import ofds SOURCE... --out DATASET [--cores ID,...] [--skip-invalid]` reads the
    Open Fibre Data Standard; `netgis import SOURCE... --mapping MAPPING.toml --out DATASET`
    reads any GIS layers through a mapping file. Prints a JSON summary; warnings and
    left-out features go to stderr. Invalid input: exit 2, nothing written.
    """
    from netgis.io import write_dataset

    if sources[0] == "ofds":
        from netgis.interop.ofds import read_ofds

        if mapping is not None:
            raise typer.BadParameter("--mapping is for GIS sources, not for ofds")
        if len(sources) < 2:
            raise typer.BadParameter("give the OFDS file(s) after 'ofds'")
        result = read_ofds(sources[1:], cores=_split(cores), skip_invalid=skip_invalid)
        data, skipped = result.dataset, result.skipped
    else:
        from netgis.interop.mapping import import_mapped

        if mapping is None:
            raise typer.BadParameter("give --mapping MAPPING.toml (or 'ofds' first for OFDS)")
        if cores or skip_invalid:
            raise typer.BadParameter("--cores and --skip-invalid are for 'netgis import ofds'")
        data, skipped = import_mapped(sources, mapping), []
    for w in data.warnings:
        typer.echo(f"warning: {w}", err=True)
    for p in skipped:
        typer.echo(f"skipped: {p}", err=True)
    written = write_dataset(data, out)
    _echo_json({"written": str(written), "nodes": len(data.nodes), "spans": len(data.spans),
                "premises": len(data.premises), "areas": len(data.areas),
                "skipped": len(skipped)})


export_app = typer.Typer(help="Write a dataset in another format.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("ofds")
def export_ofds(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for nodes.geojson and "
                                      "spans.geojson.")],
    network_name: Annotated[str | None, typer.Option(
        help="The OFDS network's name (default: the dataset's file name).")] = None,
    network_id: Annotated[str | None, typer.Option(
        help="The OFDS network's UUID (default: one made from the name).")] = None,
) -> None:
    """Write the nodes and spans of DATASET in the OFDS GeoJSON publication format."""
    import uuid

    from netgis.interop.ofds import write_ofds
    from netgis.io import read_dataset

    if network_id is not None:
        try:
            network_id = str(uuid.UUID(network_id))
        except ValueError:
            raise typer.BadParameter(f"--network-id is not a UUID: {network_id!r}") from None
    data = read_dataset(dataset)
    for w in data.warnings:
        typer.echo(f"warning: {w}", err=True)
    written = write_ofds(data, out, network_name=network_name or dataset.stem,
                         network_id=network_id)
    _echo_json({"written": str(written), "nodes": len(data.nodes), "spans": len(data.spans)})
# ---- netgis report: the coverage progress report for a council meeting ---------------------

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
) -> None:
    """Write the coverage progress report (the content of /dashboard) as one printable HTML
    file, with a plain-words summary; --pdf also prints it to PDF.

    From a dataset file there is no KPI history (the summary says so); with --db the
    history is the database's KPI snapshots (GET /kpis/history), at the database's
    drop length.
    """
    from datetime import date

    from maps.dashboard import report_html, report_pdf
    from netgis.analysis import analyze as run_analysis
    from netgis.dashboard import build_dashboard, ranked_clusters, summary
    from netgis.feeds import Goal
    from netgis.io import atomic_file

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
    board = build_dashboard(result, history=history, goal=goal, area_id=area_id,
                            clusters=ranked_clusters(result), window_days=window_days,
                            min_span_days=min_span_days, data_version=version)
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


# ---- netgis serve: the HTTP API ------------------------------------------------------------

@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database_url: DatabaseUrlOpt = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (uvicorn). They share the analysis results stored in "
                    "the database, so each need not compute them.")] = 1,
) -> None:
    """Serve the HTTP API (OGC API - Features, analysis, KPI feeds) on HOST:PORT; Ctrl-C stops."""
    import os

    import uvicorn

    from api.app import create_app
    from api.server import configure, uvicorn_options
    from api.settings import Settings

    # NETGIS_* settings come from the environment; --database-url wins over it
    settings = Settings() if database_url is None else Settings(database_url=database_url)
    # the URLs below only once the port is known to be free: not before "address in use"
    _check_port(host, port)
    base = f"http://{host}:{port}"
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
        typer.echo(f"  {'workers':<20} {workers}", err=True)
        uvicorn.run("api.main:app", host=host, port=port, workers=workers,
                    **uvicorn_options(settings))
        return
    configure(settings)
    app = create_app(settings)
    # everything loaded so far lives as long as the server: kept out of the garbage
    # collector's full passes, which would rescan it while big pages (10,000 features) are built
    gc.freeze()
    uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))

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


if __name__ == "__main__":
    main()
