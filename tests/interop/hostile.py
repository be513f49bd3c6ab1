"""Hostile input files for the import tests: GDAL virtual datasets (VRT) that point at a
secret file, at a URL or into an archive, and GeoPackages whose layer is a view.

A secret is a small CSV file holding :data:`SECRET`: a test fails when that text comes
back in any answer. :class:`Listener` is an HTTP server on a loopback port that counts the
requests it gets: a test asserts that it got none.
"""

from __future__ import annotations

import http.server
import shutil
import sqlite3
import threading
import zipfile
from pathlib import Path
from types import TracebackType

from tests.helpers import EXAMPLES_DIR

#: What the secret file holds: it must never appear in an answer.
SECRET = "SECRET-TOKEN-7731"
#: The secret as a CSV file (a name and a token per line, like a password file).
SECRET_CSV = f"name,token\nroot,{SECRET}\ndaemon,{SECRET}-2\n"
#: A mapping that reads layer ``sites`` as spans: a code it does not know is quoted back in
#: the error (which is how the content of the target file would leak).
SITES_MAPPING = """
[spans]
layer = "sites"
crs = "EPSG:4326"
fields = { span_id = "name", status = { field = "token", map = { live = "in_service" } } }
"""


def write_secret(folder: Path) -> Path:
    """A secret CSV file in ``folder`` (outside any upload)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secret.csv"
    path.write_text(SECRET_CSV)
    return path


def vrt(source: str, layer: str = "secret", name: str = "sites") -> str:
    """An OGR VRT whose layer ``name`` reads ``layer`` of ``source`` (a path GDAL opens)."""
    return (f'<OGRVRTDataSource><OGRVRTLayer name="{name}">'
            f"<SrcDataSource>{source}</SrcDataSource><SrcLayer>{layer}</SrcLayer>"
            "</OGRVRTLayer></OGRVRTDataSource>\n")


def zipped_secret(folder: Path) -> Path:
    """The secret CSV inside a zip archive (for ``/vsizip/`` in a VRT)."""
    target = folder / "secret.zip"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("secret.csv", SECRET_CSV)
    return target


def gpkg_with_view(target: Path, view_sql: str, layer: str = "premises") -> Path:
    """The ring_spur example GeoPackage with its layer ``layer`` replaced by a view.

    The table is kept as ``<layer>_data``; the view (``view_sql``, which may read it) is
    registered as a feature layer in gpkg_contents and gpkg_geometry_columns, as GDAL
    and QGIS register views.
    """
    shutil.copyfile(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg", target)
    con = sqlite3.connect(target)
    try:
        srs, column, gtype = con.execute(
            "SELECT srs_id, column_name, geometry_type_name FROM gpkg_geometry_columns "
            "WHERE table_name = ?", (layer,)).fetchone()
        con.execute(f'ALTER TABLE "{layer}" RENAME TO "{layer}_data"')
        con.execute("UPDATE gpkg_contents SET table_name = ?, identifier = ? "
                    "WHERE table_name = ?", (f"{layer}_data", f"{layer}_data", layer))
        con.execute("UPDATE gpkg_geometry_columns SET table_name = ? WHERE table_name = ?",
                    (f"{layer}_data", layer))
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_ogr_contents'"
                       ).fetchone():
            con.execute("UPDATE gpkg_ogr_contents SET table_name = ? WHERE table_name = ?",
                        (f"{layer}_data", layer))
        con.execute(f'CREATE VIEW "{layer}" AS {view_sql}')
        con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                    "VALUES (?, 'features', ?, ?)", (layer, layer, srs))
        con.execute("INSERT INTO gpkg_geometry_columns (table_name, column_name, "
                    "geometry_type_name, srs_id, z, m) VALUES (?, ?, ?, ?, 0, 0)",
                    (layer, column, gtype, srs))
        con.commit()
    finally:
        con.close()
    return target


#: A view that only reads another table of the file.
COPY_VIEW = "SELECT * FROM premises_data"
#: A view that never ends: a recursive CTE counting without a bound.
ENDLESS_VIEW = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                "SELECT p.* FROM premises_data p WHERE p.fid > (SELECT max(i) FROM n)")


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:  # the name http.server calls
        self.hits.append(f"GET {self.path} {self.headers.get('User-Agent')}")
        body = SECRET_CSV.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:  # the name http.server calls
        self.hits.append(f"HEAD {self.path} {self.headers.get('User-Agent')}")
        self.send_response(200)
        self.send_header("Content-Length", str(len(SECRET_CSV)))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the hits are what the test looks at."""


class Listener:
    """An HTTP server on a loopback port, serving the secret CSV and noting every request."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        handler = type("Handler", (_Counting,), {"hits": self.hits})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


# ---- functions an isolated child runs (netgis.io.isolation imports them by name) ----------

def spin() -> None:
    """Burn CPU time without end."""
    n = 0
    while True:
        n += 1


def sleep_long() -> None:
    """Take a long time without using CPU."""
    import time

    time.sleep(3600)


def hog(nbytes: int) -> int:
    """Ask for ``nbytes`` of memory at once."""
    return len(bytearray(nbytes))


def gdal_drivers() -> list[str]:
    """The GDAL drivers the process has."""
    import pyogrio

    return sorted(pyogrio.list_drivers())


def gdal_fetch(url: str) -> str:
    """What GDAL answers when asked to read a CSV file at ``url``."""
    import pyogrio

    try:
        return repr(pyogrio.read_dataframe(f"/vsicurl/{url}"))
    except Exception as exc:  # pyogrio raises several unrelated classes
        return f"{type(exc).__name__}: {exc}"


def environment() -> dict[str, str]:
    """The environment of the process."""
    import os

    return dict(os.environ)
