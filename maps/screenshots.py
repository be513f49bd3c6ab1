"""Regenerate the map screenshots of the docs:
``python -m maps.screenshots [DATASET] [DIR] [KIND...]``.

Builds each map kind on DATASET (default ``data/sample.gpkg``), the compare map of
a design plan of its five best gap builds (``plan-compare``) and the BEAD map of the
sample's BEAD inputs (``bead``, data/bead/), opens the self-contained
page in headless ``/usr/bin/chromium`` (Playwright, no network) and writes
``DIR/map-<kind>.png`` (default ``docs/``), 800x500 PNG; KIND... limits it to those.
A development tool: Playwright is a test dependency, imported only here.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import folium

from netgis.maps import MAP_KINDS, areas_map, coverage_map, criticality_map, gaps_map, inline_html

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def build_all(dataset: str) -> dict[str, folium.Map]:
    """One map of each kind on ``dataset`` (criticality with one span cut as a scenario)."""
    from netgis.engine.analysis import analyze, scenario
    from netgis.io import read_dataset
    from netgis.products.gaps import gap_analysis

    result = analyze(read_dataset(dataset))
    # a cut that takes down about 3 % of the units: visible, without hiding the rest
    cut = result.spans["cut_units"]
    target = 0.03 * float(result.premises["units"].sum())
    span = result.spans["span_id"].iloc[int((cut - target).abs().to_numpy().argmin())]
    impact = scenario(result, spans=[span])
    clusters = gap_analysis(result).plan.clusters
    return {
        "coverage": coverage_map(result.premises, result.spans, result.nodes),
        "criticality": criticality_map(result.spans, result.nodes, premises=result.premises,
                                       scenario=impact),
        "gaps": gaps_map(result.premises, spans=result.spans, ranking=clusters),
        "plan-compare": _plan_compare(result, clusters),
        "areas": areas_map(result.dataset.areas, result.kpis["areas"]),
        "bead": _bead(result),
    }


def _bead(result: Any) -> folium.Map:
    """The BEAD map of the sample's availability and Fabric files (data/bead/)."""
    from netgis.maps.bead import bead_map
    from netgis.products.bead import bead

    inputs = Path(__file__).resolve().parents[1] / "data" / "bead"
    answer = bead(result.lit_spans, inputs / "availability.csv", inputs / "fabric.csv")
    return bead_map(answer, spans=result.spans)


def _plan_compare(result: Any, clusters: Any) -> folium.Map:
    """The compare map of a plan of the five best-ranked gap builds."""
    from netgis.engine.analysis import analyze
    from netgis.maps.plan import compare_map
    from netgis.products.gaps import gap_analysis
    from netgis.products.gaps.plan import apply_plan, cluster_builds
    from netgis.products.plan_compare import compare_analyses

    plan = gap_analysis(result).plan
    nodes, spans = cluster_builds(plan, clusters["cluster_id"].astype(str).tolist()[:5])
    after = analyze(apply_plan(result.dataset, replace(plan, nodes=nodes, spans=spans)))
    return compare_map(result, after, compare_analyses(result, after))


def main(argv: list[str]) -> int:
    """Write ``map-<kind>.png`` for every kind; print the files and their sizes."""
    from playwright.sync_api import sync_playwright

    dataset = argv[0] if argv else "data/sample.gpkg"
    out_dir = Path(argv[1] if len(argv) > 1 else "docs")
    out_dir.mkdir(parents=True, exist_ok=True)
    built = build_all(dataset)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(Path(tmp) / "profile"), executable_path="/usr/bin/chromium", headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 800, "height": 500})
        for kind in argv[2:] or [*MAP_KINDS, "plan-compare", "bead"]:
            page_file = Path(tmp) / f"{kind}.html"
            page_file.write_text(inline_html(built[kind]), encoding="utf-8")
            page = ctx.new_page()
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_selector(".leaflet-control-layers")
            page.wait_for_timeout(400)  # let the fit-to-bounds settle
            target = out_dir / f"map-{kind}.png"
            page.screenshot(path=str(target))
            page.close()
            print(f"{target} {target.stat().st_size // 1024} KB")
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
