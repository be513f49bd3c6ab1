"""``netgis db ...``: store datasets in SpatiaLite or PostGIS, migrate, export, history."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from netgis.cli.common import DatasetArg, _echo_json, app

if TYPE_CHECKING:

    from netgis.storage import Repository


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

    _check_revision(revision)
    with _repository(database_url) as repo:
        migrate.upgrade(repo.engine, revision)
        _echo_json({"revision": repo.revision()})


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="The earlier revision to go down to.")],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Take the database down to REVISION, in one transaction; what that revision has no
    column or table for is lost (back up first; docs/deploy.md). Run it with this netgis
    version, before installing the older one."""
    from alembic.util import CommandError

    from netgis.storage import migrate

    _check_revision(revision)
    with _repository(database_url) as repo:
        try:
            migrate.downgrade(repo.engine, revision)
        except CommandError as exc:
            typer.echo(f"error: {exc} (the database is at {repo.revision()})", err=True)
            raise typer.Exit(2) from None
        _echo_json({"revision": repo.revision()})


def _check_revision(revision: str) -> None:
    from netgis.storage import migrate

    if not migrate.known_revision(revision):
        typer.echo(f"error: no migration revision {revision!r}; this netgis has 0001 to "
                   f"{migrate.head_revision()} (and head)", err=True)
        raise typer.Exit(2)


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
    """Validate DATASET and load it into the database (created if new), all or nothing.

    Its strand layers (cables, cable_spans, splitters, olt_ports, connections, drops,
    strand_state), if any, go in the same transaction and by the same mode; the strand
    plant the load leaves must be valid, or nothing is loaded.
    """
    from netgis.errors import ConflictError
    from netgis.io import read_raw
    from netgis.io.read import with_streets
    from netgis.io.strands import read_strand_tables
    from netgis.storage.repository import WRITE_MODES
    from netgis.validate import validate_raw

    if mode is not None and mode not in WRITE_MODES:
        typer.echo(f"error: --mode must be {', '.join(WRITE_MODES)}, not {mode!r}", err=True)
        raise typer.Exit(2)
    # the route layers checked on their own; the strand layers as read, checked by the load
    # against what it leaves (with --mode insert or upsert, the stored plant merged in)
    # and the optional streets context, kept by the database (warnings only)
    data = with_streets(dataset, validate_raw(read_raw(dataset))).dataset_or_raise()
    strands = read_strand_tables(dataset)
    for w in data.warnings:
        typer.echo(f"warning: {w}", err=True)
    with _repository(database_url) as repo:
        repo.init()  # a no-op on an initialised database; makes `db load` enough on a new one
        try:
            # checked above; the audit log names the command line as the one who wrote
            counts = repo.load_dataset(data, mode=mode or "insert", actor="cli",
                                       action="load", require_empty=mode is None,
                                       strands=strands)
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
        for w in counts.warnings:
            typer.echo(f"warning: {w}", err=True)
        _echo_json({"loaded": dict(counts), "data_version": counts.data_version})


@db_app.command("export")
def db_export(
    file: Annotated[Path, typer.Argument(help="Target: .gpkg, or a directory (.geojson, .fgb, "
                                              ".parquet suffix picks the format).")],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Write the stored dataset (EPSG:4326) to FILE, with its strand layers when the database
    holds any (as attribute tables of the GeoPackage, or CSV files beside the layers)."""
    from netgis.io import write_dataset
    from netgis.io.strands import write_strand_tables

    with _repository(database_url) as repo:
        _, data = repo.read_consistent_plant()
    out = write_dataset(data, file)
    # without a strand plant the export is what it always was
    held = {name: len(frame) for name, frame in data.strands.items()}
    if data.strands:
        write_strand_tables(data.strands, out)
    _echo_json({"written": str(out), **{k: len(v) for k, v in data.layers().items()}, **held})


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

    from netgis.schema import LAYER_NAMES, STRAND_LAYER_NAMES
    from netgis.storage.audit import ACTIONS

    if layer is not None and layer not in (*LAYER_NAMES, *STRAND_LAYER_NAMES):
        typer.echo(f"error: --layer must be one of {', '.join(LAYER_NAMES)} or a strand "
                   f"layer ({', '.join(STRAND_LAYER_NAMES)})", err=True)
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


@db_app.command("backup")
def db_backup(
    out: Annotated[Path, typer.Argument(help="The backup file to write.")],
    database_url: DatabaseUrlOpt = None,
    overwrite: Annotated[bool, typer.Option(
        help="Replace OUT if it exists (atomically, once the new backup is checked).")] = False,
) -> None:
    """Back up the database to OUT while it serves: a consistent copy, checked before it is
    put in place (SpatiaLite: SQLite's online backup API; PostGIS: pg_dump -Fc).

    Prints a JSON summary: rows per table, data version, audit entries, bytes, seconds.
    See docs/operations.md.
    """
    from netgis.storage.backup import backup

    _echo_json(backup(database_url, out, overwrite=overwrite))


@db_app.command("restore")
def db_restore(
    backup_file: Annotated[Path, typer.Argument(
        metavar="IN", help="A file written by `netgis db backup`.")],
    database_url: DatabaseUrlOpt = None,
    replace: Annotated[bool, typer.Option(
        help="Overwrite a database that holds data (by default only an empty one is "
             "restored into).")] = False,
) -> None:
    """Restore a backup into the database, all or nothing, and check that the database then
    holds exactly the backup's rows, data version and audit log.

    A backup of an older schema revision is restored as it is; run `netgis db upgrade`
    after it (the summary says so). See docs/operations.md.
    """
    from netgis.storage.backup import restore

    summary = restore(database_url, backup_file, replace=replace)
    _echo_json(summary)
    if summary["upgrade_needed"]:
        typer.echo(f"note: the backup is at schema revision {summary['revision']}; run "
                   "`netgis db upgrade` before serving it", err=True)
