"""The maps in headless Chromium, served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import geopandas as gpd
import numpy as np
import pytest

from netgis.engine.analysis import Analysis, scenario
from netgis.maps import areas_map, coverage_map, criticality_map, gaps_map, inline_html
from tests.maps.helpers import PageServer, closed_port

pytestmark = pytest.mark.browser


@dataclass
class Loaded:
    """A page loaded in Chromium and everything it did on the way."""

    page: Any
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def count(self, selector: str) -> int:
        n: int = self.page.locator(selector).count()
        return n


def load(context: Any, url: str) -> Loaded:
    page = context.new_page()
    out = Loaded(page)
    page.on("request", lambda r: out.requests.append(r.url))
    page.on("requestfailed", lambda r: out.failed.append(r.url))
    page.on("response", lambda r: out.failed.append(r.url) if r.status >= 400 else None)
    page.on("console", lambda m: out.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: out.errors.append(str(e)))
    page.goto(url, wait_until="load")
    page.wait_for_selector(".leaflet-control-layers")
    page.wait_for_load_state("networkidle")
    return out


def assert_clean(loaded: Loaded, allowed_failures: tuple[str, ...] = ()) -> None:
    assert loaded.errors == []
    assert [u for u in loaded.failed if not u.startswith(allowed_failures)] == []
    hosts = {urlsplit(u).hostname for u in loaded.requests}
    assert hosts == {"127.0.0.1"}, hosts


def screen_xy(loaded: Loaded, points: gpd.GeoSeries) -> np.ndarray:
    """Page pixel position of each point, from the map's own projection."""
    wgs = points.to_crs(4326)
    xy = loaded.page.evaluate(
        """(pts) => {
            const m = window[document.querySelector('.folium-map').id];
            const r = m.getContainer().getBoundingClientRect();
            return pts.map(([lat, lng]) => {
                const p = m.latLngToContainerPoint([lat, lng]);
                return [p.x + r.left, p.y + r.top];
            });
        }""",
        [[float(y), float(x)] for x, y in zip(wgs.x, wgs.y, strict=True)],
    )
    return np.asarray(xy, dtype=float).reshape(-1, 2)


def settled_xy(loaded: Loaded, point: gpd.GeoSeries) -> tuple[float, float]:
    """Where ``point`` is drawn once the map stands still.

    Opening a popup pans the map (animated), and so may a late fitBounds: a
    position read mid-animation would miss the marker.
    """
    last = screen_xy(loaded, point)[0]
    for _ in range(40):
        loaded.page.wait_for_timeout(50)
        now = screen_xy(loaded, point)[0]
        if np.allclose(now, last, atol=0.01):
            break
        last = now
    return float(last[0]), float(last[1])


#: Class of the element drawn at a page position, or "popup" when an open popup is there.
HIT = """([x, y]) => {
    const e = document.elementFromPoint(x, y);
    if (!e) return null;
    if (e.closest('.leaflet-popup')) return 'popup';
    return e.getAttribute('class');
}"""


def click_premises(loaded: Loaded, premises: gpd.GeoDataFrame, ids: list[str], css: str,
                   want: int = 3) -> int:
    """Click premises ``ids`` where they are drawn; each popup must name its premise.

    Only premises with no other premise within 12 px are clicked (a click on a
    pile of markers opens the top one's popup, rightly).
    """
    page = loaded.page
    xy = screen_xy(loaded, premises.geometry)
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(dist, np.inf)
    isolated = dist.min(axis=1) > 12
    clicked = 0
    for i in np.flatnonzero(premises["premise_id"].isin(ids).to_numpy() & isolated):
        x, y = settled_xy(loaded, premises.geometry.iloc[[i]])
        hit = page.evaluate(HIT, [x, y])
        if hit == "popup":  # the popup opened last covers this premise: close it first
            page.evaluate("() => window[document.querySelector('.folium-map').id].closePopup()")
            page.locator(".leaflet-popup").wait_for(state="detached")
            hit = page.evaluate(HIT, [x, y])
        if not hit or css not in hit:
            continue  # under a control, an open popup, or off screen
        page.mouse.click(x, y)
        pid = premises["premise_id"].iloc[i]
        # the popup must come up naming this premise (it replaces the one open before)
        page.wait_for_function(
            """(pid) => Array.from(document.querySelectorAll('.leaflet-popup-content'))
                .some(e => e.innerText.split(/\\s+/).includes(pid))""",
            arg=pid, polling=50, timeout=5000)
        clicked += 1
        if clicked == want:
            break
    return clicked


def test_coverage_page(browser_context: Any, server: PageServer, city: Analysis,
                       tmp_path: Path) -> None:
    m = coverage_map(city.premises, city.spans, city.nodes)
    page = load(browser_context, server.write("coverage.html", m.get_root().render()))
    assert_clean(page)
    assert any(u.endswith("/static/vendor/leaflet/dist/leaflet.js") for u in page.requests)
    p, s = city.premises, city.spans
    assert page.count("path.netgis-premise-passed") == int(p["passed"].sum())
    assert page.count("path.netgis-premise-unpassed") == int((~p["passed"]).sum())
    assert page.count("path.netgis-span-lit") == int(s["lit"].sum())
    assert page.count("path.netgis-cabinet") == int((city.nodes["kind"] == "cabinet").sum())
    assert page.count("path.leaflet-interactive") == (
        len(p) + len(s) + int(city.nodes["kind"].isin(["core", "cabinet"]).sum()))
    assert page.count(".netgis-legend") == 1
    ids = p["premise_id"]
    assert click_premises(page, p, list(ids[~p["passed"]]), "netgis-premise-unpassed") >= 1
    assert click_premises(page, p, list(ids[p["passed"]]), "netgis-premise-passed") == 3
    page.page.screenshot(path=tmp_path / "coverage.png")
    assert (tmp_path / "coverage.png").stat().st_size > 5_000
    page.page.close()


