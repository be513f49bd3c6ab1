"""Content-Security-Policy of the map pages (issue 19, defect 4).

The pages are Folium maps full of inline scripts. The policy allows scripts
only from the page's origin ('self', the vendored Leaflet under /static) and
the inline scripts the page was rendered with, each by its SHA-256 hash: a
script that an attacker manages to get into the page (an inline handler, an
injected <script>) is not in the list and does not run. The same policy is a
<meta http-equiv> in every page (so a saved page keeps it) and, on /maps/*,
a response header.
"""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.engine.analysis import Analysis
from netgis.io import read_dataset
from netgis.maps import coverage_map, inline_html
from tests.api.helpers import make_settings
from tests.helpers import EXAMPLES_DIR

TILES = "https://{s}.tiles.example.org/base/{z}/{x}/{y}.png"
META = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', re.I)
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def inline_hashes(page: str) -> set[str]:
    """'sha256-...' of every inline script, computed here independently of netgis."""
    found = set()
    for attrs, body in SCRIPT.findall(page):
        if "src=" in attrs:
            continue
        digest = hashlib.sha256(body.encode("utf-8")).digest()
        found.add(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")
    return found


def check_page(page: str, policy: str, *, tiles_origin: str | None = None) -> None:
    """``policy`` is strict, covers every inline script of ``page`` and is in its <meta>."""
    meta = META.search(page)
    assert meta is not None, "no <meta http-equiv=Content-Security-Policy>"
    assert html_lib.unescape(meta.group(1)) == policy
    # the meta comes before the first script, or it would not govern it
    assert meta.start() < page.lower().index("<script")
    d = directives(policy)
    assert d["default-src"] == ["'none'"]
    script = d["script-src"]
    assert "'self'" in script
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert not [s for s in script if s.startswith(("http:", "https:", "*", "data:"))]
    assert inline_hashes(page) == {s for s in script if s.startswith("'sha256-")}
    assert d["object-src"] == ["'none'"] and d["base-uri"] == ["'none'"]
    if tiles_origin is not None:
        assert tiles_origin in d["img-src"]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'csp.db'}", tiles_url=TILES))
    with TestClient(app) as c:
        app.state.repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        yield c


@pytest.mark.parametrize("kind", ["coverage", "criticality", "gaps", "areas"])
def test_map_responses_carry_a_strict_policy(kind: str, client: TestClient) -> None:
    r = client.get(f"/maps/{kind}")
    assert r.status_code == 200
    policy = r.headers["content-security-policy"]
    # the header adds who may frame the page, which a <meta> policy cannot say
    framing = "; frame-ancestors 'self'"
    assert policy.endswith(framing)
    check_page(r.text, policy.removesuffix(framing), tiles_origin="https://*.tiles.example.org")


def test_a_self_contained_page_carries_it_in_a_meta_element(ring: Analysis) -> None:
    page = inline_html(coverage_map(ring.premises, ring.spans, ring.nodes))
    meta = META.search(page)
    assert meta is not None
    check_page(page, html_lib.unescape(meta.group(1)))
    # everything is inline: Leaflet itself is one of the hashed scripts
    assert len(inline_hashes(page)) >= 2
