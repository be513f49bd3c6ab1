"""The ``bdc`` command: the FCC BDC fixed availability filing of the plant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from netgis.cli.common import (
    AttenOpt,
    BudgetOpt,
    DropOpt,
    FixedOpt,
    PonClassOpt,
    SpliceOpt,
    _analyze,
    _budget,
    _echo_json,
    _progress,
    app,
)
from netgis.schema import DEFAULT_DROP_M


@app.command()
def bdc(
    fabric: Annotated[Path, typer.Option(
        "--fabric", help="FCC Fabric CSV: location_id (required), bsl_flag (optional); its "
                         "other columns are not read.")],
    provider_id: Annotated[str, typer.Option("--provider-id",
                                             help="The FCC's 6-digit provider ID.")],
    brand_name: Annotated[str, typer.Option(
        "--brand-name", help="The brand the service is advertised under.")],
    dataset: Annotated[Path | None, typer.Argument(help="A .gpkg file or a directory of layer "
                                                   "files (omit with --db).")] = None,
    technology: Annotated[int, typer.Option(
        "--technology", help="BDC technology code (50: fiber to the premises).")] = 50,
    max_down: Annotated[int, typer.Option(
        "--max-down", help="Maximum advertised download speed, whole Mbps.")] = 1000,
    max_up: Annotated[int, typer.Option(
        "--max-up", help="Maximum advertised upload speed, whole Mbps.")] = 1000,
    low_latency: Annotated[int, typer.Option(
        "--low-latency", help="1: round-trip latency at most 100 ms; 0: more.")] = 1,
    business_residential_code: Annotated[str, typer.Option(
        "--business-residential-code", help="B (business only), R (residential only) or X "
                                            "(both).")] = "X",
    include_out_of_budget: Annotated[bool, typer.Option(
        "--include-out-of-budget", help="File passed locations beyond the optical budget "
                                        "too.")] = False,
    drop_m: DropOpt = DEFAULT_DROP_M,
    budget_db: BudgetOpt = None,
    pon_class: PonClassOpt = None,
    atten_db_per_km: AttenOpt = None,
    splice_db: SpliceOpt = None,
    fixed_db: FixedOpt = None,
    db: Annotated[bool, typer.Option("--db", help="Read the dataset from the database "
                                     "(NETGIS_DATABASE_URL, default ./netgis.db).")] = False,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("netgis-out"),
) -> None:
    """FCC BDC fixed availability location list of the plant: one row per Fabric location a
    passed, in-budget premise stands at; writes bdc_availability.csv, bdc_left_out.csv and
    bdc_summary.json/.md into --out, prints the summary.

    The offer, the Fabric file and --out are checked before the analysis; on any error
    nothing is written.
    """
    from netgis.engine.outputs import check_output_dir
    from netgis.products.bdc import Offer, bdc_filing, read_fabric, write_bdc

    if dataset is None and not db:
        raise typer.BadParameter("give a DATASET or --db")
    offer = Offer(provider_id=provider_id.strip(), brand_name=brand_name,
                  technology=technology, max_down_mbps=max_down, max_up_mbps=max_up,
                  low_latency=low_latency,
                  business_residential_code=business_residential_code.strip().upper())
    offer.check()
    check_output_dir(out)
    locations = read_fabric(fabric)
    budget = _budget(pon_class, budget_db, atten_db_per_km, splice_db, fixed_db)
    with _progress() as step:
        result = _analyze(dataset, db, drop_m, step, budget=budget)
        step("write")
        filing = bdc_filing(result.premises, locations, offer,
                            include_out_of_budget=include_out_of_budget,
                            parameters={"drop_m": float(drop_m),
                                        "budget_db": float(result.budget.budget_db)})
        write_bdc(filing, out, fabric_name=fabric.name)
    _echo_json(filing.summary)
