"""Analysis results cached per (data version, drop_m).

Every write to the database raises its data version, so a cached result can
never outlive the data it was computed from: a request first asks the database
for its version (one cheap query) and recomputes when it changed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netgis.dataset import Dataset


class AnalysisCache:
    """Holds the newest dataset and the last few analyses of one process.

    Examples
    --------
    >>> cache = AnalysisCache(size=2)
    >>> cache.size
    2
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        # one lock: two requests asking for the same missing result compute it once
        self._lock = threading.Lock()
        self._dataset: tuple[int, Dataset] | None = None
        self._analyses: OrderedDict[tuple[int, float], Any] = OrderedDict()

    def dataset(self, repo: Any) -> tuple[int, Dataset]:
        """The repository's dataset (WGS84) and the data version it belongs to."""
        with self._lock:
            return self._dataset_locked(repo)

    def _dataset_locked(self, repo: Any) -> tuple[int, Dataset]:
        version = int(repo.data_version())
        if self._dataset is not None and self._dataset[0] == version:
            return self._dataset
        # a write between reading the version and the data would label new data with the
        # old version; read until the version before and after agree
        for _ in range(5):
            dataset = repo.read_dataset()
            after = int(repo.data_version())
            if after == version:
                break
            version = after
        self._dataset = (version, dataset)
        self._analyses = OrderedDict(
            (k, v) for k, v in self._analyses.items() if k[0] == version
        )
        return self._dataset

    def analysis(self, repo: Any, drop_m: float) -> tuple[int, Any]:
        """The :class:`netgis.analysis.Analysis` of the current data for ``drop_m``."""
        from netgis.analysis import analyze

        with self._lock:
            version, dataset = self._dataset_locked(repo)
            key = (version, float(drop_m))
            hit = self._analyses.get(key)
            if hit is None:
                hit = analyze(dataset, drop_m=float(drop_m))
                self._analyses[key] = hit
                while len(self._analyses) > self.size:
                    self._analyses.popitem(last=False)
            else:
                self._analyses.move_to_end(key)
            return version, hit
