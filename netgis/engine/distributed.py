"""Scale-out: spatially partitioned premises and the Dask engine of ``netgis analyze``.

:func:`partition_dataset` writes a dataset as a directory of GeoParquet layer
files whose premises layer is itself a directory of Hilbert-ordered,
spatially partitioned GeoParquet files (dask-geopandas ``spatial_shuffle``).
Every feature, attribute, coordinate and the CRS are kept; :mod:`netgis.io`
reads such a directory like any other dataset.

:func:`analyze_dask` runs the two passes of :mod:`netgis.engine.streamed` over
dask-geopandas partitions on a dask.distributed cluster (a LocalCluster when no
scheduler is named): the graph analysis runs once on the client and is sent to
every worker once; each partition is located against the lit spans within a
drop_m halo of it (premises with none that near against the whole network);
the client adds the partitions' sums up and writes the same files as the
local engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dask
import dask_geopandas
from dask.delayed import delayed
from distributed import Client, LocalCluster

from netgis.engine.optics import LossBudget
from netgis.engine.streamed import ChunkedResult, Context, Progress, analyze_chunked, premise_files
from netgis.errors import DatasetFormatError, Problem
from netgis.io import atomic_dir, read_raw, write_layer_file
from netgis.schema import DEFAULT_DROP_M
from netgis.validate import validate_raw

#: Premises per partition that ``netgis partition`` aims at by default.
PARTITION_ROWS = 250_000


# ---- netgis partition -----------------------------------------------------------------------

def partition_dataset(path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                      partitions: int | None = None) -> dict[str, Any]:
    """Write ``path`` as a partitioned dataset directory ``out`` (replaced atomically).

    The layers are written as read (every attribute and coordinate, the CRS),
    after checking that the dataset is valid (a ValidationError otherwise;
    nothing is written). Premises are ordered along a Hilbert curve over
    their extent and cut into ``partitions`` spatially compact GeoParquet
    files (default: about :data:`PARTITION_ROWS` premises each).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> summary = partition_dataset("tests/examples/ring_spur/dataset.gpkg",
    ...                             Path(tempfile.mkdtemp()) / "ring", partitions=2)
    >>> summary["partitions"], sorted(summary["layers"])
    (2, ['areas', 'nodes', 'premises', 'spans'])
    """
    raw = read_raw(path)
    validate_raw(raw).dataset_or_raise()
    premises = raw["premises"].frame.reset_index(drop=True)
    n = partitions or max(1, -(-len(premises) // PARTITION_ROWS))
    n = max(1, min(n, len(premises)))
    with atomic_dir(out) as tmp:
        for name, layer in raw.items():
            if name != "premises":
                write_layer_file(layer.frame, tmp / f"{name}.parquet", "parquet")
        ddf = dask_geopandas.from_geopandas(premises, npartitions=n)
        shuffled = ddf.spatial_shuffle(by="hilbert", npartitions=n)
        with dask.config.set(scheduler="synchronous"):
            shuffled.to_parquet(tmp / "premises.parquet", write_index=False)
    return {"out": str(out), "partitions": n,
            "layers": {name: len(layer.frame) for name, layer in raw.items()}}


# ---- netgis analyze --engine dask -----------------------------------------------------------

@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int | None = None) -> Iterator[Client]:
    """A client of the cluster at ``scheduler``, or of a new LocalCluster (closed at the end)."""
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    n = workers or max(1, min(os.cpu_count() or 1, 4))
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


class DaskRunner:
    """The chunk tasks of :mod:`netgis.engine.streamed` over dask-geopandas partitions on a cluster.

    Each task reads its partition on a worker; results come back in partition
    order and are released as soon as the client has them.
    """

    def __init__(self, client: Client, premises: dask_geopandas.GeoDataFrame) -> None:
        self.client = client
        self.parts = premises.to_delayed()

    def share(self, ctx: Context) -> Any:
        """``ctx`` scattered to every worker once; tasks receive its future."""
        [future] = self.client.scatter([ctx], broadcast=True)
        return future

    def map(self, fn: Callable[..., Any], *args: Any) -> Iterator[Any]:
        """``fn(partition, *args)`` on the cluster for every partition, in partition order."""
        futures = self.client.compute([delayed(fn)(part, *args) for part in self.parts])
        for future in futures:
            result = future.result()
            future.release()
            yield result


def premise_partitions(path: str | os.PathLike[str]) -> dask_geopandas.GeoDataFrame:
    """The premises of a dataset as dask-geopandas partitions.

    A partitioned dataset (``netgis partition``) gives one partition per file;
    any other dataset is read here and cut into partitions of about
    :data:`PARTITION_ROWS` premises in file order.
    """
    files = premise_files(path)
    if files is not None and len(files) > 1:
        try:
            return dask_geopandas.read_parquet([str(f) for f in files])
        except Exception as exc:  # pyarrow and dask raise several classes for bad files
            raise DatasetFormatError([Problem("premises", None, None,
                                              f"cannot read the premises partitions: {exc}")]) \
                from exc
    frame = read_raw(path)["premises"].frame.reset_index(drop=True)
    n = max(1, min(len(frame), -(-len(frame) // PARTITION_ROWS)))
    return dask_geopandas.from_geopandas(frame, npartitions=n)


def analyze_dask(path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 drop_m: float = DEFAULT_DROP_M, budget: LossBudget | None = None,
                 scheduler: str | None = None, workers: int | None = None,
                 progress: Progress | None = None) -> ChunkedResult:
    """``netgis analyze --engine dask``: the same four files in ``out`` as the local engine.

    Connects to the cluster at ``scheduler``, or starts a LocalCluster of
    ``workers`` processes (default: the machine's cores, at most 4). Raises
    ValidationError (nothing written) for invalid input.
    """
    with dask_client(scheduler, workers=workers) as client:
        return analyze_chunked(path, out, drop_m=drop_m, budget=budget,
                               runner=DaskRunner(client, premise_partitions(path)),
                               progress=progress)
