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
    from netgis.products.gaps.plan import chosen_clusters, cluster_builds
    from netgis.products.gaps.result import gap_analysis

    if not cluster_ids and top is None:
        raise ParameterError([Problem("parameters", None, "cluster_ids",
                                      "name clusters or give --top N")])
    with _repository(database_url) as repo:
        plans = _plans(repo)
        _, dataset = plans.dataset(name)
        gaps = gap_analysis(analyze(dataset, drop_m=drop_m))
        ids = chosen_clusters(gaps.plan, cluster_ids or [], top)
        nodes, spans = cluster_builds(gaps.plan, ids)
        version = plans.write_layers(name, {"nodes": nodes, "spans": spans}, mode="insert",
                                     actor=ACTOR, action="build")
        _echo_json({"plan": name, "version": version, "clusters": ids,
                    "nodes": len(nodes), "spans": len(spans)})


@plan_app.command("switch-on")
def plan_switch_on(
    name: NameArg,
    span: Annotated[list[str] | None, typer.Option("--span", help="A span to put in service "
                                                   "(repeat).")] = None,
    node: Annotated[list[str] | None, typer.Option("--node", help="A node to put in service "
                                                   "(repeat).")] = None,
    all_planned: Annotated[bool, typer.Option(
        "--all-planned", help="Every span and node of the plan whose status is planned.")]
    = False,
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Put planned spans and nodes of the plan in service, in one write."""
    from netgis.errors import ParameterError, Problem

    if not span and not node and not all_planned:
        raise ParameterError([Problem("parameters", None, "span",
                                      "give --span, --node or --all-planned")])
    with _repository(database_url) as repo:
        version, switched = _plans(repo).switch_on(name, spans=span or [], nodes=node or [],
                                                   all_planned=all_planned, actor=ACTOR)
        _echo_json({"plan": name, "version": version,
                    **{layer: len(ids) for layer, ids in switched.items()}})


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
    edits.dataset_on(main)  # the plan as a whole must be valid (names what breaks it)
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
    bead_availability: Annotated[list[Path] | None, typer.Option(
        "--bead-availability", help="FCC BDC availability CSV(s): BEAD-eligible locations "
        "(unserved or underserved) the plan newly serves are counted apart.")] = None,
) -> None:
    """What the plan changes against the data: KPIs, premises newly passed, single points of
    failure, cost and bill of materials, BEAD locations newly served."""
    from netgis.products.plan_compare import compare_analyses, compare_csv

    if fmt not in ("json", "csv"):
        typer.echo(f"error: --format must be json or csv, not {fmt!r}", err=True)
        raise typer.Exit(2)
    budget = _budget(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db)
    with _repository(database_url) as repo:
        before, after = _analyses(repo, name, drop_m, budget)
        eligible = None
        if bead_availability:
            from netgis.products.bead import read_availability
            from netgis.products.program import eligible_premises

            eligible = eligible_premises(after.dataset,
                                         read_availability(bead_availability).best)
        result = compare_analyses(before, after, eligible=eligible)
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
        _echo_json(_plans(repo).rebase(name, actor=ACTOR).as_dict())


@app.command("program")
def program(
    dataset: Annotated[Path | None, typer.Argument(
        help="A dataset file (omit with --db).")] = None,
    db: Annotated[bool, typer.Option("--db", help="Read the data from the database "
                                     "(NETGIS_DATABASE_URL, default ./netgis.db).")] = False,
    database_url: DatabaseUrlOpt = None,
    budget_per_year: Annotated[float | None, typer.Option(
        "--budget-per-year", help="Money per year for gap builds (the gap planner's cost "
        "units). Without it, --goal-date asks for the least budget that reaches the goal.")]
    = None,
    goal_date: Annotated[str | None, typer.Option(
        "--goal-date", help="Reach the goal by the end of this date's year (YYYY or "
        "YYYY-MM-DD).")] = None,
    start_year: Annotated[int | None, typer.Option(
        "--start-year", help="First year of building (default: next year).")] = None,
    goal_pct: Annotated[float, typer.Option(
        "--goal-pct", help="The goal: coverage (units) in percent.")] = 100.0,
    bead_availability: Annotated[list[Path] | None, typer.Option(
        "--bead-availability", help="FCC BDC availability CSV(s): clusters holding "
        "BEAD-eligible (unserved, underserved) locations are built first.")] = None,
    save_plans: Annotated[str | None, typer.Option(
        "--save-plans", help="With --db: save each year's builds as a plan named "
        "PREFIX-YEAR.")] = None,
    drop_m: DropOpt = DEFAULT_DROP_M,
) -> None:
    """Choose gap builds year by year to the coverage goal: each year's builds, cost, units
    passed and coverage, and the year the goal is reached (or the budget per year that
    reaches it by --goal-date)."""
    import datetime

    from netgis.errors import ParameterError, Problem
    from netgis.io import read_dataset
    from netgis.products.program import eligible_premises, program_to_goal

    if (dataset is None) == (not db):
        raise ParameterError([Problem("parameters", None, "dataset",
                                      "give a DATASET or --db (one of them)")])
    if budget_per_year is None and goal_date is None:
        raise ParameterError([Problem("parameters", None, "budget_per_year",
                                      "give --budget-per-year, --goal-date or both")])
    if save_plans is not None and not db:
        raise ParameterError([Problem("parameters", None, "save_plans", "needs --db")])
    goal_year = None
    if goal_date is not None:
        try:
            goal_year = int(goal_date) if goal_date.isdigit() else \
                datetime.date.fromisoformat(goal_date).year
        except ValueError:
            raise ParameterError([Problem("parameters", None, "goal_date",
                                          f"not a year or YYYY-MM-DD: {goal_date!r}")]) from None
    first = start_year if start_year is not None else datetime.date.today().year + 1
    if db:
        with _repository(database_url) as repo:
            _, data = repo.read_consistent()
    else:
        assert dataset is not None
        data = read_dataset(dataset)
    eligible = None
    if bead_availability:
        from netgis.products.bead import read_availability

        eligible = eligible_premises(data, read_availability(bead_availability).best)
    prog, needed = program_to_goal(data, start_year=first, budget_per_year=budget_per_year,
                                   goal_year=goal_year, goal_pct=goal_pct, drop_m=drop_m,
                                   eligible=eligible)
    out = prog.as_dict()
    if goal_year is not None:
        out["goal_date_year"] = goal_year
        out["goal_met_by_date"] = prog.goal_year is not None and prog.goal_year <= goal_year
    if budget_per_year is None:
        out["budget_per_year_needed"] = needed
    if save_plans is not None:
        saved = []
        with _repository(database_url) as repo:
            plans = _plans(repo)
            for year, (nodes, spans) in prog.builds.items():
                name = f"{save_plans}-{year}"
                plans.create(name, actor=ACTOR, description=f"programme year {year}")
                plans.write_layers(name, {"nodes": nodes, "spans": spans}, mode="insert",
                                   actor=ACTOR)
                saved.append(name)
        out["plans"] = saved
    _echo_json(out)
