"""`make demo` serves with a write key it shows (before, every write was a 401: no key set).

The key comes from ``scripts/demo-key.sh``: made once at random into a file, then reused.
The second test runs the real ``make demo`` on a copy of the Makefile, the scripts and
the sample, reads the key it prints and writes with it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import free_port

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "demo-key.sh"
VENV = Path(sys.executable).parents[1]


def demo_key(path: Path) -> str:
    run = subprocess.run([str(SCRIPT), str(path)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_the_key_is_random_kept_private_and_reused(tmp_path: Path) -> None:
    first = demo_key(tmp_path / "key")
    assert re.fullmatch(r"[0-9a-f]{32}", first), first
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert demo_key(tmp_path / "key") == first  # the same key on the next demo
    assert demo_key(tmp_path / "other") != first
    # an empty file (an interrupted first run) gets a key
    (tmp_path / "empty").touch()
    assert re.fullmatch(r"[0-9a-f]{32}", demo_key(tmp_path / "empty"))


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_accepts_a_write_with_the_key_it_shows(tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copy(ROOT / "Makefile", work)
    shutil.copytree(ROOT / "scripts", work / "scripts")
    (work / "data").mkdir()
    shutil.copy(ROOT / "data" / "sample.gpkg", work / "data")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETGIS_")}
    log = tmp_path / "make.log"
    with log.open("wb") as out:
        # -o venv: the virtualenv of this test run is ready; make must not rebuild it
        make = subprocess.Popen(["make", "-o", "venv", f"VENV={VENV}", f"PORT={port}", "demo"],
                                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            assert make.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        shown = re.search(r"write key: (\S+) \(send as X-API-Key", log.read_text())
        assert shown, log.read_text()
        key = shown.group(1)
        assert key == (work / ".netgis-demo-key").read_text().strip()
        premise = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.7, 50.1]},
                   "properties": {"premise_id": "demo-write", "units": 1}}
        refused = httpx.post(f"{base}/collections/premises/items", json=premise, timeout=60)
        assert refused.status_code == 401
        written = httpx.post(f"{base}/collections/premises/items", json=premise,
                             headers={"X-API-Key": key}, timeout=60)
        assert written.status_code == 201, written.text
        # reads stay open, as before
        assert httpx.get(f"{base}/collections/premises/items/demo-write",
                         timeout=60).status_code == 200
    finally:
        # the session make leads: make and the server it started, nothing else
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=60)
