"""Every netgis error class has its HTTP status (api.errors.STATUS_CODES), seen by clients.

Driven through real endpoints wherever one raises the class; ConfigError and a
bare NetgisError come from no endpoint, so a test route raises them (and every
other class, to check the table is complete).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

import netgis.errors as errors_module
from netgis.api.app import create_app
from netgis.api.errors import STATUS_CODES
from netgis.errors import (
    ConfigError,
    ConflictError,
    DatasetFormatError,
    LimitError,
    NetgisError,
    NotFoundError,
    ParameterError,
    PreconditionFailed,
    Problem,
    StorageError,
    StorageUnavailable,
    UnsupportedUpload,
    UploadError,
    UploadTooLarge,
    ValidationError,
)
from netgis.storage import Repository
from tests.api.helpers import API_KEY, make_settings

KEY = {"X-API-Key": API_KEY}
PROBLEM = Problem("layer", "id1", "field", "reason")

#: What each class must answer; a new class must be added here (and thought about).
EXPECTED = {
    NetgisError: 400,
    ParameterError: 400,
    ValidationError: 422,
    DatasetFormatError: 422,
    LimitError: 422,
    UploadError: 422,
    UploadTooLarge: 413,
    UnsupportedUpload: 415,
    ConfigError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionFailed: 412,
    StorageError: 503,
    StorageUnavailable: 503,
}

MAKE: dict[type[NetgisError], Callable[[], NetgisError]] = {
    NetgisError: lambda: NetgisError("something netgis refused"),
    ParameterError: lambda: ParameterError([PROBLEM], "invalid thing: reason"),
    ValidationError: lambda: ValidationError([PROBLEM]),
    DatasetFormatError: lambda: DatasetFormatError([PROBLEM]),
    LimitError: lambda: LimitError([PROBLEM]),
    UploadError: lambda: UploadError("unsafe path in zip: '../x'", [PROBLEM]),
    UploadTooLarge: lambda: UploadTooLarge("unzipped larger than 9 bytes", [PROBLEM]),
    UnsupportedUpload: lambda: UnsupportedUpload("neither a GeoPackage nor a zip", [PROBLEM]),
    ConfigError: lambda: ConfigError("not a database URL: 'x'"),
    NotFoundError: lambda: NotFoundError("nodes", "n9"),
    ConflictError: lambda: ConflictError([PROBLEM]),
    StorageError: lambda: StorageError("postgresql://secret@host is down"),
    PreconditionFailed: lambda: PreconditionFailed("nodes", "n9", 3),
    StorageUnavailable: lambda: StorageUnavailable("the database is busy"),
}


def all_error_classes() -> set[type[NetgisError]]:
    found: set[type[NetgisError]] = set()
    todo: list[type[NetgisError]] = [NetgisError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == errors_module.__name__:
            found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def status_by_mro(cls: type[NetgisError]) -> int:
    """The status a handler lookup by MRO (as Starlette does it) finds in the table."""
    return next(STATUS_CODES[c] for c in cls.__mro__ if c in STATUS_CODES)


def problem_of(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    return body


def test_every_error_class_has_the_expected_status() -> None:
    assert all_error_classes() == set(EXPECTED)
    assert {cls: status_by_mro(cls) for cls in EXPECTED} == EXPECTED


@pytest.fixture
def raising_client(tmp_path: Path) -> Iterator[TestClient]:
    """An app with a route raising an instance of each error class by name."""
    app: FastAPI = create_app(make_settings(f"sqlite:///{tmp_path / 'errors.db'}"))

    @app.get("/raise/{name}")
    def raise_it(name: str) -> None:
        raise next(make for cls, make in MAKE.items() if cls.__name__ == name)()

    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_class_answers_its_status_and_body(raising_client: TestClient,
                                                cls: type[NetgisError]) -> None:
    r = raising_client.get(f"/raise/{cls.__name__}")
    assert r.status_code == EXPECTED[cls]
    body = problem_of(r)
    exc = MAKE[cls]()
    if cls is StorageError:
        # connection details stay in the log
        assert body["detail"] == "the database is not reachable" and body["errors"] == []
        return
    if cls is StorageUnavailable:
        # a client-safe reason and when to come back; the driver's message stays in the log
        assert isinstance(exc, StorageUnavailable)
        assert body["detail"] == f"{exc.reason}; retry later"
        assert r.headers["Retry-After"] == str(exc.retry_after)
        return
    if cls is PreconditionFailed:
        assert body["errors"] == [{"layer": "nodes", "id": "n9", "field": None,
                                   "reason": "changed since the version in If-Match"}]
        return
    assert body["detail"] == str(exc)
    assert body["type"] == f"https://netgis.dev/problems/{EXPECTED[cls]}"
    if isinstance(exc, ValidationError | ConflictError):
        assert body["errors"] == [PROBLEM.as_dict()]
    elif isinstance(exc, NotFoundError):
        assert body["errors"] == [{"layer": "nodes", "id": "n9", "field": None,
                                   "reason": "no such feature"}]
    else:
        assert body["errors"] == []


def test_parameter_errors_are_400(client: TestClient) -> None:
    cell = problem_of(client.get("/analysis/gaps", params={"h3_cell": "nothex"}))
    assert cell["status"] == 400
    assert cell["detail"] == "1 problem: parameters field=h3_cell: not a valid H3 cell: 'nothex'"
    assert [e["field"] for e in cell["errors"]] == ["h3_cell"]
    box = problem_of(client.get("/collections/nodes/items", params={"bbox": "1,2,3"}))
    assert box["status"] == 400
    assert box["detail"] == "invalid bbox: expected 4 (or 6) comma separated finite numbers"
    assert box["errors"] == [{"layer": "query", "id": None, "field": "bbox",
                              "reason": "expected 4 (or 6) comma separated finite numbers"}]
    # a box with no width passes the parser; the map finds it empty, still the parameter's fault
    flat = problem_of(client.get("/maps/coverage", params={"bbox": "8.68,50.1,8.68,50.2"}))
    assert flat["status"] == 400
    assert flat["detail"].startswith("invalid bbox: 1 problem: parameters field=bbox:")


def test_data_errors_are_422(client: TestClient) -> None:
    unknown = problem_of(client.post("/analysis/scenarios", json={"spans": ["nope"]}))
    assert unknown["status"] == 422 and unknown["errors"][0]["id"] == "nope"
    bad = problem_of(client.post("/collections/premises/items", headers=KEY, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [8.7, 50.1]},
        "properties": {"premise_id": "p_bad", "units": -1}}))
    assert bad["status"] == 422 and bad["errors"][0]["field"] == "units"


def test_a_dataset_that_cannot_be_read_is_422(client: TestClient) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("plant/nodes.geojson", "this is not GeoJSON")
    r = client.post("/import", headers=KEY,
                    files={"file": ("plant.zip", archive.getvalue(), "application/zip")})
    body = problem_of(r)
    assert body["status"] == 422 and body["errors"][0]["layer"] == "nodes"


def test_not_found_is_404_and_conflict_is_409(client: TestClient) -> None:
    missing = problem_of(client.get("/collections/nodes/items/nope"))
    assert missing["status"] == 404
    assert missing["errors"] == [{"layer": "nodes", "id": "nope", "field": None,
                                  "reason": "no such feature"}]
    assert problem_of(client.get("/analysis/gaps", params={"area_id": "nope"}))["status"] == 404
    used = problem_of(client.delete("/collections/nodes/items/C", headers=KEY))
    assert used["status"] == 409 and used["errors"][0]["field"] == "node_id"


def test_a_database_without_its_version_is_503(client: TestClient, repo: Repository) -> None:
    """Health needs the data version: 503. The analysis answers keep coming from
    the live analysis's last state (docs/architecture.md, "Live analysis"), labelled with
    the data version they reflect."""
    served = client.get("/analysis/coverage").json()["data_version"]
    with repo.engine.begin() as conn:
        conn.execute(text("DELETE FROM netgis_meta"))
    body = problem_of(client.get("/health"))
    assert body["status"] == 503
    assert body["detail"] == "the database is not reachable"
    for path in ("/analysis/coverage", "/kpis"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["X-Data-Version"] == str(served)
