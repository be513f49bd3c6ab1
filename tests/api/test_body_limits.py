"""Request bodies are limited while they arrive, not after (issue 19, defect 5).

A server in a child process (``netgis serve``) with 1 MB limits gets chunked bodies
(no Content-Length to check up front) many times that size: it must answer 413 as
soon as the limit is passed, with its memory and its temporary space growing by
about the limit, not by the body. RSS and temporary bytes of the child are sampled
while the body is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.helpers import API_KEY, PeakSampler, ServerProcess, post_chunked

LIMIT = 1_000_000
#: Uploads may be larger than JSON bodies, and larger than what multipart parsing keeps in
#: memory (1 MiB), so that the test sees spooling to disk stop at the limit.
UPLOAD_LIMIT = 4_000_000
BODY = 50 * 2**20
MB = 2**20
#: What a limited server may grow by: the limit, buffers and parser overhead, far from BODY.
BOUND = 12 * MB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    root = tmp_path_factory.mktemp("limits")
    tmp = root / "tmp"
    tmp.mkdir()
    env = {"NETGIS_DATABASE_URL": f"sqlite:///{root / 'limits.db'}",
           "NETGIS_API_KEYS": API_KEY, "NETGIS_MAX_BODY_BYTES": str(LIMIT),
           "NETGIS_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT), "TMPDIR": str(tmp)}
    with ServerProcess(env, root / "server.log") as live:
        # the first analysis runs in the background after start: done before any sampling
        live.wait_live()
        yield live, tmp


def zeros(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    block = b"0" * chunk
    for start in range(0, total, chunk):
        yield block[:min(chunk, total - start)]


def json_body(total: int) -> Iterator[bytes]:
    """A JSON object whose one string runs ``total`` bytes (valid JSON, were it allowed)."""
    yield b'{"spans": ["'
    yield from zeros(total)
    yield b'"]}'


def multipart(field: str, filename: str, total: int) -> tuple[dict[str, str], Iterator[bytes]]:
    """A form whose ``field`` file part runs ``total`` bytes (for BEAD's ``locations`` after a
    small ``availability`` part, so that the form is complete but for its size)."""
    boundary = "netgis-test-boundary"

    def part_head(name: str, file: str) -> bytes:
        return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode()

    def parts() -> Iterator[bytes]:
        if field == "locations":
            yield part_head("availability", "bdc.csv") + b"location_id\r\n"
        yield part_head(field, filename)
        yield from zeros(total)
        yield f"\r\n--{boundary}--\r\n".encode()

    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, parts()


def assert_413(result: object) -> dict[str, object]:
    from tests.api.helpers import ChunkedResult

    assert isinstance(result, ChunkedResult)
    assert result.status == 413, result.body[:500]
    assert result.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, object] = json.loads(result.body)
    assert problem["status"] == 413
    # answered once the limit was passed, long before the body ended
    assert result.sent_before_response < BODY // 2, result.sent_before_response
    return problem


def test_a_chunked_json_body_stops_at_the_limit(
        server: tuple[ServerProcess, Path]) -> None:
    live, tmp = server
    headers = {"Content-Type": "application/json"}
    # warm up the code path so that imports do not count as growth
    assert_413(post_chunked(live.url, "/analysis/scenarios", json_body(3 * LIMIT), headers))
    with PeakSampler(live.pid, tmp) as sample:
        result = post_chunked(live.url, "/analysis/scenarios", json_body(BODY), headers)
    print(f"scenarios: {BODY / MB:.0f} MiB chunked body, limit {LIMIT / MB:.2f} MiB: RSS "
          f"+{sample.rss_growth / MB:.1f} MiB, temp +{sample.temp_growth / MB:.1f} MiB, "
          f"answered after {result.sent_before_response / MB:.1f} MiB sent")
    problem = assert_413(result)
    assert str(LIMIT) in str(problem["detail"])
    assert sample.rss_growth < BOUND


@pytest.mark.parametrize(("path", "field"), [("/import", "file"),
                                             ("/analysis/bead", "locations")])
def test_a_chunked_upload_stops_spooling_at_the_limit(
        server: tuple[ServerProcess, Path], path: str, field: str) -> None:
    live, tmp = server
    headers, warm = multipart(field, "big.gpkg", 2 * UPLOAD_LIMIT)
    assert_413(post_chunked(live.url, path, warm, {**headers, "X-API-Key": API_KEY}))
    headers, parts = multipart(field, "big.gpkg", BODY)
    with PeakSampler(live.pid, tmp) as sample:
        result = post_chunked(live.url, path, parts, {**headers, "X-API-Key": API_KEY})
    print(f"{path}: {BODY / MB:.0f} MiB chunked upload, limit {UPLOAD_LIMIT / MB:.2f} MiB: RSS "
          f"+{sample.rss_growth / MB:.1f} MiB, temp +{sample.temp_growth / MB:.1f} MiB, "
          f"answered after {result.sent_before_response / MB:.1f} MiB sent")
    assert str(UPLOAD_LIMIT) in str(assert_413(result)["detail"])
    assert sample.temp_growth < BOUND
    assert sample.rss_growth < BOUND
    # the temporary files of the refused upload are gone
    assert sample.temp_start == sample.temp_peak - sample.temp_growth
    assert not [p for p in tmp.rglob("*") if p.is_file()]


def test_the_server_still_answers_after_refusing(server: tuple[ServerProcess, Path]) -> None:
    import httpx

    live, _ = server
    r = httpx.post(f"{live.url}/analysis/scenarios", json={"spans": []}, timeout=60)
    assert r.status_code == 200
    declared = httpx.post(f"{live.url}/analysis/scenarios", content=b"{}" + b" " * 2 * LIMIT,
                          headers={"Content-Type": "application/json"}, timeout=60)
    assert declared.status_code == 413


def test_each_route_has_its_own_limit(server: tuple[ServerProcess, Path]) -> None:
    live, _ = server
    between = 2 * LIMIT  # over the JSON limit, under the upload limit
    result = post_chunked(live.url, "/analysis/scenarios", json_body(between),
                          {"Content-Type": "application/json"})
    assert result.status == 413
    headers, parts = multipart("file", "city.gpkg", between)
    result = post_chunked(live.url, "/import", parts, {**headers, "X-API-Key": API_KEY})
    # read whole and judged on its content: not a dataset
    assert result.status == 415, result.body[:300]