def test_criticality_page(browser_context: Any, server: PageServer, ring: Analysis,
                          tmp_path: Path) -> None:
    sc = scenario(ring, spans=["s5"])
    m = criticality_map(ring.spans, ring.nodes, premises=ring.premises, scenario=sc)
    page = load(browser_context, server.write("criticality.html", m.get_root().render()))
    assert_clean(page)
    assert page.count("path.netgis-span-spof") == 2  # s5 and s6
    assert page.count("path.netgis-span-safe") == 4
    assert page.count("path.netgis-node-spof") == 2  # B and E
    assert page.count("path.netgis-scenario-span") == 1
    assert page.count("path.netgis-scenario-premise") == 3  # p_spur1, p_spur2, p_end
    assert click_premises(page, ring.premises, sc.premise_ids, "netgis-scenario-premise",
                          want=3) == 3
    page.page.screenshot(path=tmp_path / "criticality.png")
    page.page.close()


def test_gaps_page(browser_context: Any, server: PageServer, city: Analysis,
                   tmp_path: Path) -> None:
    p = city.premises
    unpassed = p[~p["passed"]]
    ranking = gpd.GeoDataFrame({"rank": [1, 2]}, geometry=list(unpassed.geometry.iloc[:2]),
                               crs=p.crs)
    m = gaps_map(p, spans=city.spans, ranking=ranking)
    page = load(browser_context, server.write("gaps.html", m.get_root().render()))
    assert_clean(page)
    n_hex = page.count("path.netgis-gap-hex")
    assert n_hex >= 1
    outlines = page.page.evaluate("() => Array.from(document.querySelectorAll("
                                  "'path.netgis-gap-hex')).map(e => e.getAttribute('d'))")
    assert n_hex == len(set(outlines))  # each cell drawn once
    assert page.count("path.netgis-premise-unpassed") == len(unpassed)
    assert page.count(".netgis-rank") == 2
    page.page.locator(".netgis-rank", has_text="1").click()
    assert "rank" in page.page.locator(".leaflet-popup-content").inner_text()
    page.page.screenshot(path=tmp_path / "gaps.png")
    page.page.close()


def test_areas_page(browser_context: Any, server: PageServer, city: Analysis,
                    tmp_path: Path) -> None:
    areas = city.dataset.areas
    m = areas_map(areas, city.kpis["areas"])
    page = load(browser_context, server.write("areas.html", m.get_root().render()))
    assert_clean(page)
    assert page.count("path.netgis-area-coverage") == len(areas) > 0
    assert page.count("path.netgis-area-protected") == 0  # second layer starts hidden
    page.page.get_by_text("Node protected %").click()
    assert page.count("path.netgis-area-protected") == len(areas)
    page.page.screenshot(path=tmp_path / "areas.png")
    page.page.close()


def test_aggregated_page_uses_canvas(browser_context: Any, server: PageServer, city: Analysis
                                     ) -> None:
    m = coverage_map(city.premises, city.spans, city.nodes, max_features=30)
    page = load(browser_context, server.write("coverage_hex.html", m.get_root().render()))
    assert_clean(page)
    assert page.count("canvas.leaflet-zoom-animated") == 1
    assert page.count("path.netgis-premise-passed") == 0


def test_inline_page_loads_nothing_else(browser_context: Any, server: PageServer,
                                        ring: Analysis) -> None:
    html = inline_html(coverage_map(ring.premises, ring.spans, ring.nodes))
    url = server.write("inline.html", html)
    page = load(browser_context, url)
    assert_clean(page)
    assert page.requests == [url]
    assert page.count("path.leaflet-interactive") == 6 + 6 + 4
    # the layer control icon comes from leaflet.css as an inlined image
    assert page.page.evaluate(
        "() => getComputedStyle(document.querySelector('.leaflet-control-layers-toggle'))"
        ".backgroundImage.startsWith('url(\"data:image/png')")
    page.page.close()


def test_tiles_from_a_local_server(browser_context: Any, server: PageServer,
                                   ring: Analysis) -> None:
    tiles = f"http://127.0.0.1:{server.port}/tiles/{{z}}/{{x}}/{{y}}.png"
    m = coverage_map(ring.premises, ring.spans, ring.nodes, tiles_url=tiles)
    page = load(browser_context, server.write("tiles.html", m.get_root().render()))
    assert_clean(page)
    assert page.count("img.leaflet-tile-loaded") > 0


def test_unreachable_tiles_still_show_the_plant(browser_context: Any, server: PageServer,
                                                ring: Analysis) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    m = coverage_map(ring.premises, ring.spans, ring.nodes, tiles_url=dead + "/{z}/{x}/{y}.png")
    page = load(browser_context, server.write("dead_tiles.html", m.get_root().render()))
    assert page.failed and all(u.startswith(dead) for u in page.failed)
    assert [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e] == []
    assert page.count("path.leaflet-interactive") == 6 + 6 + 4
    page.page.close()
