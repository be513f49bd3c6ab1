"""Commands on dataset files: ``validate``, ``generate``, ``partition``, ``import``,
``export`` and ``search``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from netgis.cli.common import (
    DatasetArg,
    DropOpt,
    _analyze,
    _collector_paused,
    _echo_json,
    _progress,
    _split,
    app,
)
from netgis.schema import (
    DEFAULT_DROP_M,
    DEFAULT_SEARCH_LIMIT,
    MAX_SEARCH_LIMIT,
    SNAP_TOLERANCE_M,
)


@app.command()
def validate(
    dataset: DatasetArg,
    snap_tolerance_m: Annotated[float, typer.Option(help="Span end to node tolerance.")] =
    SNAP_TOLERANCE_M,
) -> None:
    """Print every problem of DATASET as JSON; exit 2 if there is any error."""
    from netgis.io import validate_path

    with _collector_paused():  # what is read lives to the end of the command
        report = validate_path(str(dataset), snap_tolerance_m=snap_tolerance_m)
        if report.dataset is not None and report.dataset.strands:
            from netgis.engine.strands.outputs import traced_warnings

            report.warnings.extend(traced_warnings(report.dataset))
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
    strands: Annotated[bool, typer.Option(
        "--strands", help="Also write the strand-level plant (cables, splitters, OLT ports, "
                          "splices, drops...) into the same output; the spans' fiber_count "
                          "and fibers_used then agree with it.")] = False,
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
                                 progress=lambda done: bar.update(task, completed=done),
                                 strands=strands)
    else:
        summary = write_city(out, premises=premises, spans=spans, seed=seed, strands=strands)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    _echo_json(summary, indent=None)


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
    from netgis.engine.distributed import partition_dataset

    _echo_json(partition_dataset(dataset, out, partitions=partitions))


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
    from netgis.products.search import premise_search

    if db and text is None:
        dataset, text = None, dataset
    if text is None or not text.strip():
        raise typer.BadParameter("give the TEXT to search for", param_hint="TEXT")
    with _progress() as step:
        result = _analyze(None if dataset is None else Path(dataset), db, drop_m, step)
    _echo_json(premise_search(result.premises).search(text.strip(), limit=limit))


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
