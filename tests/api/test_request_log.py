"""Structured request logs (``NETGIS_LOG_FORMAT=json``, api/request_log.py) of a real
``netgis serve``: one JSON line per request with its fields, the request id echoed or made
and on every answer, the key's name logged and no secret anywhere in the log."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.api.request_log import request_id_of
from tests.api.helpers import ServerProcess, make_settings

SECRET = "k3y-s3cret-0f-the-editor"
WRONG = "n0t-a-key-but-secret-too"
IN_QUERY = "s3cret-in-the-query"
TOKEN = "eyJ-bearer-s3cret-token"
FIELDS = {"timestamp", "level", "logger", "message", "request_id", "method", "route", "path",
          "status", "duration_ms", "client", "principal"}


def request_lines(log: str) -> list[dict[str, Any]]:
    """The request lines of the log (every line a logger wrote is JSON)."""
    out = []
    for line in log.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if "request_id" in record:
                out.append(record)
    return out


def test_request_ids_are_checked() -> None:
    assert request_id_of("a1.B2_c3:d4-e5") == "a1.B2_c3:d4-e5"
    for bad in ("", "x" * 129, "two words", "new\nline", "<script>", "é"):
        made = request_id_of(bad)
        assert made != bad and uuid.UUID(made).version == 4


def test_one_json_line_per_request_and_no_secret(tmp_path: Path) -> None:
    env = {"NETGIS_DATABASE_URL": f"sqlite:///{tmp_path / 'log.db'}",
           "NETGIS_API_KEYS": f"editor:write:{SECRET}", "NETGIS_LOG_FORMAT": "json"}
    with ServerProcess(env, tmp_path / "server.log") as served, \
            httpx.Client(base_url=served.url, timeout=60) as http:
        health = http.get("/health", headers={"X-Request-ID": "trace-42.a:b"})
        missing = http.get("/collections/premises/items/nope")
        keyed = http.get("/collections", headers={"X-API-Key": SECRET,
                                                  "X-Request-ID": "bad id!"})
        wrong = http.get("/collections", headers={"X-API-Key": WRONG})
        query = http.get(f"/collections/premises/items?api_key={IN_QUERY}")
        bearer = http.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
        answers = [health, missing, keyed, wrong, query, bearer]
        deadline = time.monotonic() + 30
        while True:
            log = served.log.read_text(errors="replace")
            lines = request_lines(log)
            if len(lines) >= len(answers) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert [a.status_code for a in answers[:5]] == [200, 404, 200, 200, 400]
    # the id sent is echoed; none or a bad one gives a new UUID, on errors too
    assert health.headers["X-Request-ID"] == "trace-42.a:b"
    ids = [a.headers["X-Request-ID"] for a in answers]
    for made in (ids[1], ids[2], ids[4]):
        assert uuid.UUID(made).version == 4
    assert len(set(ids)) == len(ids)
    # exactly one line per request, in the order answered, with every field
    assert [line["request_id"] for line in lines] == ids, log[-3000:]
    for line, answer in zip(lines, answers, strict=True):
        assert set(line) == FIELDS, line
        assert line["status"] == answer.status_code
        assert line["method"] == "GET" and line["level"] == "INFO"
        assert line["logger"] == "netgis.api.access" and line["client"] == "127.0.0.1"
        assert line["timestamp"].endswith("Z") and line["duration_ms"] >= 0
    assert (lines[1]["route"], lines[1]["path"]) == (
        "/collections/premises/items/{featureId}", "/collections/premises/items/nope")
    # the key's name, never its secret; an unknown key is nobody
    assert [line["principal"] for line in lines] == [None, None, "editor", None, None, None]
    for secret in (SECRET, WRONG, IN_QUERY, TOKEN):
        assert secret not in log
    # uvicorn's access line is off: it would repeat each request in another form
    assert '"GET /health HTTP/1.1"' not in log and "HTTP/1.1\" 200" not in log


@pytest.mark.parametrize("db_url", ["spatialite"], indirect=True)
def test_a_500_carries_the_request_id_and_is_logged_once(
        db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(make_settings(db_url, log_format="json"))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client, \
            caplog.at_level("INFO", logger="netgis.api.access"):
        sent = client.get("/boom", headers={"X-Request-ID": "boom-1"})
        made = client.get("/boom")
    # the 500 is sent from outside every middleware: the error handler adds the id
    assert (sent.status_code, made.status_code) == (500, 500)
    assert sent.headers["X-Request-ID"] == "boom-1"
    assert uuid.UUID(made.headers["X-Request-ID"]).version == 4
    logged = [r.request for r in caplog.records  # type: ignore[attr-defined]
              if r.name == "netgis.api.access"]
    assert [(f["request_id"], f["route"], f["status"]) for f in logged] == [
        ("boom-1", "/boom", 500), (made.headers["X-Request-ID"], "/boom", 500)]
