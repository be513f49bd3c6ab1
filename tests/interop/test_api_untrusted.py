"""POST /import with hostile uploads, against ``netgis serve`` in a child process: a GDAL
virtual dataset (VRT) under a layer's name, a zip member named like a GDAL connection, a
GeoPackage whose layer is a view that never ends, and an archive inside the upload that
unpacks past the size limit are refused with a problem naming what is wrong and never
what a file points at; nothing is fetched; /health answers meanwhile; the upload folder
and the reading process are gone afterwards; a read past its time limit is stopped."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.api.helpers import API_KEY, ServerProcess
from tests.helpers import EXAMPLES_DIR
from tests.interop.helpers import MAPPINGS
from tests.interop.hostile import (
    ENDLESS_VIEW,
    SECRET,
    SITES_MAPPING,
    Listener,
    gpkg_with_view,
    vrt,
    write_secret,
    zipped_secret,
)

UPLOAD_LIMIT = 5_000_000
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    yield from _server(tmp_path_factory.mktemp("untrusted"), {})


def _server(root: Path, extra: dict[str, str]) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = root / "tmp"
    tmp.mkdir()
    env = {"NETGIS_DATABASE_URL": f"sqlite:///{root / 'api.db'}", "NETGIS_API_KEYS": API_KEY,
           "NETGIS_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT), "TMPDIR": str(tmp), **extra}
    with ServerProcess(env, root / "server.log") as live:
        yield live, tmp


def _post(live: ServerProcess, name: str, content: bytes,
          mapping: str | None = None) -> httpx.Response:
    files: dict[str, tuple[str, bytes, str]] = {
        "file": (name, content, "application/octet-stream")}
    if mapping is not None:
        files["mapping"] = ("m.toml", mapping.encode(), "application/toml")
    return httpx.post(f"{live.url}/import", headers={"X-API-Key": API_KEY}, files=files,
                      timeout=240)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _refused(answer: httpx.Response, live: ServerProcess, tmp: Path, listener: Listener,
             *words: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert SECRET not in answer.text
    for word in words:
        assert word in answer.text, answer.text
    assert listener.hits == []
    _cleaned_up(live, tmp)


def _cleaned_up(live: ServerProcess, tmp: Path) -> None:
    """No upload folder and no reading process is left behind."""
    assert list(tmp.iterdir()) == []
    assert psutil.Process(live.pid).children(recursive=True) == []
    assert httpx.get(f"{live.url}/collections/nodes/items").json()["numberMatched"] == 0


def _targets(tmp_path: Path, listener: Listener) -> dict[str, str]:
    secret = write_secret(tmp_path / "elsewhere")
    return {"file": f"CSV:{secret}", "url": f"/vsicurl/{listener.url}/secret.csv",
            "zip": f"/vsizip/{zipped_secret(secret.parent)}/secret.csv"}


@pytest.mark.parametrize("kind", ["file", "url", "zip"])
def test_a_vrt_is_refused_with_and_without_a_mapping(kind: str, tmp_path: Path,
                                                     server: tuple[ServerProcess, Path]) -> None:
    live, tmp = server
    with Listener() as listener:
        target = _targets(tmp_path, listener)[kind]
        # with a mapping: one file, and a zip of it
        for name in ("sites.csv", "sites.geojson", "sites.kml"):
            answer = _post(live, name, vrt(target).encode(), SITES_MAPPING)
            _refused(answer, live, tmp, listener, name)
        answer = _post(live, "plant.zip", _zip({"plant/sites.csv": vrt(target).encode()}),
                       SITES_MAPPING)
        _refused(answer, live, tmp, listener, "sites.csv")
        # without: a zip of a dataset folder whose nodes layer is a VRT
        members = {f"ds/{f.name}": f.read_bytes()
                   for f in (EXAMPLES_DIR / "ring_spur" / "dataset").iterdir()}
        members["ds/nodes.geojson"] = vrt(target, name="nodes").encode()
        answer = _post(live, "plant.zip", _zip(members))
        _refused(answer, live, tmp, listener, "nodes.geojson")


@pytest.mark.parametrize("prefix", ["CSV:", "GPKG:"])
def test_a_zip_member_named_like_a_gdal_connection_is_refused(
        prefix: str, server: tuple[ServerProcess, Path]) -> None:
    """The CSV example, with its sites file named ``CSV:sites.csv`` (and the mapping
    reading that layer): GDAL would read the name as a driver prefix given another path."""
    live, tmp = server
    csv = MAPPINGS / "sources" / "csv"
    members = {f"plant/{f.name}": f.read_bytes() for f in csv.iterdir()}
    members[f"plant/{prefix}sites.csv"] = members.pop("plant/sites.csv")
    mapping = (MAPPINGS / "csv-wkt-lonlat.toml").read_text().replace(
        'layer = "sites"', f'layer = "{prefix}sites"')
    answer = _post(live, "plant.zip", _zip(members), mapping)
    assert answer.status_code == 422, answer.text
    assert f"{prefix}sites.csv" in answer.text and "not a plain file path" in answer.text
    _cleaned_up(live, tmp)


def test_a_view_that_never_ends_is_refused_while_health_answers(
        tmp_path: Path, server: tuple[ServerProcess, Path]) -> None:
    live, tmp = server
    package = gpkg_with_view(tmp_path / "plant.gpkg", ENDLESS_VIEW).read_bytes()
    health: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            health.append(httpx.get(f"{live.url}/health", timeout=5).status_code)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answer = _post(live, "plant.gpkg", package)
        mapped = _post(live, "plant.gpkg", package, '[spans]\nlayer = "premises"\n')
    finally:
        done.set()
        watcher.join()
    for each in (answer, mapped):
        assert each.status_code == 422, each.text
        assert "premises" in each.text and "view" in each.text, each.text
    assert health and set(health) == {200}
    _cleaned_up(live, tmp)


@pytest.mark.parametrize("inner", ["plant.kmz", "sites.csv.gz", "renamed.csv"])
def test_an_archive_in_the_upload_is_refused_naming_the_limit(
        inner: str, server: tuple[ServerProcess, Path]) -> None:
    """A small zip holding an archive that unpacks to ten times the upload limit."""
    live, tmp = server
    bomb = io.BytesIO()
    if inner.endswith(".gz"):
        import gzip

        with gzip.GzipFile(fileobj=bomb, mode="wb") as out:
            for _ in range(50):
                out.write(b" " * 2**20)
    else:
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as kmz, \
                kmz.open("doc.kml", "w", force_zip64=True) as out:
            out.write(b'<?xml version="1.0"?><kml><Document>')
            for _ in range(50):
                out.write(b" " * 2**20)
            out.write(b"</Document></kml>")
    upload = _zip({f"plant/{inner}": bomb.getvalue()})
    assert len(upload) < UPLOAD_LIMIT / 10
    answer = _post(live, "plant.zip", upload, SITES_MAPPING)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "archive" in detail and str(UPLOAD_LIMIT) in detail, detail
    _cleaned_up(live, tmp)


def test_a_read_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    """Any read takes longer than 0.1 s (its process alone, loading GDAL and geopandas,
    starts slower): stopped, 422 naming the setting; the server answers on, keeps nothing."""
    for live, tmp in _server(tmp_path, {"NETGIS_IMPORT_TIMEOUT_S": "0.1"}):
        with (MAPPINGS / "sources" / "csv" / "sites.csv").open("rb") as fh:
            answer = _post(live, "sites.csv", fh.read(), '[spans]\nlayer = "sites"\n')
        assert answer.status_code == 422, answer.text
        assert "NETGIS_IMPORT_TIMEOUT_S" in answer.text and "0.1 s" in answer.text
        assert httpx.get(f"{live.url}/health", timeout=5).status_code == 200
        _cleaned_up(live, tmp)


def test_a_client_that_leaves_stops_the_read(tmp_path: Path,
                                             server: tuple[ServerProcess, Path]) -> None:
    """The reading process is killed, the upload removed and nothing stored (the example
    would import: the client left before it was read)."""
    live, tmp = server
    shutil.copyfile(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg", tmp_path / "plant.gpkg")
    server_process = psutil.Process(live.pid)
    with pytest.raises(httpx.ReadTimeout):
        # the client gives up while the upload is being read (a child starts in ~0.7 s)
        httpx.post(f"{live.url}/import", headers={"X-API-Key": API_KEY}, timeout=0.3,
                   files={"file": ("plant.gpkg", (tmp_path / "plant.gpkg").read_bytes())})
    deadline = time.monotonic() + 30
    while (server_process.children(recursive=True) or list(tmp.iterdir())) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    _cleaned_up(live, tmp)


def _stalled_upload(live: ServerProcess) -> socket.socket:
    """An import whose body stops half way (the client waits, sending nothing more)."""
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=60)
    head = (f"POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {API_KEY}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
            '--b\r\nContent-Disposition: form-data; name="file"; filename="d.gpkg"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n")
    sock.sendall(head.encode() + b"SQLite format 3\x00" + b"\x00" * 4000)
    return sock


def test_a_killed_servers_upload_folder_goes_at_the_next_start(tmp_path: Path) -> None:
    """SIGKILL during an upload leaves its folder; the next server removes it, and never the
    folder of a server that still runs."""
    (tmp_path / "one").mkdir()
    for live, tmp in _server(tmp_path / "one", {}):
        sock = _stalled_upload(live)
        deadline = time.monotonic() + 30
        while not list(tmp.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        [left] = list(tmp.iterdir())
        assert left.name.startswith(f"netgis-import-{live.pid}-")
        assert live.proc is not None
        live.proc.kill()
        live.proc.wait(timeout=30)
        sock.close()
    assert left.is_dir()  # what a killed server leaves
    running = tmp / f"netgis-import-{os.getpid()}-abc"  # this test's process runs
    running.mkdir()
    env = {"NETGIS_DATABASE_URL": f"sqlite:///{tmp_path / 'two.db'}", "TMPDIR": str(tmp)}
    with ServerProcess(env, tmp_path / "two.log") as second:
        # it listens once its start (the sweep included) is done
        assert httpx.get(f"{second.url}/health", timeout=30).status_code == 200
        assert not left.exists() and running.is_dir()


def test_stopping_does_not_wait_out_a_stalled_upload(tmp_path: Path) -> None:
    """Ctrl-C while a client holds an upload open: the server cancels it after
    NETGIS_SHUTDOWN_TIMEOUT_S and exits, instead of waiting for the body timeout (whose
    408 would then reach the client)."""
    for live, tmp in _server(tmp_path, {"NETGIS_SHUTDOWN_TIMEOUT_S": "1",
                                        "NETGIS_BODY_TIMEOUT_S": "600"}):
        sock = _stalled_upload(live)
        deadline = time.monotonic() + 30
        while not list(tmp.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live.proc is not None
        live.proc.send_signal(signal.SIGINT)
        # exits long before the 600 s body timeout: the wait below would fail otherwise
        assert live.proc.wait(timeout=120) is not None
        sock.settimeout(5)
        answer = b""
        with contextlib.suppress(OSError):
            answer = sock.recv(65536)
        sock.close()
        assert b" 408 " not in answer and b" 201 " not in answer
        assert list(tmp.iterdir()) == []
