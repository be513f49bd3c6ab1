"""What every command of the ``netgis`` command line shares: the typer app, the options
several commands take, output helpers, error handling and the entry point :func:`main`.

Exit codes: 0 success, 2 invalid input (every problem listed on stderr),
1 internal error. A user's mistake never prints a traceback.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
import typer.main

from netgis.errors import NetgisError, Problem, ValidationError
from netgis.schema import (
    KM_DECIMALS,
    PCT_DECIMALS,
)

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely
    from pyproj import CRS

    from netgis.dataset import Dataset
    from netgis.engine.analysis import Analysis, Progress
    from netgis.engine.optics import LossBudget


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


@functools.cache
def _command() -> Callable[..., Any]:
    """The click command of :data:`app`, built once per process (building it takes ~90 ms:
    every in-process call of :func:`main` paid it, as ``app()`` builds it each time)."""
    return typer.main.get_command(app)


def main() -> None:
    """Entry point: run the typer app and map errors to exit codes."""
    for stream in (sys.stdout, sys.stderr):
        # JSON and messages carry names as they are: UTF-8 whatever the locale says
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8")
    try:
        rc = _command()(standalone_mode=False)
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


def _budget(pon_class: str | None, budget_db: float | None, atten_db_per_km: float | None,
            splice_db: float | None, fixed_db: float | None) -> LossBudget | None:
    """The loss parameters the options ask for; None when none is given (the defaults)."""
    from netgis.engine.optics import LossBudget

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
    from netgis.engine.analysis import analyze as run_analysis

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
