"""``netgis trace``, ``netgis capacity`` and ``netgis diversity``: the strand-level plant
(docs/strands.md). Each reads the route layers and the strand layers of DATASET; without
strand layers they exit 2 saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from netgis.cli.common import (
    AttenOpt,
    BudgetOpt,
    DatasetArg,
    DropOpt,
    FixedOpt,
    PonClassOpt,
    SpliceOpt,
    _budget,
    _collector_paused,
    _echo_json,
    _echo_warnings,
    app,
)
from netgis.schema import DEFAULT_CONNECTOR_DB, DEFAULT_DROP_M

if TYPE_CHECKING:
    from netgis.dataset import Dataset
    from netgis.engine.strands import StrandPlant
    from netgis.engine.strands.trace import TraceOptions

ConnectorOpt = Annotated[float | None, typer.Option(
    "--connector-db", help=f"Loss of a connector that records none, dB (default "
                           f"{DEFAULT_CONNECTOR_DB}).")]
PlannedOpt = Annotated[bool, typer.Option(
    "--include-planned", help="Planned cables, spans and nodes take part too.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output directory.")]


def _plant(dataset: Path) -> tuple[Dataset, StrandPlant]:
    from netgis.engine.strands import strand_plant
    from netgis.errors import ConfigError
    from netgis.io import read_dataset
    from netgis.io.strands import has_strand_tables

    if not has_strand_tables(dataset):
        raise ConfigError(f"{dataset} has no strand layers (cables, cable_spans, splitters, "
                          "olt_ports, connections, drops, strand_state): see docs/strands.md")
    ds = read_dataset(dataset)  # checks the strand layers and keeps their index
    return ds, strand_plant(ds, ds.strands)


def _options(pon_class: str | None, budget_db: float | None, atten: float | None,
             splice: float | None, fixed: float | None, connector: float | None,
             planned: bool) -> TraceOptions:
    from netgis.engine.optics import LossBudget
    from netgis.engine.strands.trace import TraceOptions

    budget = _budget(pon_class, budget_db, atten, splice, fixed) or LossBudget()
    return TraceOptions(budget=budget, include_planned=planned,
                        connector_db=DEFAULT_CONNECTOR_DB if connector is None else connector)


@app.command()
def trace(
    dataset: DatasetArg,
    out: OutOpt = Path("netgis-trace"),
    olt_port: Annotated[list[str] | None, typer.Option(
        "--olt-port", help="Trace down from this OLT port only (repeat for more).")] = None,
    premise: Annotated[list[str] | None, typer.Option(
        "--premise", help="Only the paths to this premise (repeat for more).")] = None,
    cut_spans: Annotated[list[str] | None, typer.Option(
        "--cut-spans", help="A span cut (repeat for more).")] = None,
    cut_strands: Annotated[list[str] | None, typer.Option(
        "--cut-strands", help="A strand cut: CABLE:STRAND everywhere or CABLE:STRAND@SPAN "
                              "(repeat for more).")] = None,
    fail_nodes: Annotated[list[str] | None, typer.Option(
        "--fail-nodes", help="A failed node (repeat for more).")] = None,
    fail_ducts: Annotated[list[str] | None, typer.Option(
        "--fail-ducts", help="A failed duct: every span in it is cut (repeat for more).")] = None,
    include_planned: PlannedOpt = False,
    budget_db: BudgetOpt = None,
    pon_class: PonClassOpt = None,
    atten_db_per_km: AttenOpt = None,
    splice_db: SpliceOpt = None,
    fixed_db: FixedOpt = None,
    connector_db: ConnectorOpt = None,
) -> None:
    """Follow the glass from OLT ports to premises: trace_paths.csv, trace_hops.csv,
    upstream.csv (and cut_premises.csv under a cut) in --out; a summary on stdout."""
    from netgis.engine.outputs import check_output_dir
    from netgis.engine.strands.outputs import parse_cut_strands, run_trace, write_trace
    from netgis.engine.strands.trace import CutSet

    check_output_dir(out)
    options = _options(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db,
                       connector_db, include_planned)
    cut = CutSet(spans=frozenset(cut_spans or ()), nodes=frozenset(fail_nodes or ()),
                 ducts=frozenset(fail_ducts or ()),
                 strands=parse_cut_strands(cut_strands or ()))
    with _collector_paused():  # the plant's millions of tuples live to the end
        ds, plant = _plant(dataset)
        result = run_trace(plant, ds, options, ports=olt_port or (), premises=premise or (),
                           cut=cut)
        _echo_warnings(result.warnings)
        write_trace(result, out)
        typer.echo(f"wrote the trace files to {out}", err=True)
        _echo_json(result.summary)


@app.command()
def capacity(
    dataset: DatasetArg,
    out: OutOpt = Path("netgis-capacity"),
    drop_m: DropOpt = DEFAULT_DROP_M,
    budget_db: BudgetOpt = None,
    pon_class: PonClassOpt = None,
    atten_db_per_km: AttenOpt = None,
    splice_db: SpliceOpt = None,
    fixed_db: FixedOpt = None,
    connector_db: ConnectorOpt = None,
) -> None:
    """Strands by state per span, splitter ports, connected and connectable premises:
    span_capacity.csv, splitter_ports.csv, premise_capacity.csv and capacity.json in --out;
    the KPIs on stdout."""
    from netgis.engine.analysis import passed_premises
    from netgis.engine.outputs import check_output_dir
    from netgis.engine.strands.outputs import run_capacity, write_capacity

    check_output_dir(out)
    options = _options(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db,
                       connector_db, False)
    with _collector_paused():  # the plant's millions of tuples live to the end
        ds, plant = _plant(dataset)
        passed = passed_premises(ds, drop_m=drop_m)
        cap, warnings = run_capacity(plant, ds, passed, drop_m=drop_m, options=options)
        _echo_warnings(warnings)
        write_capacity(cap, out)
        typer.echo(f"wrote the capacity files to {out}", err=True)
        _echo_json(cap.kpis)


@app.command()
def diversity(
    dataset: DatasetArg,
    a: Annotated[str, typer.Argument(help="A premise (or drop) id.")],
    b: Annotated[str, typer.Argument(help="Another premise (or drop) id.")],
    include_planned: PlannedOpt = False,
    budget_db: BudgetOpt = None,
    pon_class: PonClassOpt = None,
    atten_db_per_km: AttenOpt = None,
    splice_db: SpliceOpt = None,
    fixed_db: FixedOpt = None,
    connector_db: ConnectorOpt = None,
) -> None:
    """Whether the best paths of two premises share spans, ducts or nodes (JSON)."""
    from netgis.engine.strands.diversity import diversity as run_diversity
    from netgis.engine.strands.trace import trace_network

    options = _options(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db,
                       connector_db, include_planned)
    with _collector_paused():  # the plant's millions of tuples live to the end
        _, plant = _plant(dataset)
        tr = trace_network(plant, options)
        _echo_json(run_diversity(plant, tr, a, b, options))
