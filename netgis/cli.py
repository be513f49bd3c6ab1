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


_ = DEFAULT_DROP_M, DropOpt  # used by the analysis commands below

if __name__ == "__main__":
    main()
