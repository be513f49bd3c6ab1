"""Regenerate the map screenshots of the docs: ``python -m maps.screenshots [DATASET] [DIR]``.

Builds each map kind on DATASET (default ``data/sample.gpkg``), opens the
self-contained page in headless ``/usr/bin/chromium`` (Playwright, no
network) and writes ``DIR/map-<kind>.png`` (default ``docs/``), 800x500 PNG.
A development tool: Playwright is a test dependency, imported only here.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

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
        "areas": areas_map(result.dataset.areas, result.kpis["areas"]),
    }


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
        for kind in MAP_KINDS:
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
