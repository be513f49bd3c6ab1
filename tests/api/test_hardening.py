"""Response headers, links and connections a hostile client cannot bend.

- every response says ``X-Content-Type-Options: nosniff``; every HTML page has a
  Content-Security-Policy with ``frame-ancestors 'self'`` (the dashboard and the portal
  could be framed), /docs and /redoc too, and they still work offline;
- absolute links (TileJSON, OGC links, the report's map links) come from
  ``NETGIS_PUBLIC_URL`` or the server's own address, never from the Host header
  (``Host: evil.example`` was echoed);
- a client sending its headers or its body slowly is disconnected after
  ``NETGIS_HEADER_TIMEOUT_S`` / ``NETGIS_BODY_TIMEOUT_S`` (it held a connection for
  minutes);
- a key sent as ``?api_key=`` (refused) is redacted from the access log.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, ServerProcess, make_settings
from tests.helpers import EXAMPLES_DIR
from tests.maps.helpers import chromium

RING_SPUR = EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"
EVIL = "evil.example"
#: HTML pages of the API, each a kind of its own.
HTML_PAGES = ["/?f=html", "/collections?f=html", "/collections/premises/items?f=html",
              "/maps/coverage", "/dashboard", "/report", "/portal", "/docs", "/redoc"]


def _app(tmp_path: Path, **overrides: Any) -> FastAPI:
    url = f"sqlite:///{tmp_path / 'hardening.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(RING_SPUR))
    repo.engine.dispose()
    return create_app(make_settings(url, **overrides))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path)) as c:
        yield c


def test_every_response_says_nosniff(client: TestClient) -> None:
    answers = [client.get(p) for p in (
        "/", "/collections/premises/items", "/tiles/premises/0/0/0.mvt", "/kpis.csv",
        "/static/dashboard/dashboard.js", "/openapi.json", "/no/such/page", "/health",
        "/collections?bad=1", *HTML_PAGES)]
    answers.append(client.post("/collections/premises/items", json={}))
    assert {r.status_code for r in answers} >= {200, 400, 401, 404}
    for r in answers:
        assert r.headers.get("x-content-type-options") == "nosniff", (r.url, r.status_code)


def _directives(policy: str) -> dict[str, str]:
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2]
            for d in policy.split(";") if d.strip()}


def test_html_pages_cannot_be_framed_by_another_site(client: TestClient) -> None:
    for path in HTML_PAGES:
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html"), path
        policy = _directives(r.headers["content-security-policy"])
        assert policy.get("frame-ancestors") == "'self'", (path, policy)
        # a whole policy, not the framing rule alone: nothing loads unless allowed
        assert policy.get("default-src") == "'none'", (path, policy)
    for path in ("/docs", "/redoc"):
        scripts = _directives(client.get(path).headers["content-security-policy"])
        assert "'unsafe-inline'" not in scripts["script-src"], path


@pytest.mark.browser
def test_docs_pages_work_under_their_policy_in_chromium(tmp_path: Path) -> None:
    with LiveServer(_app(tmp_path)) as live, chromium() as ctx:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live.url}/docs", wait_until="networkidle")
        page.wait_for_selector(".opblock", timeout=30_000)
        # with this many operations Swagger UI renders those near the window: scroll on
        shown: set[str] = set()
        y = 0
        while y <= page.evaluate("document.body.scrollHeight"):
            shown |= set(page.eval_on_selector_all(
                ".opblock", "els => els.map(e => e.querySelector('.opblock-summary-path')"
                ".getAttribute('data-path') + ' ' + e.className)"))
            y += 400
            page.evaluate(f"window.scrollTo(0, {y})")
            page.wait_for_timeout(50)
        assert len(shown) > 20, shown
        assert errors == [], errors
        page.goto(f"{live.url}/redoc", wait_until="networkidle")
        page.wait_for_selector("[data-section-id]", timeout=30_000)
        # ReDoc's only refusal is the Redocly logo of its CDN (api/routers/docs.py)
        assert [e for e in errors if "cdn.redoc.ly" not in e] == [], errors


def test_links_never_follow_the_host_header(client: TestClient) -> None:
    evil = {"Host": EVIL}
    tilejson = client.get("/tiles/premises.json", headers=evil)
    assert tilejson.status_code == 200
    assert tilejson.json()["tiles"][0].startswith("http://testserver/tiles/premises/")
    for path in ("/", "/collections", "/collections/premises/items?limit=2",
                 "/collections/premises/items?f=html", "/analysis/criticality?limit=1",
                 "/report", "/dashboard"):
        r = client.get(path, headers=evil)
        assert r.status_code == 200, path
        assert EVIL not in r.text, path


def test_links_use_the_public_url_when_set(tmp_path: Path) -> None:
    public = "https://fiber.example.org:8443"
    with TestClient(_app(tmp_path, public_url=public)) as c:
        tilejson = c.get("/tiles/premises.json?drop_m=40", headers={"Host": EVIL,
                                                                    "X-API-Key": API_KEY})
        assert tilejson.json()["tiles"] == [
            f"{public}/tiles/premises/{{z}}/{{x}}/{{y}}.mvt?drop_m=40"]
        links = c.get("/", headers={"Host": EVIL}).json()["links"]
        assert links and all(link["href"].startswith(f"{public}/") for link in links)
        report = c.get("/report", headers={"Host": EVIL}).text
        assert f'href="{public}/maps/coverage"' in report and EVIL not in report


def test_the_public_url_is_checked() -> None:
    for bad in ("fiber.example.org", "ftp://fiber.example.org", "https://x.org/netgis",
                "https://x.org?a=1"):
        with pytest.raises(ValueError, match="public_url"):
            make_settings("sqlite:///x.db", public_url=bad)


# --------------------------------------------------------- slow clients, real server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``netgis serve`` on a real port with 2 s to send headers and between body reads."""
    folder = tmp_path_factory.mktemp("slow")
    url = f"sqlite:///{folder / 'slow.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(RING_SPUR))
    repo.engine.dispose()
    env = {"NETGIS_DATABASE_URL": url, "NETGIS_API_KEYS": API_KEY,
           "NETGIS_HEADER_TIMEOUT_S": "2", "NETGIS_BODY_TIMEOUT_S": "2"}
    with ServerProcess(env, folder / "serve.log") as server:
        yield server


