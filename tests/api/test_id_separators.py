"""Ids with a line or paragraph separator (U+2028, U+2029) are refused like CR and LF.

``s0018\\u2028x`` was stored with 201; the report then answered 500 and the dashboard's
chart failed in the browser (tests/maps/test_dashboard_text.py). Ids are printable text:
no character of the Unicode categories Cc, Zl or Zp.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from netgis.io import read_dataset
from netgis.storage import Repository
from netgis.validate import validate_frames
from tests.api.helpers import API_KEY
from tests.helpers import EXAMPLES_DIR

KEY = {"X-API-Key": API_KEY}
#: inside the id: around it, separators are trimmed like any white space
BAD_IDS = ["s0018\u2028x", "p\u2029q", "a\x85b"]


def _problem(r: Any, layer: str, id: str, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    hits = [e for e in r.json()["errors"]
            if (e["layer"], e["id"], e["field"]) == (layer, id, field)
            and "control character" in e["reason"] and "separator" in e["reason"]]
    assert hits, r.json()


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_a_posted_id_with_a_separator_is_422(bad_id: str, client: TestClient,
                                             repo: Repository) -> None:
    before = repo.data_version(), repo.count("spans"), repo.count("premises")
    nodes = client.get("/collections/nodes/items", params={"limit": 2}).json()["features"]
    span = {"type": "Feature",
            "properties": {"span_id": bad_id, "from_node": nodes[0]["id"],
                           "to_node": nodes[1]["id"]},
            "geometry": {"type": "LineString",
                         "coordinates": [f["geometry"]["coordinates"] for f in nodes]}}
    _problem(client.post("/collections/spans/items", json=span, headers=KEY),
             "spans", bad_id, "span_id")
    premise = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.69, 50.12]},
               "properties": {"premise_id": bad_id, "units": 1}}
    _problem(client.post("/collections/premises/items", json=premise, headers=KEY),
             "premises", bad_id, "premise_id")
    assert (repo.data_version(), repo.count("spans"), repo.count("premises")) == before
    # and the pages that draw ids still answer
    assert client.get("/report").status_code == 200


def test_a_file_id_with_a_separator_is_named() -> None:
    ds = read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")
    premises = ds.premises.copy()
    premises.loc[premises.index[1], "premise_id"] = "p\u2028q"
    report = validate_frames({**ds.layers(), "premises": premises})
    hits = [p for p in report.errors if (p.layer, p.id, p.field) ==
            ("premises", "p\u2028q", "premise_id")]
    assert len(hits) == 1 and "'\\u2028' at position 1" in hits[0].reason, report.errors
