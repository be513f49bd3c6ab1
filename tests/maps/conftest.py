"""Fixtures for the map tests: analysed datasets, a local HTTP server, headless Chromium."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netgis.engine.analysis import Analysis, analyze
from netgis.generate import generate_city
from netgis.io import read_dataset
from tests.helpers import EXAMPLES_DIR
from tests.maps.helpers import PageServer, chromium


@pytest.fixture(scope="session")
def ring() -> Analysis:
    """ring_spur: the hand-drawn example whose answers are in its README."""
    return analyze(read_dataset(str(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg")))


@pytest.fixture(scope="session")
def city() -> Analysis:
    """A generated city of 400 premises (lit, unlit, planned and retired spans, areas)."""
    return analyze(generate_city(premises=400, seed=1))


@pytest.fixture(scope="session")
def server() -> Iterator[PageServer]:
    """A :class:`PageServer` on a temporary directory, for the whole session."""
    root = Path(tempfile.mkdtemp(prefix="netgis-maps-"))
    srv = PageServer(root)
    yield srv
    srv.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    """Headless /usr/bin/chromium with a fresh, empty profile and no background traffic.

    One per module, not per session: Playwright's sync API keeps an event loop running
    while its driver is open, and a later test of the same worker that calls
    ``asyncio.run`` would find it."""
    with chromium() as ctx:
        yield ctx