#: How long a test client keeps trickling at most: far beyond the 2 s allowed.
TRICKLE_S = 40.0


def _closed_while_trickling(sock: socket.socket, chunks: Iterator[bytes]) -> tuple[bool, bytes]:
    """Send ``chunks`` one every 0.5 s until the server closes the connection (True, and
    what it answered) or :data:`TRICKLE_S` passed (False)."""
    sock.settimeout(0.5)
    received = b""
    deadline = time.monotonic() + TRICKLE_S
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            data = None
        except ConnectionError:
            return True, received
        if data == b"":
            return True, received
        if data:
            received += data
            continue
        try:
            sock.sendall(next(chunks))
        except (BrokenPipeError, ConnectionError):
            return True, received
    return False, received


def _forever(chunk: bytes) -> Iterator[bytes]:
    while True:
        yield chunk


def test_a_client_trickling_its_headers_is_disconnected(served: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed, _ = _closed_while_trickling(sock, _forever(b"X-Slow: a\r\n"))
    assert closed, "the connection was still open after the client trickled its headers"


def test_a_silent_connection_is_disconnected(served: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        closed, _ = _closed_while_trickling(sock, _forever(b""))
    assert closed


def test_a_client_stalling_its_body_gets_408_and_is_disconnected(
        served: ServerProcess) -> None:
    head = (b"POST /analysis/scenarios HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(head + b'{"spans": [')
        closed, answer = _closed_while_trickling(sock, _forever(b""))
    assert closed
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"application/problem+json" in answer
    # the server still answers others
    assert httpx.get(f"{served.url}/health", timeout=30).status_code == 200


def test_an_api_key_in_the_query_is_redacted_from_the_access_log(
        served: ServerProcess) -> None:
    secret = "s3cr3t-in-the-url"
    for query in (f"api_key={secret}", f"limit=1&API%5FKEY={secret}", f"apikey={secret}"):
        r = httpx.get(f"{served.url}/collections/premises/items?{query}", timeout=30)
        assert r.status_code == 400
    deadline = time.monotonic() + 30
    log = ""
    while log.count("/collections/premises/items?") < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        log = served.log.read_text(errors="replace")
    lines = [line for line in log.splitlines() if "/collections/premises/items?" in line]
    assert len(lines) == 3, log[-2000:]
    assert secret not in log
    assert all("REDACTED" in line and " 400" in line for line in lines), lines
