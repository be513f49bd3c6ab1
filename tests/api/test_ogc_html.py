"""HTML for every OGC API resource, and /docs and /redoc offline (issue 15).

A real uvicorn server holds ring_spur plus a premise whose address is an XSS
payload. The pages are chosen by ``f=html`` or a browser's Accept header
(JSON stays the default), escape every value, carry a CSP without inline
scripts, and in headless Chromium log no console error and request nothing
beyond 127.0.0.1; the items page draws its features on a Leaflet map. /docs
renders one Swagger UI block per operation of the OpenAPI document, /redoc
renders the reference, both from the vendored assets.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import geopandas as gpd
import httpx
import pandas as pd
import pytest

from netgis.api.app import create_app
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.helpers import EXAMPLES_DIR
from tests.maps.helpers import chromium

PAYLOAD = "<img src=x onerror=alert(1)>"
HOSTILE_ID = "p_xss"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
#: Every OGC resource with an HTML page, with what its page must show.
PAGES = {
    "/": "Conformance classes",
    "/conformance": "ogcapi-features-1/1.0/conf/core",
    "/collections": "Premises",
    "/collections/spans": "Extent (CRS84)",
    "/collections/premises/queryables": "location_id",
    "/collections/premises/items": "next page",
    f"/collections/premises/items/{HOSTILE_ID}": PAYLOAD,
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('html') / 'html.db'}"
    dataset = read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")
    premises = dataset.premises
    hostile = premises.iloc[[0]].copy()
    hostile["premise_id"] = HOSTILE_ID
    hostile["address"] = PAYLOAD
    dataset.premises = gpd.GeoDataFrame(pd.concat([premises, hostile], ignore_index=True),
                                        crs=premises.crs)
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(dataset)
    repo.close()
    with LiveServer(create_app(make_settings(url, default_limit=4))) as server:
        yield server


def _get(live: LiveServer, path: str, accept: str | None = None,
         **params: str) -> httpx.Response:
    headers = {"Accept": accept} if accept is not None else {}
    return httpx.get(f"{live.url}{path}", params=params, headers=headers, timeout=30)


def test_json_by_default_html_when_asked(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for path in PAGES:
            r = client.get(path)
            assert r.status_code == 200 and "html" not in r.headers["content-type"], path
            r.json()
            r = client.get(path, headers={"Accept": BROWSER})
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith("text/html"), path
            assert PAGES[path] in html.unescape(r.text), path
        # the choice, on one resource (one function makes it for all)
        for accept, params, page in ((None, {}, False), ("*/*", {}, False),
                                     ("application/geo+json, text/html;q=0.5", {}, False),
                                     (BROWSER, {"f": "json"}, False),
                                     ("application/json", {"f": "html"}, True),
                                     (None, {"f": "html"}, True)):
            r = client.get("/collections/premises/items", params=params,
                           headers={"Accept": accept} if accept else {})
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/html") is page, (accept, params)
        r = client.get("/collections", params={"f": "html", "colour": "red"})
        assert r.status_code == 400 and "colour" in r.json()["detail"]


def test_values_are_escaped_and_no_inline_script_may_run(live: LiveServer) -> None:
    for path, params in ((f"/collections/premises/items/{HOSTILE_ID}", {}),
                         ("/collections/premises/items", {"limit": "10"})):
        r = _get(live, path, None, f="html", **params)
        assert PAYLOAD not in r.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in r.text
        policy = dict(part.strip().split(" ", 1) for part in
                      r.headers["content-security-policy"].split(";"))
        assert policy["script-src"] == "'self'"
        assert policy["default-src"] == "'none'"
        assert policy["connect-src"] == "'self'"


def test_paging_links_of_the_html_items_page_stay_html(live: LiveServer) -> None:
    first = _get(live, "/collections/premises/items", None, f="html")
    assert "4 of 7 premises" in first.text
    nxt = _get(live, "/collections/premises/items", None, f="html", offset="4", limit="4")
    assert "3 of 7 premises, from number 5" in nxt.text
    assert 'rel="prev"' in nxt.text and 'rel="next"' not in nxt.text


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return None if found is None else html.unescape(found.group(1))


def test_cursor_links_of_the_html_items_page_stay_html(live: LiveServer) -> None:
    first = _get(live, "/collections/premises/items", None, f="html", limit="4")
    assert "4 of 7 premises, from number 1" in first.text and _link(first.text, "prev") is None
    nxt = _link(first.text, "next")
    assert nxt is not None and "cursor=" in nxt and "f=html" in nxt
    second = httpx.get(nxt, timeout=30)
    # a cursor page is not counted from the start: no "from number"
    assert "3 of 7 premises." in second.text and _link(second.text, "next") is None
    prev = _link(second.text, "prev")
    assert prev is not None and "f=html" in prev
    again = httpx.get(prev, timeout=30)
    rows = re.compile(r'href="[^"]*/collections/premises/items/([^"?/]+)\?f=html"')
    assert rows.findall(again.text) == rows.findall(first.text) != []


# ------------------------------------------------------------------------ browser

class _Watch:
    """Console errors, page errors, dialogs and every request of one page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.failed: dict[str, str] = {}
        page.on("requestfailed", lambda r: self.failed.__setitem__(r.url, r.failure or ""))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def reset(self) -> None:
        self.errors.clear()
        self.requests.clear()
        self.dialogs.clear()
        self.failed.clear()

    def outside(self) -> list[str]:
        return [u for u in self.requests
                if urlsplit(u).scheme not in ("data", "blob", "about")
                and urlsplit(u).hostname != "127.0.0.1"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as ctx:
        # anything for another host fails at once: the pages must not need it
        ctx.route("**/*", lambda route: route.abort()
                  if urlsplit(route.request.url).hostname not in ("127.0.0.1", None)
                  else route.continue_())
        yield ctx


@pytest.mark.browser
def test_every_html_page_in_chromium(live: LiveServer, browser: Any) -> None:
    page = browser.new_page()
    watch = _Watch(page)
    try:
        for path, shown in PAGES.items():
            watch.reset()
            page.goto(f"{live.url}{path}", wait_until="networkidle")
            assert page.title(), path
            assert shown in page.inner_text("body"), path
            if "/items" in path:
                # the map drew every feature of the page (points as circle markers)
                page.wait_for_selector("#map[data-features]")
                drawn = int(page.get_attribute("#map", "data-features") or 0)
                expected = 1 if path.endswith(HOSTILE_ID) else 4
                assert drawn == expected, path
                assert page.locator(".leaflet-interactive").count() >= expected
            assert watch.errors == [], (path, watch.errors)
            assert watch.outside() == [], (path, watch.outside())
            assert watch.dialogs == [], path
        # the XSS payload is text in the items table and on the item page
        page.goto(f"{live.url}/collections/premises/items?f=html&limit=10",
                  wait_until="networkidle")
        assert page.locator("td", has_text=PAYLOAD).count() == 1
        assert page.locator("main img").count() == 0
        page.goto(f"{live.url}/collections/premises/items/{HOSTILE_ID}?f=html",
                  wait_until="networkidle")
        assert page.locator("td", has_text=PAYLOAD).count() == 1
        assert page.locator("main img").count() == 0
        # links between the pages: from the landing page to an item, by clicks
        page.goto(f"{live.url}/?f=html")
        page.click("text=The plant: nodes, spans, premises, areas")
        page.click("text=Nodes")
        page.click("text=browse the nodes")
        page.click("td a >> nth=0")
        assert "/collections/nodes/items/" in page.url and "f=html" in page.url
    finally:
        page.close()


def _swagger_operations(page: Any) -> set[str]:
    """Every operation Swagger UI shows, as "METHOD path", found by scrolling down the page
    (with this many operations it renders only those near the window)."""
    script = ("els => els.map(e => e.querySelector('.opblock-summary-method').textContent + "
              "' ' + e.querySelector('.opblock-summary-path').getAttribute('data-path'))")
    shown: set[str] = set()
    y = 0
    while True:
        shown |= set(page.eval_on_selector_all(".opblock", script))
        if y > page.evaluate("document.body.scrollHeight"):
            return shown
        y += 400
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(50)


@pytest.mark.browser
def test_docs_and_redoc_render_offline(live: LiveServer, browser: Any) -> None:
    document = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    methods = {"get", "put", "post", "patch", "delete", "head", "options"}
    operations = sum(len(methods & set(item)) for item in document["paths"].values())
    page = browser.new_page()
    try:
        watch = _Watch(page)
        page.goto(f"{live.url}/docs", wait_until="networkidle")
        page.wait_for_selector(".opblock")
        assert len(_swagger_operations(page)) == operations
        assert watch.errors == [] and watch.outside() == [], (watch.errors, watch.outside())
        assert any(u.endswith("/static/vendor/swagger-ui-dist/swagger-ui-bundle.js")
                   for u in watch.requests)
        watch.reset()
        page.goto(f"{live.url}/redoc", wait_until="networkidle")
        page.wait_for_selector("[data-section-id^='tag/']", timeout=60_000)
        assert "Features" in page.inner_text("body")
        # ReDoc's one reach outside (its logo) is refused by the page's own CSP: the browser
        # never sends it (the test's router, which fails other hosts, is not what stops it)
        assert {u: watch.failed.get(u) for u in watch.outside()} == {
            "https://cdn.redoc.ly/redoc/logo-mini.svg": "csp"}
        assert all("cdn.redoc.ly" in e for e in watch.errors), watch.errors
        assert any(u.endswith("/static/vendor/redoc/bundles/redoc.standalone.js")
                   for u in watch.requests)
    finally:
        page.close()


def test_vendored_docs_assets_carry_their_licences() -> None:
    vendor = Path(__file__).parents[2] / "maps" / "static" / "vendor"
    for package in ("swagger-ui-dist", "redoc"):
        assert (vendor / package / "LICENSE").is_file()
        assert (vendor / package / "VERSION").read_text().startswith(package + "@")
