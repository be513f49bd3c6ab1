"""netgis.io.isolation: a function run in a child process comes back with its result or its
error; a child that spins, sleeps or swells is stopped at its limit with a LimitError;
the child has only the GDAL drivers netgis reads, no network for GDAL and none of the
parent's secrets."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from netgis.errors import DatasetFormatError, LimitError
from netgis.io.isolation import ALLOWED_DRIVERS, Limits, Stopped, run_isolated
from tests.interop.hostile import SECRET, Listener

ROOMY = Limits(wall_s=120, cpu_s=60, memory_bytes=2**30,
               settings={"wall_s": "WALL", "cpu_s": "CPU", "memory_bytes": "MEMORY"})
pytestmark = pytest.mark.timeout(180)


def run(target: str, *args: Any, limits: Limits = ROOMY, work: Path) -> Any:
    return asyncio.run(run_isolated(target, args, work=work, limits=limits))


def test_results_and_errors_come_back(tmp_path: Path) -> None:
    assert run("os.path:join", "a", "b", work=tmp_path / "a") == os.path.join("a", "b")
    with pytest.raises(DatasetFormatError) as err:
        run("netgis.io:read_raw", str(tmp_path / "missing.gpkg"), work=tmp_path / "b")
    (problem,) = err.value.problems
    assert "missing.gpkg" in problem.reason and "does not exist" in problem.reason


@pytest.mark.parametrize(("target", "args", "limits", "setting"), [
    ("tests.interop.hostile:spin", (), Limits(wall_s=120, cpu_s=1, memory_bytes=2**30,
                                             settings=ROOMY.settings), "CPU"),
    ("tests.interop.hostile:sleep_long", (), Limits(wall_s=4, cpu_s=60, memory_bytes=2**30,
                                                   settings=ROOMY.settings), "WALL"),
    ("tests.interop.hostile:hog", (2**33,), Limits(wall_s=120, cpu_s=60,
                                                   memory_bytes=2**28,
                                                   settings=ROOMY.settings), "MEMORY"),
], ids=["cpu", "wall-clock", "memory"])
def test_a_child_past_its_limit_is_stopped(target: str, args: tuple[Any, ...], limits: Limits,
                                           setting: str, tmp_path: Path) -> None:
    with pytest.raises(LimitError) as err:
        run(target, *args, limits=limits, work=tmp_path)
    (problem,) = err.value.problems
    assert problem.reason.startswith("reading the input was stopped")
    assert f"the limit is {setting}" in problem.reason, problem.reason
    assert _children() == []


def test_stop_kills_the_child(tmp_path: Path) -> None:
    asked: list[int] = []

    async def stop() -> bool:
        asked.append(len(_children()))
        return len(asked) >= 3

    with pytest.raises(Stopped):
        asyncio.run(run_isolated("tests.interop.hostile:sleep_long", (), work=tmp_path,
                                 limits=ROOMY, stop=stop))
    assert asked[0] == 1  # the child was there while it was asked
    assert _children() == []


def test_the_child_has_only_the_drivers_netgis_reads_and_no_secrets(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    drivers = run("tests.interop.hostile:gdal_drivers", work=tmp_path / "a")
    assert set(drivers) <= ALLOWED_DRIVERS and {"GPKG", "CSV", "GeoJSON"} <= set(drivers)
    assert "OGR_VRT" not in drivers and "OAPIF" not in drivers
    monkeypatch.setenv("NETGIS_API_KEYS", SECRET)
    environment = run("tests.interop.hostile:environment", work=tmp_path / "b")
    assert SECRET not in str(environment)
    with Listener() as listener:
        answer = run("tests.interop.hostile:gdal_fetch", f"{listener.url}/secret.csv",
                     work=tmp_path / "c")
    assert SECRET not in answer
    assert listener.hits == []


def _children() -> list[psutil.Process]:
    return [c for c in psutil.Process().children(recursive=True) if c.is_running()
            and c.status() != psutil.STATUS_ZOMBIE]
