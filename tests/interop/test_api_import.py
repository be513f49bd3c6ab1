"""POST /import with a mapping: the same mapping file as the command line, over a real server
on a real port and a real SpatiaLite database, behind the write key."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from netgis.api.app import create_app
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.interop.helpers import MAPPINGS

CSV = MAPPINGS / "sources" / "csv"
MAPPING = (MAPPINGS / "csv-wkt-lonlat.toml").read_bytes()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.engine.dispose()
    with LiveServer(create_app(make_settings(url))) as server:
        yield server


def _zip(folder: Path, edit: tuple[str, str, str] | None = None) -> bytes:
    """The folder's files zipped; ``edit`` replaces text in one file (name, old, new)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for f in sorted(folder.iterdir()):
            text = f.read_text(encoding="utf-8")
            if edit is not None and f.name == edit[0]:
                assert edit[1] in text
                text = text.replace(edit[1], edit[2])
            archive.writestr(f"plant/{f.name}", text)
    return buf.getvalue()


def _post(live: LiveServer, archive: bytes, mapping: bytes,
          key: str | None = API_KEY) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(f"{live.url}/import", headers=headers, timeout=60,
                      files={"file": ("plant.zip", archive, "application/zip"),
                             "mapping": ("csv.toml", mapping, "application/toml")})


def test_mapped_import_over_the_api(live: LiveServer) -> None:
    # refused: no key; a code not in the mapping's table; a mapping with an unknown key
    assert _post(live, _zip(CSV), MAPPING, key=None).status_code == 401
    bad = _zip(CSV, ("routes.csv", "s230,48,live", "s230,48,alive"))
    answer = _post(live, bad, MAPPING)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    errors = answer.json()["errors"]
    assert {"layer": "routes", "id": "s230", "field": "condition"} in [
        {k: e[k] for k in ("layer", "id", "field")} for e in errors]
    wrong = MAPPING.replace(b"[spans.snap]", b"[spans.snapping]")
    answer = _post(live, _zip(CSV), wrong)
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["spans.snapping"]
    # nothing was stored by any of them
    assert httpx.get(f"{live.url}/collections/spans/items").json()["numberMatched"] == 0

    answer = _post(live, _zip(CSV), MAPPING)
    assert answer.status_code == 200, answer.text
    counts = answer.json()["counts"]
    assert (counts["spans"], counts["premises"]) == (53, 272)
    assert counts["nodes"] > 9  # the nine sites and the handholes made by snapping
    spans = httpx.get(f"{live.url}/collections/spans/items", params={"limit": 1}).json()
    assert spans["numberMatched"] == 53
    node = httpx.get(f"{live.url}/collections/nodes/items/hh-1").json()
    assert node["properties"]["kind"] == "handhole"
