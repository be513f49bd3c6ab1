"""The residents' portal (/portal) served by a real server and used in headless Chromium:
type-ahead with a typo, the answer in plain words, the map, axe-core, no ids on the page.

``NETGIS_SCREENSHOTS=docs pytest tests/maps/test_portal.py`` also writes the README's
screenshots (docs/portal-passed.png, docs/portal-unpassed.png).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from netgis.api.app import create_app
from netgis.dataset import Dataset
from netgis.engine.analysis import Analysis
from netgis.errors import ConfigError
from netgis.generate import generate_city
from netgis.maps.portal import MessagesError, load_messages
from tests.api.helpers import LiveServer, make_settings
from tests.helpers import missing_house_number

PASSED_ADDRESS = "Sonnenstraße 3"
UNPASSED_ADDRESS = "Am Weiher 9"


def portal_city() -> tuple[Dataset, int, int]:
    """A generated city whose first passed premise is on Sonnenstraße 3 and whose first
    unpassed one (in a gap cluster) is Am Weiher 9; their row positions."""
    ds = generate_city(premises=400, seed=1)
    from netgis.engine.analysis import analyze

    premises = analyze(ds).premises
    passed = int(premises.index.get_loc(premises.index[premises["passed"].to_numpy()][0]))
    unpassed = int(premises.index.get_loc(premises.index[~premises["passed"].to_numpy()][0]))
    frame = ds.premises.copy()
    address = frame["address"].astype(object).to_numpy().copy()
    address[passed], address[unpassed] = PASSED_ADDRESS, UNPASSED_ADDRESS
    frame["address"] = address
    return dataclasses.replace(ds, premises=frame), passed, unpassed


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any, int,
                                                                       int]]:
    ds, passed, unpassed = portal_city()
    url = f"sqlite:///{tmp_path_factory.mktemp('portal') / 'portal.db'}"
    # closed reads: the portal must work without a key all the same
    app = create_app(make_settings(url, open_reads=False))
    with LiveServer(app) as live:
        app.state.repo.load_dataset(ds)
        yield live, app, passed, unpassed


def analysis_of(app: Any) -> Analysis:
    _, result = app.state.services.analysis()
    assert isinstance(result, Analysis)
    return result


def expected_words(app: Any, row: int) -> str:
    """The sentence the card must show for premise ``row``, from the messages file."""

    m = load_messages(None)
    version, result = app.state.services.analysis()
    p = result.premises.iloc[row]
    distance = round(float(p["distance_m"]))
    if p["passed"]:
        protection = (m["protection_node"] if p["node_protected"] else m["protection_span"]
                      if p["span_protected"] else m["protection_none"])
        return m["available"].format(address=p["address"], distance=distance,
                                     protection=protection)
    plan = app.state.services.plan(version, result)
    cluster = plan.premise_cluster.set_index("premise_id").loc[p["premise_id"], "cluster_id"]
    rank = int(plan.clusters.set_index("cluster_id").loc[cluster, "rank"])
    return m["not_yet_ranked"].format(address=p["address"], distance=distance, rank=rank,
                                      total=len(plan.clusters))


def row_of(app: Any, address: str) -> int:
    """The row of the first premise at ``address``."""
    found = analysis_of(app).premises["address"].to_numpy() == address
    return int(found.argmax())


def test_the_build_ranking_is_not_called_a_plan() -> None:
    """Before: "a build area ranked R of T in the city's expansion plan", for a ranking
    netgis makes of the gaps, which nobody has decided to build."""
    messages = load_messages(None)
    assert not [k for k, v in messages.items() if "expansion plan" in v]
    assert "not yet planned" in messages["not_yet_ranked"]
    assert "is not a building plan" in messages["not_yet_ranked"]


def test_a_missing_house_number_is_named_with_the_nearest_ones(
        portal: tuple[LiveServer, Any, int, int]) -> None:
    live, app, _, _ = portal
    street, number, lower, higher = missing_house_number(
        analysis_of(app).premises["address"].dropna())
    answer = httpx.get(f"{live.url}/portal/addresses",
                       params={"q": f"{street.lower().replace('ß', 's')} {number}"},
                       timeout=60).json()
    missing = answer["number_not_found"]
    assert (missing["street"], missing["number"]) == (street, number)
    assert [a["address"] for a in missing["nearest"]] == [lower, higher]
    # each nearest address carries the same answer as when it is asked for itself
    for item in missing["nearest"]:
        alone = httpx.get(f"{live.url}/portal/addresses", params={"q": item["address"]},
                          timeout=60).json()
        assert alone["number_not_found"] is None
        assert alone["addresses"][0] == item


def test_the_page_and_its_endpoints_answer_without_a_key(
        portal: tuple[LiveServer, Any, int, int]) -> None:
    live, app, passed, _ = portal
    page = httpx.get(f"{live.url}/portal", timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert 'http-equiv="Content-Security-Policy"' in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    messages = load_messages(None)
    config = json.loads(page.text.split('id="portal-config">')[1].split("</script>")[0])
    assert config["messages"] == messages
    assert f"<h1>{messages['heading']}</h1>" in page.text
    answer = httpx.get(f"{live.url}/portal/addresses", params={"q": "sonenstrase 3"},
                       timeout=60).json()
    assert answer["addresses"][0]["address"] == PASSED_ADDRESS
    text = json.dumps(answer)
    premise = analysis_of(app).premises.iloc[passed]
    assert premise["premise_id"] not in text and str(premise["served_span_id"]) not in text
    # the rest of the API still needs a key
    assert httpx.get(f"{live.url}/search", params={"q": "x"}, timeout=60).status_code == 401


def test_a_city_translates_the_page_with_one_file(tmp_path: Path) -> None:
    german = {k: v for k, v in load_messages(None).items()}
    german.update(lang="de", heading="Gibt es Glasfaser an meiner Adresse?",
                  label="Ihre Adresse")
    path = tmp_path / "de.json"
    path.write_text(json.dumps(german, ensure_ascii=False), encoding="utf-8")
    assert load_messages(path)["heading"] == "Gibt es Glasfaser an meiner Adresse?"
    from netgis.maps.portal import portal_page

    page, _ = portal_page(load_messages(path))
    assert '<html lang="de">' in page and "<h1>Gibt es Glasfaser an meiner Adresse?</h1>" in page
    # content is escaped
    german["heading"] = "<script>alert(1)</script>"
    path.write_text(json.dumps(german), encoding="utf-8")
    page, _ = portal_page(load_messages(path))
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    del german["label"]
    german["lable"] = "x"
    path.write_text(json.dumps(german), encoding="utf-8")
    with pytest.raises(MessagesError, match="missing keys: label; unknown keys: lable"):
        load_messages(path)
    with pytest.raises(ConfigError):
        create_app(make_settings(f"sqlite:///{tmp_path / 'x.db'}", portal_messages=str(path)))


class Browser:
    """A page of the portal with what it logged: requests, failures and console errors."""

    def __init__(self, context: Any, url: str) -> None:
        self.page = context.new_page()
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.on("response",
                     lambda r: self.failed.append(r.url) if r.status >= 400 else None)
        self.page.on("console",
                     lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="load")

    def choose(self, typed: str, option: str) -> str:
        """Type ``typed`` (keyboard only), walk down to ``option``, press Enter; the card."""
        box = self.page.get_by_role("combobox")
        box.fill("")
        box.focus()
        self.page.keyboard.type(typed, delay=20)
        self.page.wait_for_selector(f"#portal-options [role=option]:has-text('{option}')")
        names = self.page.locator("#portal-options [role=option]").all_inner_texts()
        for _ in range(names.index(option) + 1):
            self.page.keyboard.press("ArrowDown")
        active = box.get_attribute("aria-activedescendant")
        assert self.page.locator(f"#{active}").inner_text() == option
        assert self.page.locator(f"#{active}").get_attribute("aria-selected") == "true"
        self.page.keyboard.press("Enter")
        self.page.wait_for_selector("#portal-result:not([hidden])")
        self.page.wait_for_selector(".portal-here")
        self.page.wait_for_load_state("networkidle")
        assert box.get_attribute("aria-expanded") == "false"
        return str(self.page.locator("#portal-result-text").inner_text())

    def axe_violations(self) -> list[dict[str, Any]]:
        self.page.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
        found: list[dict[str, Any]] = self.page.evaluate(
            "async () => (await axe.run(document)).violations"
            ".map(v => ({id: v.id, nodes: v.nodes.map(n => n.html)}))")
        return found


@pytest.mark.browser
def test_typing_an_address_with_a_typo_shows_its_answer(
        browser_context: Any, portal: tuple[LiveServer, Any, int, int]) -> None:
    live, app, passed, unpassed = portal
    result = analysis_of(app)
    browser = Browser(browser_context, f"{live.url}/portal")
    try:
        assert browser.axe_violations() == []
        words = browser.choose("sonenstrase 3", PASSED_ADDRESS)
        assert words == expected_words(app, passed)
        assert words.startswith(f"Fiber is available at {PASSED_ADDRESS}: passed, ")
        assert browser.page.locator("#portal-map path.portal-fiber").count() > 0
        shots = os.environ.get("NETGIS_SCREENSHOTS")
        if shots:
            browser.page.screenshot(path=str(Path(shots) / "portal-passed.png"), full_page=True)
        assert browser.axe_violations() == []

        words = browser.choose("9 am wiher", UNPASSED_ADDRESS)
        assert words == expected_words(app, unpassed)
        assert words.startswith("Not yet: the nearest fiber is ")
        assert "not yet planned" in words and "expansion plan" not in words
        if shots:
            browser.page.screenshot(path=str(Path(shots) / "portal-unpassed.png"),
                                    full_page=True)
        assert browser.axe_violations() == []

        # no internal id anywhere on the page: premises, their spans, their gap cluster
        html = browser.page.content()
        for row in (passed, unpassed):
            premise = result.premises.iloc[row]
            assert premise["premise_id"] not in html
            assert premise["location_id"] not in html
        assert str(result.premises.iloc[passed]["served_span_id"]) not in html
        assert "gap-" not in html

        # a text that matches nothing: no card, the nearest spellings instead
        box = browser.page.get_by_role("combobox")
        box.fill("")
        browser.page.keyboard.type("Zzyzxweg 1")
        browser.page.keyboard.press("Enter")
        browser.page.wait_for_selector("#portal-result", state="hidden")
        status = browser.page.locator("#portal-status").inner_text()
        assert status.startswith("No address matches “Zzyzxweg 1”.")

        assert browser.errors == []
        assert browser.failed == []
        assert {urlsplit(u).hostname for u in browser.requests} == {"127.0.0.1"}
    finally:
        browser.page.close()


@pytest.mark.browser
def test_a_missing_house_number_offers_the_nearest_numbers(
        browser_context: Any, portal: tuple[LiveServer, Any, int, int]) -> None:
    """Typing a number the street lacks and pressing Enter: "no number N on STREET" and a
    button per nearest number, not the answer for a number that begins with N."""
    live, app, _, _ = portal
    street, number, lower, higher = missing_house_number(
        analysis_of(app).premises["address"].dropna())
    m = load_messages(None)
    browser = Browser(browser_context, f"{live.url}/portal")
    try:
        box = browser.page.get_by_role("combobox")
        box.focus()
        browser.page.keyboard.type(f"{street.lower().replace('ß', 's')} {number}", delay=20)
        browser.page.keyboard.press("Enter")
        browser.page.wait_for_selector("#portal-nearest:not([hidden]) button")
        values = {"number": number, "street": street}
        assert browser.page.locator("#portal-result-heading").inner_text() == \
            m["number_heading"]
        assert browser.page.locator("#portal-result-text").inner_text() == \
            m["number_not_found"].format(**values) + " " + m["number_nearest"].format(**values)
        buttons = browser.page.locator("#portal-nearest button")
        assert buttons.all_inner_texts() == [lower, higher]
        assert browser.page.locator("#portal-map-section").is_hidden()
        assert browser.axe_violations() == []
        # a nearest number answers like any address
        buttons.nth(1).click()
        browser.page.wait_for_selector("#portal-nearest", state="hidden")
        browser.page.wait_for_selector(".portal-here")
        assert browser.page.locator("#portal-result-text").inner_text() == \
            expected_words(app, row_of(app, higher))
        assert box.input_value() == higher
        assert browser.errors == [] and browser.failed == []
    finally:
        browser.page.close()
