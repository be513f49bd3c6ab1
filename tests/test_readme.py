"""Every fenced command of README.md, run as written on the sample.

A new user copies the README's commands into a shell at the top of a checkout; this test
does the same in a scratch directory that links the checkout's ``.venv`` and ``data/``.
The ``sh`` blocks run in order as one bash script (a variable such as ``N`` or an
exported ``NETGIS_DATABASE_URL`` carries on to later blocks, as in a terminal), stopping
at the first command that fails and naming it; the ``python`` blocks run with the venv's
interpreter. Three things differ from a terminal, each because a test cannot do otherwise:

- the quick start (``make demo``, ``make test``) is not run: ``make test`` is what runs
  this test, and ``make demo`` ends in a server;
- port 8000 becomes a free port and the PostGIS database ``netgis`` a throwaway one, so
  the test can run beside the rest of the suite;
- ``netgis serve`` starts in the background; the test waits for ``/health`` to answer,
  then stops it (Ctrl-C). A block that talks to ``http://127.0.0.1:8000`` (GDAL, curl)
  gets a server started the same way before it and stopped after it.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PostgresDatabases

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

pytestmark = [pytest.mark.postgis, pytest.mark.slow, pytest.mark.xdist_group("readme")]

#: Blocks whose commands the test does not run (see the module docstring).
QUICK_START = ("make demo", "make test")

#: The PostGIS database the README names (a throwaway one takes its place).
README_POSTGIS = "postgresql+psycopg://postgres@127.0.0.1/netgis"

_FENCE = re.compile(r"^```(\w*)\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SERVE = re.compile(r"(?:\$N|netgis)\s+serve\b")

#: Bash helpers the script starts with: start a server in the background and wait until
#: it answers /health (or fail naming the command), and stop it as Ctrl-C would.
_PRELUDE = r"""
set -eEuo pipefail
trap 'echo "README command failed (exit $?): $BASH_COMMAND" >&2' ERR
readme_wait() {  # PID: wait for the server on $README_PORT
  for _ in $(seq 1 300); do
    if curl -sf -o /dev/null "http://127.0.0.1:$README_PORT/health"; then return 0; fi
    kill -0 "$1" 2>/dev/null || { echo "the server exited before answering" >&2; return 1; }
    sleep 0.2
  done
  echo "the server did not answer /health in 60 s" >&2; return 1
}
readme_stop() { kill -INT "$1"; wait "$1" || true; }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """The fenced blocks of ``text`` as (language, body), in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]


def _lines(body: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line for line in joined.splitlines() if line.strip()]


def shell_script(blocks: list[tuple[str, str]], *, port: int, postgres_url: str) -> str:
    """The README's shell blocks as one bash script, changed as the docstring says."""
    out = [_PRELUDE, f"README_PORT={port}"]
    for language, body in blocks:
        if language != "sh" or any(cmd in body for cmd in QUICK_START):
            continue
        body = body.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        body = body.replace("--port 8000", f"--port {port}")
        body = body.replace(README_POSTGIS, postgres_url)
        needs_server = f"127.0.0.1:{port}" in body and not _SERVE.search(body)
        if needs_server:
            out += [f".venv/bin/netgis serve --port {port} 2>serve.log &", "readme_pid=$!",
                    "readme_wait $readme_pid"]
        for line in _lines(body):
            if _SERVE.search(line):
                command = line.split(" #")[0].rstrip()
                if "--port" not in command:
                    command += f" --port {port}"
                out += [f"echo {shlex.quote('$ ' + command)} >&2",
                        f"{command} 2>>serve.log &", "serve_pid=$!",
                        "readme_wait $serve_pid", "readme_stop $serve_pid"]
            else:
                out += [f"echo {shlex.quote('$ ' + line)} >&2", line]
        if needs_server:
            out.append("readme_stop $readme_pid")
    return "\n".join(out) + "\n"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """An empty directory that looks like the top of the checkout to the commands."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "data").symlink_to(ROOT / "data")
    return tmp_path


def test_every_shell_command_of_the_readme_runs_as_written(
        scratch: Path, pg_databases: PostgresDatabases) -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    url = pg_databases.create(prefix="netgis_readme")
    script = shell_script(blocks, port=_free_port(), postgres_url=url)
    (scratch / "readme.sh").write_text(script, encoding="utf-8")
    run = subprocess.run(["bash", "readme.sh"], cwd=scratch, capture_output=True,
                         text=True, timeout=900, check=False)
    log = (scratch / "serve.log").read_text() if (scratch / "serve.log").exists() else ""
    assert run.returncode == 0, f"{run.stderr[-6000:]}\n--- server log ---\n{log[-3000:]}"
    # what the commands promise to leave behind is there
    for made in ("out/premises.csv", "out/kpis.json", "gaps", "ofds/nodes.geojson",
                 "coverage.html", "report.html", "report.pdf", "premises.gpkg"):
        assert (scratch / made).exists(), made
    assert (scratch / "report.pdf").read_bytes().startswith(b"%PDF")


def test_every_python_example_of_the_readme_runs(scratch: Path) -> None:
    blocks = [body for language, body in readme_blocks(README.read_text(encoding="utf-8"))
              if language == "python"]
    assert blocks, "the README has no Python example"
    for body in blocks:
        run = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", body], cwd=scratch,
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, f"{body}\n{run.stderr[-3000:]}"


def test_the_script_keeps_every_command_of_the_readme() -> None:
    """The rewriting above drops nothing but the quick start: each command is in the script."""
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    script = shell_script(blocks, port=8000, postgres_url="postgresql+psycopg://x/y")
    commands = [line.split(" #")[0].strip() for language, body in blocks if language == "sh"
                for line in _lines(body)
                if not any(cmd in body for cmd in QUICK_START) and not _SERVE.search(line)]
    assert commands
    missing = [c for c in commands if c.replace(README_POSTGIS, "postgresql+psycopg://x/y")
               not in script]
    assert not missing, missing


if __name__ == "__main__":  # pragma: no cover - prints the script for a reader
    print(shell_script(readme_blocks(README.read_text(encoding="utf-8")), port=8000,
                       postgres_url=sys.argv[1] if len(sys.argv) > 1 else "postgresql://"))
