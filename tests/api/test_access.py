"""Access control (issue 19): named keys with scopes, open or closed reads, hashed secrets.

A bare key in NETGIS_API_KEYS reads and writes; ``NAME:read:SECRET`` only reads,
``NAME:write:SECRET`` (or ``NAME:write:sha256=HEX``) reads and writes. Without a
key: 401; an unknown key or one without the scope: 403. With
NETGIS_OPEN_READS=false every route but /health needs a key with the read scope.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError as PydanticValidationError

from netgis.api.app import create_app
from netgis.api.auth import ApiKey, authenticate, parse_api_keys
from netgis.api.deps import PUBLIC_PATHS
from netgis.api.settings import Settings
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import make_settings
from tests.helpers import EXAMPLES_DIR

EDITOR = "ed:it-0r_secret"          # a secret with a colon: everything after NAME:SCOPE:
VIEWER = "view-only-secret"
HASHED = "kept-only-as-a-digest"
BARE = "bare-secret"
KEYS = (f"editor:write:{EDITOR}, viewer:read:{VIEWER}, "
        f"robot:write:sha256={hashlib.sha256(HASHED.encode()).hexdigest()}, {BARE}")
SECRETS = (EDITOR, VIEWER, HASHED, BARE)


def node(node_id: str) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.69, 50.12]},
            "properties": {"node_id": node_id, "kind": "cabinet"}}


def _client(db_url: str, **overrides: Any) -> Iterator[TestClient]:
    app = create_app(make_settings(db_url, api_keys=KEYS, **overrides))
    with TestClient(app) as c:
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        yield c


@pytest.fixture
def keyed(db_url: str) -> Iterator[TestClient]:
    """Open reads; the keys above."""
    yield from _client(db_url)


@pytest.fixture
def closed(db_url: str) -> Iterator[TestClient]:
    """NETGIS_OPEN_READS=false; the keys above."""
    yield from _client(db_url, open_reads=False)


# ------------------------------------------------------------------ the key syntax


def test_key_syntax_names_scopes_and_digests() -> None:
    keys = parse_api_keys(KEYS)
    assert [(k.name, k.scope) for k in keys] == [("editor", "write"), ("viewer", "read"),
                                                 ("robot", "write"), ("key4", "write")]
    assert [k.digest for k in keys] == [hashlib.sha256(s.encode()).digest() for s in SECRETS]
    assert authenticate(keys, EDITOR) == keys[0]
    assert authenticate(keys, HASHED) == keys[2]
    assert authenticate(keys, "editor") is None and authenticate(keys, "") is None
    assert keys[1].allows("read") and not keys[1].allows("write")
    assert keys[0].allows("read") and keys[0].allows("write")
    # bare keys are named by their position in the list
    assert [k.name for k in parse_api_keys(["a", "b"])] == ["key1", "key2"]
    assert [k.name for k in parse_api_keys(" ,a,, ")] == ["key1"]


@pytest.mark.parametrize("value, message", [
    ("admin:root:topsecret", "the scope is read or write"),
    ("x y:read:topsecret", "a key name is"),
    ("cli:write:topsecret", "reserved"),
    ("local:read:topsecret", "reserved"),
    ("a:read:", "the secret is empty"),
    ("justone:topsecret", "expected NAME:SCOPE:SECRET"),
    ("a:read:sha256=abc", "64 hex digits"),
    ("a:read:topsecret, a:write:othersecret", "the name 'a' is taken by entry 1"),
    ("a:read:topsecret, b:write:topsecret", "same secret as entry 1"),
    ("topsecret, key1:read:othersecret", "the name 'key1' is taken"),
])
def test_bad_entries_are_refused_without_showing_secrets(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_api_keys(value)
    assert "topsecret" not in str(caught.value) and "othersecret" not in str(caught.value)
    # the same through the settings (the environment): what a failed start prints (the
    # error's text) must not echo the input
    with pytest.raises(PydanticValidationError) as through_settings:
        Settings(api_keys=value)
    shown = str(through_settings.value) + repr(through_settings.value)
    assert message.split("'")[0] in shown
    assert "topsecret" not in shown and "othersecret" not in shown


def test_settings_keep_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETGIS_API_KEYS", KEYS)
    monkeypatch.setenv("NETGIS_OPEN_READS", "false")
    settings = Settings()
    assert settings.open_reads is False
    assert all(isinstance(k, ApiKey) for k in settings.api_keys)
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in SECRETS:
        assert secret not in shown
    # nor the digests (a short secret could be found from one)
    assert hashlib.sha256(VIEWER.encode()).hexdigest() not in repr(settings)
    monkeypatch.delenv("NETGIS_API_KEYS")
    monkeypatch.delenv("NETGIS_OPEN_READS")
    default = Settings()
    assert default.api_keys == [] and default.open_reads is True


# ------------------------------------------------------------------ over the API


def test_a_read_only_key_cannot_write(keyed: TestClient) -> None:
    view = {"X-API-Key": VIEWER}
    gpkg = (EXAMPLES_DIR / "duct_ring" / "dataset.gpkg").read_bytes()
    attempts = [
        keyed.post("/collections/nodes/items", json=node("x"), headers=view),
        keyed.put("/collections/nodes/items/A", json=node("A"), headers=view),
        keyed.patch("/collections/nodes/items/A", json={"properties": {"name": "n"}},
                    headers=view),
        keyed.delete("/collections/premises/items/p_far", headers=view),
        keyed.post("/import", files={"file": ("d.gpkg", gpkg)}, headers=view),
    ]
    for r in attempts:
        assert r.status_code == 403, (r.request.method, r.request.url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "'viewer' has the read scope" in r.json()["detail"]
    assert keyed.get("/collections/premises/items/p_far").status_code == 200
    assert keyed.get("/collections/nodes/items/x").status_code == 404


@pytest.mark.parametrize("secret", [EDITOR, HASHED, BARE])
def test_write_keys_write(keyed: TestClient, secret: str) -> None:
    key = {"X-API-Key": secret}
    r = keyed.post("/collections/nodes/items", json=node("x1"), headers=key)
    assert r.status_code == 201, r.text
    r = keyed.patch("/collections/nodes/items/x1", json={"properties": {"name": "n"}},
                    headers=key)
    assert r.status_code == 200
    assert keyed.delete("/collections/nodes/items/x1", headers=key).status_code == 204


def test_missing_and_unknown_keys(keyed: TestClient) -> None:
    r = keyed.post("/collections/nodes/items", json=node("x"))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("ApiKey")
    for wrong in ("nope", EDITOR + " ", EDITOR.upper(), "editor", "sha256=" + "0" * 64):
        r = keyed.post("/collections/nodes/items", json=node("x"), headers={"X-API-Key": wrong})
        assert r.status_code == 403, wrong
        assert r.json()["detail"] == "the X-API-Key is not valid"


def test_reads_are_open_by_default(keyed: TestClient) -> None:
    for path in ("/", "/collections/nodes/items", "/collections/nodes/items/A",
                 "/analysis/coverage", "/kpis"):
        assert keyed.get(path).status_code == 200, path


def test_closed_reads_need_a_key_with_the_read_scope(closed: TestClient) -> None:
    for path in ("/", "/conformance", "/collections", "/collections/nodes/items",
                 "/collections/nodes/items/A", "/analysis/coverage", "/kpis", "/metrics"):
        missing = closed.get(path)
        assert missing.status_code == 401, path
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert "X-API-Key" in missing.json()["detail"]
        assert closed.get(path, headers={"X-API-Key": "nope"}).status_code == 403
        for secret in (VIEWER, EDITOR, BARE):
            assert closed.get(path, headers={"X-API-Key": secret}).status_code == 200, path
    # liveness probes and the API description stay open
    assert closed.get("/health").status_code == 200
    assert closed.get("/openapi.json").status_code == 200
    # writes still need the write scope
    view = {"X-API-Key": VIEWER}
    assert closed.post("/collections/nodes/items", json=node("x"),
                       headers=view).status_code == 403
    assert closed.post("/collections/nodes/items", json=node("x"),
                       headers={"X-API-Key": EDITOR}).status_code == 201


def test_closed_reads_close_every_route_but_the_public_ones(db_url: str) -> None:
    """Walks every operation of the API, so a route added later cannot stay open by mistake."""
    app: FastAPI = create_app(make_settings(db_url, api_keys=KEYS, open_reads=False))
    with TestClient(app) as c:
        # every route of the API is in its OpenAPI document (none is left out of it)
        operations = [(method.upper(), path)
                      for path, item in c.get("/openapi.json").json()["paths"].items()
                      for method in item]
        assert len(operations) > 30
        for method, path in operations:
            r = c.request(method, re.sub(r"\{[^}]+\}", "1", path))
            if path in PUBLIC_PATHS:
                # answered without a key (the portal's endpoints want their parameters: 400;
                # the base map, not configured here, is not there: 404)
                wanted = (404,) if path.startswith("/basemap") else (200, 400)
                assert r.status_code in wanted, (method, path, r.status_code)
            else:
                assert r.status_code == 401, (method, path, r.status_code)


def test_the_openapi_document_describes_the_keys(db_url: str) -> None:
    for open_reads in (True, False):
        app = create_app(make_settings(db_url, api_keys=KEYS, open_reads=open_reads))
        doc = TestClient(app).get("/openapi.json").json()
        items = doc["paths"]["/collections/nodes/items"]
        assert items["post"]["security"] == [{"APIKeyHeader": []}]
        assert {"401", "403"} <= set(items["post"]["responses"])
        assert ("security" in items["get"]) is not open_reads
        assert {"401", "403"} <= set(items["get"]["responses"]) or open_reads
        assert "security" not in doc["paths"]["/health"]["get"]
        audit = doc["paths"]["/audit"]["get"]
        assert audit["tags"] == ["Audit"] and audit["security"] == [{"APIKeyHeader": []}]
        assert {"200", "400", "401", "403"} <= set(audit["responses"])
        assert {p["name"] for p in audit["parameters"]} >= {"layer", "id", "since", "limit",
                                                           "offset"}


def test_secrets_never_appear_in_responses_or_logs(
        closed: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    gpkg = (EXAMPLES_DIR / "duct_ring" / "dataset.gpkg").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../escape.gpkg", gpkg)
    for headers in ({}, {"X-API-Key": VIEWER}, {"X-API-Key": EDITOR},
                    {"X-API-Key": EDITOR[:-1]}, {"X-API-Key": HASHED}, {"X-API-Key": BARE}):
        for r in (
            closed.get("/collections/nodes/items", headers=headers),
            closed.post("/collections/nodes/items", json=node("s1"), headers=headers),
            closed.post("/collections/nodes/items", json=node("bad") | {"properties": {}},
                        headers=headers),
            closed.delete("/collections/nodes/items/A", headers=headers),
            closed.post("/import", files={"file": ("d.zip", buf.getvalue())}, headers=headers),
            closed.get("/audit", headers=headers),
            closed.get("/openapi.json", headers=headers),
        ):
            texts.append(r.text + str(dict(r.headers)))
    texts += [record.getMessage() for record in caplog.records]
    texts.append(repr(closed.app.state.settings))  # type: ignore[attr-defined]
    for secret in SECRETS:
        assert not any(secret in t for t in texts), secret
    assert not any(EDITOR[:-1] in t for t in texts)
