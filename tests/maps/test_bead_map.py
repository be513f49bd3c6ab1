"""The BEAD map: ``netgis map bead`` on the shipped sample inputs, and ``/maps/bead`` (the
form, then the map of what it sends) from a real server in headless Chromium.

The server holds the ring_spur example. Its files, by hand (docs/gaps.md's rules; p_spur2
and p_ring are passed, p_far is 300 m from the nearest lit span):

| location | stands at | records | class | plant (reach 500 m) |
|---|---|---|---|---|
| A | p_spur2 | fiber 1000/1000 | served | passed |
| B | p_far | fiber 200/2, licensed wireless 30/5 | underserved | reachable |
| C | 3.3 km north of p_far | none | unserved | beyond |
| D | p_far | DSL 10/1 | unserved | reachable |
| ``<img src=x onerror=...>`` | p_ring | cable 300/30 | served | passed |
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from netgis.api.app import create_app
from netgis.cli import main
from netgis.io import read_dataset
from netgis.products.bead import bead
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.helpers import EXAMPLES_DIR
from tests.maps.helpers import page_layers, run_axe

ROOT = Path(__file__).parents[2]
XSS = "<img src=x onerror=alert(1)>"
EXPECTED = {"A": ("served", "passed"), "B": ("underserved", "reachable"),
            "C": ("unserved", "beyond"), "D": ("unserved", "reachable"),
            XSS: ("served", "passed")}


def drawn(html: str) -> dict[str, tuple[str, str]]:
    """(class, plant) of every location drawn on a rendered page, read from its CSS classes."""
    out: dict[str, tuple[str, str]] = {}
    for css, features in page_layers(html).items():
        names = css.split()
        if "netgis-bead" not in names:
            continue
        bead_class, plant = (n.removeprefix("netgis-bead-") for n in names[1:])
        for feature in features.values():
            assert (feature["properties"]["bead_class"], feature["properties"]["plant"]) == (
                bead_class, plant)
            out[feature["properties"]["location_id"]] = (bead_class, plant)
    return out


def test_the_cli_draws_the_sample_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    sample, bead_dir = ROOT / "data" / "sample.gpkg", ROOT / "data" / "bead"
    out = tmp_path / "bead.html"
    monkeypatch.setattr(sys, "argv", [
        "netgis", "map", "bead", str(sample), "--availability",
        str(bead_dir / "availability.csv"), "--locations", str(bead_dir / "fabric.csv"),
        "--out", str(out)])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0, capsys.readouterr().err
    html = out.read_text(encoding="utf-8")
    from netgis.engine.analysis import analyze

    answer = bead(analyze(read_dataset(sample)).lit_spans, bead_dir / "availability.csv",
                  bead_dir / "fabric.csv")
    rows = answer.locations
    assert drawn(html) == {k: (c, p) for k, c, p in zip(
        rows["location_id"], rows["bead_class"], rows["plant"], strict=True)}
    assert len(set(drawn(html).values())) == 9  # the sample has every class at every answer
    assert "/static/" not in html  # one self-contained page


# ---- a real server, a real browser ---------------------------------------------------------

@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """uvicorn on a free loopback port serving ring_spur; the two upload files."""
    root = Path(tmp_path_factory.mktemp("bead-map"))
    url = f"sqlite:///{root / 'live.db'}"
    dataset = read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(dataset)
    repo.engine.dispose()
    points = dataset.premises.to_crs(4326).set_index("premise_id").geometry
    at = {pid: (float(points.y[pid]), float(points.x[pid]))
          for pid in ("p_spur2", "p_far", "p_ring")}
    (spur_y, spur_x), (far_y, far_x), (ring_y, ring_x) = at.values()
    (root / "fabric.csv").write_text(
        "location_id,latitude,longitude\n"
        f"A,{spur_y},{spur_x}\nB,{far_y},{far_x}\nC,{far_y + 0.03},{far_x}\n"
        f"D,{far_y},{far_x}\n\"{XSS}\",{ring_y},{ring_x}\n", encoding="utf-8")
    (root / "availability.csv").write_text(
        "location_id,technology,max_advertised_download_speed,max_advertised_upload_speed,"
        "low_latency\nA,50,1000,1000,1\nB,50,200,2,1\nB,71,30,5,1\nD,10,10,1,1\n"
        f"\"{XSS}\",40,300,30,1\n", encoding="utf-8")
    app: FastAPI = create_app(make_settings(url))
    with LiveServer(app) as srv:
        yield srv, root


def test_form_and_map_errors(live: tuple[LiveServer, Path]) -> None:
    srv, root = live
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        form = client.get("/maps/bead", params={"reach_m": 800, "drop_m": 100})
        assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
        assert "form-action 'self'" in form.headers["content-security-policy"]
        assert 'action="/maps/bead?drop_m=100&amp;reach_m=800"' in form.text
        assert client.get("/maps/bead", params={"bbox": "1"}).status_code == 400
        assert client.get("/maps/bead", params={"reach_m": -1}).status_code in (400, 422)
        wrong = client.post("/maps/bead", content=b"{}",
                            headers={"content-type": "application/json"})
        assert wrong.status_code == 415
        one = client.post("/maps/bead", files={"availability": (
            "a.csv", (root / "availability.csv").read_bytes(), "text/csv")})
        assert one.status_code == 422 and one.json()["errors"][0]["field"] == "locations"
        bad = client.post("/maps/bead", files={
            "availability": ("a.csv", b"location_id,technology\nA,50\n", "text/csv"),
            "locations": ("f.csv", (root / "fabric.csv").read_bytes(), "text/csv")})
        assert bad.status_code == 422
        assert "a.csv: missing column" in bad.json()["errors"][0]["reason"]
        assert "Traceback" not in bad.text


def _watch(page: Any) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"requests": [], "errors": [], "failed": [], "dialogs": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("response", lambda r: seen["failed"].append(r.url) if r.status >= 400 else None)
    def dialog(d: Any) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    return seen


def _click_location(page: Any, location_id: str) -> str:
    """Click where the map draws ``location_id``; the text of the popup that opens."""
    x, y = page.evaluate(
        """(id) => {
            const m = window[document.querySelector('.folium-map').id];
            let at = null;
            m.eachLayer(l => {
                if (l.feature && l.getLatLng && l.feature.properties.location_id === id) {
                    at = m.latLngToContainerPoint(l.getLatLng());
                }
            });
            const r = m.getContainer().getBoundingClientRect();
            return [r.left + at.x, r.top + at.y];
        }""", location_id)
    page.mouse.click(x, y)
    text: str = page.wait_for_function(
        """(id) => [...document.querySelectorAll('.leaflet-popup-content')]
            .map(e => e.innerText).find(t => t.split("\\n").includes("location\\t" + id))""",
        arg=location_id, polling=50, timeout=5000).json_value()
    return text


@pytest.mark.browser
def test_the_map_in_chromium(browser_context: Any, live: tuple[LiveServer, Path]) -> None:
    srv, root = live
    answer = httpx.post(f"{srv.url}/analysis/bead", timeout=60, files={
        "availability": ("a.csv", (root / "availability.csv").read_bytes(), "text/csv"),
        "locations": ("f.csv", (root / "fabric.csv").read_bytes(), "text/csv")}).json()
    assert {r["location_id"]: (r["bead_class"], r["plant"])
            for r in answer["locations"]} == EXPECTED
    page = browser_context.new_page()
    axe = f"{srv.url}/static/vendor/axe-core/axe.min.js"
    try:
        seen = _watch(page)
        page.goto(f"{srv.url}/maps/bead", wait_until="networkidle")
        assert page.title().startswith("BEAD map")
        assert run_axe(page, axe) == []
        page.set_input_files("#availability", str(root / "availability.csv"))
        page.set_input_files("#locations", str(root / "fabric.csv"))
        page.click("button[type=submit]")
        page.wait_for_selector(".leaflet-control-layers")
        page.wait_for_load_state("networkidle")
        classes = Counter(c for c, _ in EXPECTED.values())
        plants = Counter(p for _, p in EXPECTED.values())
        for name, n in classes.items():
            assert page.locator(f"path.netgis-bead-{name}").count() == n == answer[name]
        for name, n in plants.items():
            assert page.locator(f"path.netgis-bead-{name}").count() == n
        assert page.locator("path.netgis-span-lit").count() > 0
        legend = page.locator(".netgis-legend").inner_text()
        for line in ("BEAD class and plant", "unserved (2)", "underserved (1)", "served (2)",
                     "filled: the plant passes it",
                     "ring: not passed, a lit span within 500 m",
                     "dashed ring: no lit span within 500 m"):
            assert line in legend, legend
        assert page.locator(".netgis-legend .sw.ring").count() == 1
        assert run_axe(page, axe) == []
        assert "underserved" in _click_location(page, "B")
        # a location id that looks like markup is shown as the text it is
        assert XSS in _click_location(page, XSS)
        assert seen["dialogs"] == [] and seen["errors"] == [] and seen["failed"] == []
        assert {urlsplit(u).hostname for u in seen["requests"]} == {"127.0.0.1"}
    finally:
        page.close()
