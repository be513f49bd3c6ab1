"""``netgis plan ...``: design plans on top of the stored data (docs/plans.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from netgis.cli.common import (
    AttenOpt,
    BudgetOpt,
    DropOpt,
    FixedOpt,
    PonClassOpt,
    SpliceOpt,
    _budget,
    _echo_json,
    _echo_warnings,
    app,
)
from netgis.cli.db import DatabaseUrlOpt, _repository
from netgis.schema import DEFAULT_DROP_M

if TYPE_CHECKING:
    from netgis.engine.analysis import Analysis
    from netgis.engine.optics import LossBudget
    from netgis.storage.plans import Plans

plan_app = typer.Typer(help="Design plans: named sets of edits on top of the stored data, "
                            "analysed, compared, and merged into it.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")

#: Who the command line writes as (the audit log's actor).
ACTOR = "cli"

NameArg = Annotated[str, typer.Argument(help="The plan's name.")]


def _plans(repo: Any) -> Plans:
    from netgis.storage.plans import Plans

    return Plans(repo)


@plan_app.command("create")
def plan_create(name: NameArg, database_url: DatabaseUrlOpt = None,
                description: Annotated[str | None, typer.Option(
                    help="What the plan is for.")] = None) -> None:
    """Start a plan at the data as it is now."""
    with _repository(database_url) as repo:
        repo.init()
        _echo_json(_plans(repo).create(name, actor=ACTOR, description=description).as_dict())


@plan_app.command("list")
def plan_list(database_url: DatabaseUrlOpt = None) -> None:
    """Every plan, with what it edits per layer."""
    with _repository(database_url) as repo:
        _echo_json([p.as_dict() for p in _plans(repo).all()])


@plan_app.command("show")
def plan_show(name: NameArg, database_url: DatabaseUrlOpt = None) -> None:
    """One plan: where it started, what it edits, and its conflicts with the data."""
    with _repository(database_url) as repo:
        plans = _plans(repo)
        info = plans.get(name).as_dict()
        edits = plans.edits(name)
        info["written"] = {layer: sorted(map(str, frame.iloc[:, 0].tolist()))
                           for layer, frame in edits.rows.items() if len(frame)}
        info["deleted"] = {layer: ids for layer, ids in edits.deleted.items() if ids}
        info["conflicts"] = [c.__dict__ for c in plans.conflicts(name)]
        _echo_json(info)


@plan_app.command("discard")
def plan_discard(name: NameArg, database_url: DatabaseUrlOpt = None) -> None:
    """Delete a plan and its edits (the data is not touched)."""
    with _repository(database_url) as repo:
        _plans(repo).discard(name)
        _echo_json({"discarded": name})


@plan_app.command("apply")
def plan_apply(
    name: NameArg,
    features: Annotated[Path, typer.Argument(
        help="A .gpkg or a directory of layer files holding the features to write (any "
             "layers; spans may name nodes of the data or of the plan).")],
    database_url: DatabaseUrlOpt = None,
    mode: Annotated[str, typer.Option(
        help="upsert (insert or replace), insert (ids must be new in the plan) or replace "
             "(ids must exist).")] = "upsert",
) -> None:
    """Write the features of a file into the plan, all or nothing."""
    from netgis.io import read_raw

    if mode not in ("upsert", "insert", "replace"):
        typer.echo(f"error: --mode must be upsert, insert or replace, not {mode!r}", err=True)
        raise typer.Exit(2)
    layers = {layer: raw.frame for layer, raw in read_raw(features).items() if len(raw.frame)}
    with _repository(database_url) as repo:
        version = _plans(repo).write_layers(name, layers, mode=mode,  # type: ignore[arg-type]
                                            actor=ACTOR)
        _echo_json({"plan": name, "version": version,
                    "written": {layer: len(frame) for layer, frame in layers.items()}})


@plan_app.command("build")
def plan_build(
    name: NameArg,
    cluster_ids: Annotated[list[str] | None, typer.Argument(
        help="Gap clusters to build (ids as `netgis gaps` names them).")] = None,
    top: Annotated[int | None, typer.Option(
        help="Build the N best-ranked gap clusters (lowest cost per unit).")] = None,
    database_url: DatabaseUrlOpt = None,
    drop_m: DropOpt = DEFAULT_DROP_M,
) -> None:
    """Add the sketched routes of gap clusters to the plan, in service.

    The clusters are those of the plan as it is (the data with the plan's edits), so
    builds can be added one after another.
    """
    from netgis.engine.analysis import analyze
    from netgis.errors import ParameterError, Problem
    from netgis.products.gaps.plan import cluster_builds
    from netgis.products.gaps.result import gap_analysis

    if not cluster_ids and top is None:
        raise ParameterError([Problem("parameters", None, "cluster_ids",
                                      "name clusters or give --top N")])
    with _repository(database_url) as repo:
        plans = _plans(repo)
        _, dataset = plans.dataset(name)
        gaps = gap_analysis(analyze(dataset, drop_m=drop_m))
        ids = list(cluster_ids or [])
        if top is not None:
            ids += [c for c in gaps.plan.clusters["cluster_id"].astype(str).tolist()[:top]
                    if c not in ids]
        nodes, spans = cluster_builds(gaps.plan, ids)
        version = plans.write_layers(name, {"nodes": nodes, "spans": spans}, mode="insert",
                                     actor=ACTOR)
        _echo_json({"plan": name, "version": version, "clusters": ids,
                    "nodes": len(nodes), "spans": len(spans)})


@plan_app.command("export")
def plan_export(
    name: NameArg,
    out: Annotated[Path, typer.Option("--out", help="Dataset file or directory to write "
                                      "(.gpkg, or a directory of .geojson/.fgb/.parquet).")],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Write the plan's dataset (the data with the plan's edits) to a file that
    ``netgis analyze`` reads."""
    from netgis.io import write_dataset

    with _repository(database_url) as repo:
        version, dataset = _plans(repo).dataset(name)
        path = write_dataset(dataset, out)
        _echo_json({"plan": name, "data_version": version, "out": str(path),
                    **{layer: len(frame) for layer, frame in dataset.layers().items()}})


def _analyses(repo: Any, name: str, drop_m: float, budget: LossBudget | None
              ) -> tuple[Analysis, Analysis]:
    """Main's analysis and the plan's: the plan's edits applied to main's live analysis."""
    from netgis.engine.live import Changes, LiveAnalysis

    plans = _plans(repo)
    edits = plans.edits(name)
    _, main = repo.read_consistent()
    live = LiveAnalysis(main, drop_m=drop_m, budget=budget)
    before = live.analysis
    plans.dataset(name)  # the plan as a whole must be valid (names what breaks it)
    after = live.apply(Changes.of(rows=edits.rows, deleted=edits.deleted))
    _echo_warnings(after.warnings)
    return before, after


@plan_app.command("kpis")
def plan_kpis(
    name: NameArg, database_url: DatabaseUrlOpt = None, drop_m: DropOpt = DEFAULT_DROP_M,
    pon_class: PonClassOpt = None, budget_db: BudgetOpt = None,
    atten_db_per_km: AttenOpt = None, splice_db: SpliceOpt = None, fixed_db: FixedOpt = None,
) -> None:
    """The plan's KPIs (kpis.json's shape)."""
    budget = _budget(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db)
    with _repository(database_url) as repo:
        _, after = _analyses(repo, name, drop_m, budget)
        _echo_json(dict(after.kpis))


@plan_app.command("compare")
def plan_compare(
    name: NameArg, database_url: DatabaseUrlOpt = None, drop_m: DropOpt = DEFAULT_DROP_M,
    fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    pon_class: PonClassOpt = None, budget_db: BudgetOpt = None,
    atten_db_per_km: AttenOpt = None, splice_db: SpliceOpt = None, fixed_db: FixedOpt = None,
) -> None:
    """What the plan changes against the data: KPIs, premises newly passed, single points of
    failure, cost and bill of materials."""
    from netgis.products.plan_compare import compare_analyses, compare_csv

    if fmt not in ("json", "csv"):
        typer.echo(f"error: --format must be json or csv, not {fmt!r}", err=True)
        raise typer.Exit(2)
    budget = _budget(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db)
    with _repository(database_url) as repo:
        before, after = _analyses(repo, name, drop_m, budget)
        result = compare_analyses(before, after)
        if fmt == "csv":
            typer.echo(compare_csv(result), nl=False)
        else:
            _echo_json({"plan": name, **result})


@plan_app.command("merge")
def plan_merge(name: NameArg, database_url: DatabaseUrlOpt = None) -> None:
    """Apply the plan's edits to the data in one transaction (exit 2 and nothing merged on
    a conflict: a feature the data changed since the plan touched it)."""
    with _repository(database_url) as repo:
        counts = _plans(repo).merge(name, actor=ACTOR)
        _echo_json({"merged": name, "data_version": counts.data_version,
                    "written": dict(counts)})


@plan_app.command("rebase")
def plan_rebase(name: NameArg, database_url: DatabaseUrlOpt = None) -> None:
    """Take the data as it is now as the plan's starting point (after settling conflicts)."""
    with _repository(database_url) as repo:
        _echo_json(_plans(repo).rebase(name).as_dict())
