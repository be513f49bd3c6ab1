"""The ``netgis`` command line: formats input and output, holds no analysis.

Exit codes: 0 success, 2 invalid input (every problem listed on stderr),
1 internal error. A user's mistake never prints a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from netgis.errors import NetgisError, ValidationError
from netgis.schema import DEFAULT_DROP_M, SNAP_TOLERANCE_M

app = typer.Typer(
    name="netgis",
    help="Coverage and redundancy analysis of fiber plant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DatasetArg = Annotated[Path, typer.Argument(help="A .gpkg file or a directory of layer files.")]
DropOpt = Annotated[float, typer.Option("--drop-m", help="Maximum drop length in meters.")]


@app.callback()
def _root() -> None:
    """Coverage and redundancy analysis of fiber plant."""


def _echo_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=1, allow_nan=False) + "\n")


def _report_problems(exc: ValidationError) -> None:
    for w in exc.warnings:
        typer.echo(f"warning: {w}", err=True)
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
    from netgis.validate import validate_path

    report = validate_path(str(dataset), snap_tolerance_m=snap_tolerance_m)
    _echo_json(report.as_dict())
    if report.errors:
        raise typer.Exit(2)


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


def _repository(database_url: str | None) -> Any:
    from netgis.storage import Repository

    return Repository.from_url(database_url)


@db_app.command("init")
def db_init(database_url: DatabaseUrlOpt = None) -> None:
    """Create the spatial metadata, tables and indexes (safe to repeat)."""
    repo = _repository(database_url)
    repo.init()
    _echo_json(repo.stats())


@db_app.command("upgrade")
def db_upgrade(
    database_url: DatabaseUrlOpt = None,
    revision: Annotated[str, typer.Option(help="Target migration revision.")] = "head",
) -> None:
    """Run the database migrations up to REVISION (default: the newest)."""
    from netgis.storage import migrate

    repo = _repository(database_url)
    migrate.upgrade(repo.engine, revision)
    _echo_json({"revision": repo.revision()})


@db_app.command("load")
def db_load(
    dataset: DatasetArg,
    database_url: DatabaseUrlOpt = None,
    mode: Annotated[str, typer.Option(help="insert (refuse existing ids) or upsert (replace).")]
    = "insert",
) -> None:
    """Validate DATASET and load it into the database, all or nothing."""
    from netgis.errors import ConflictError
    from netgis.io import read_dataset

    if mode not in ("insert", "upsert"):
        typer.echo(f"error: --mode must be insert or upsert, not {mode!r}", err=True)
        raise typer.Exit(2)
    data = read_dataset(dataset)
    for w in data.warnings:
        typer.echo(f"warning: {w}", err=True)
    repo = _repository(database_url)
    try:
        counts = repo.load_dataset(data, mode=mode)
    except ConflictError as exc:
        typer.echo(f"error: nothing loaded: {len(exc.problems)} conflict(s)", err=True)
        for p in exc.problems:
            typer.echo(f"  {p}", err=True)
        raise typer.Exit(2) from None
    _echo_json({"loaded": counts, "data_version": repo.data_version()})


@db_app.command("export")
def db_export(
    file: Annotated[Path, typer.Argument(help="Target: .gpkg, or a directory (.geojson, .fgb, "
                                              ".parquet suffix picks the format).")],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Write the stored dataset (EPSG:4326) to FILE."""
    from netgis.io import write_dataset

    data = _repository(database_url).read_dataset()
    out = write_dataset(data, file)
    _echo_json({"written": str(out), **{k: len(v) for k, v in data.layers().items()}})


@db_app.command("stats")
def db_stats(database_url: DatabaseUrlOpt = None) -> None:
    """Print the feature count per layer and the data version as JSON."""
    _echo_json(_repository(database_url).stats())


def main() -> None:
    """Entry point: run the typer app and map errors to exit codes."""
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
) -> None:
    """Coverage and redundancy of DATASET: KPIs on stdout, CSVs and kpis.json in --out."""
    from netgis.analysis import analyze as run_analysis
    from netgis.report import write_outputs

    with _progress() as step:
        ds = _load(dataset, db)
        for w in ds.warnings:
            typer.echo(f"warning: {w}", err=True)
        result = run_analysis(ds, drop_m=drop_m, progress=step)
        for w in result.warnings:
            typer.echo(f"warning: {w}", err=True)
        step("write")
        write_outputs(result, out)
    _echo_json(result.kpis["network"])


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
) -> None:
    """Premises and units that lose every path to a working core when things fail together."""
    from netgis.analysis import analyze as run_analysis
    from netgis.analysis import scenario as run_scenario

    polygon, polygon_crs = _read_area(area) if area is not None else (None, 4326)
    with _progress() as step:
        result = run_analysis(_load(dataset, db), drop_m=drop_m, progress=step)
    impact = run_scenario(result, spans=_split(cut_spans), nodes=_split(fail_nodes),
                          ducts=_split(fail_ducts), area=polygon, area_crs=polygon_crs)
    impact.pop("lost")
    if not ids:
        impact.pop("premise_ids")
    _echo_json(impact)


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _read_area(path: Path) -> tuple[Any, Any]:
    import pyogrio
    import shapely

    from netgis.errors import Problem

    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:  # pyogrio raises several classes for unreadable files
        raise ValidationError([Problem("area", None, None, f"cannot read {path}: {exc}")]) from exc
    polys = frame.geometry[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        raise ValidationError([Problem("area", None, "geometry", f"{path} has no polygon")])
    return shapely.union_all(polys.to_numpy()), frame.crs or 4326


def _load(dataset: Path | None, db: bool) -> Any:
    if db:
        from netgis.storage import Repository

        return Repository.from_url(_database_url()).read_dataset()
    if dataset is None:
        raise typer.BadParameter("give a DATASET or --db")
    from netgis.io import read_dataset

    return read_dataset(dataset)


def _database_url() -> str | None:
    import os

    return os.environ.get("NETGIS_DATABASE_URL") or None


class _progress:
    """A rich progress display on stderr when it is a terminal; silent otherwise."""

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            return lambda _name: None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                             TimeElapsedColumn(), transient=True,
                             console=__import__("rich.console").console.Console(stderr=True))
        self._bar.__enter__()
        self._task = self._bar.add_task("read", total=None)
        return lambda name: self._bar.update(self._task, description=name)

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "_bar"):
            self._bar.__exit__(None, None, None)


if __name__ == "__main__":
    main()
