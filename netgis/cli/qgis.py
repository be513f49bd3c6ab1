"""``netgis qgis``: a QGIS project of a running netgis server (docs/qgis.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from netgis.cli.common import _echo_json, app
from netgis.errors import ConfigError

#: How long connecting to the server may take, and one answer (the first analysis of a large
#: network, which the criticality ranking waits for, can take minutes), in seconds.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 900.0


@app.command("qgis")
def qgis(
    url: Annotated[str, typer.Option("--url", help="The server's address (its landing page), "
                                     "e.g. http://127.0.0.1:8000.")],
    out: Annotated[Path, typer.Option("--out", help="The QGIS project to write (.qgz).")],
    api_key_env: Annotated[str | None, typer.Option(
        "--api-key-env", help="Name of the environment variable holding a key to read with "
                              "(sent as X-API-Key; needed when the server closes reads).")] = None,
    authcfg: Annotated[str | None, typer.Option(
        "--authcfg", help="Id of a QGIS authentication configuration the project's layers "
                          "use (the key stays in QGIS's own store, never in the project).")
                       ] = None,
) -> None:
    """Write a QGIS project of the server at URL: its layers and result collections over OGC
    API - Features, its vector tiles and base map, styled as the web maps."""
    if out.suffix.lower() != ".qgz":
        raise ConfigError(f"--out must name a .qgz file, not {out}")
    headers = {}
    if api_key_env is not None:
        key = os.environ.get(api_key_env, "")
        if not key.strip():
            raise ConfigError(f"--api-key-env {api_key_env}: that environment variable is "
                              "not set or empty")
        headers["X-API-Key"] = key.strip()

    import httpx

    from netgis.maps.qgis import qgis_project, read_server
    from netgis.maps.qgis_xml import write_qgz

    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    with httpx.Client(headers=headers, timeout=timeout, follow_redirects=False) as client:
        catalog = read_server(client, url)
    project = qgis_project(catalog, authcfg=authcfg)
    write_qgz(project, out)
    typer.echo(f"netgis qgis: wrote {out}", err=True)
    _echo_json({"out": str(out), "url": catalog.url,
                "groups": {g.name: [layer.name for layer in g.children] for g in project.tree},
                "basemap": catalog.basemap is not None})
