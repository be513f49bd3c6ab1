"""Writing files: every output netgis writes goes through :func:`atomic_file` (one file)
or :func:`atomic_dir` (a directory, or a set of files in a directory). The content is
written to a temporary beside the target, made durable (fsync) and renamed into place
only once it is complete; on any error the temporary is removed and the target is left as
it was. Outputs get the usual modes: files ``0o666`` and directories ``0o777`` less the
process umask (0644 and 0755 under umask 022). :func:`write_dataset` writes a dataset in
any format netgis reads.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pyogrio  # imported before anything loads mod_spatialite (see storage)

from netgis.dataset import Dataset
from netgis.io.formats import DIR_FORMATS, OGR_DRIVERS, TEMP_PREFIX, detect_format
from netgis.schema import LAYERS

#: Where Linux shows a process its umask (read instead of changing it: see _umask).
_PROC_STATUS = "/proc/self/status"


# ---- writing --------------------------------------------------------------------------------

def _umask(probe_dir: Path) -> int:
    """The process umask, read without changing it.

    ``os.umask`` reads the mask only by setting another, and a thread that
    creates a file in between (the API server writes uploads) would get the
    wrong mode. Linux shows the mask in /proc/self/status; elsewhere a probe
    file created with mode 0o777 shows it.
    """
    try:
        with open(_PROC_STATUS, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    probe = probe_dir / f"{TEMP_PREFIX}{secrets.token_hex(6)}.umask"
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o777)
    try:
        return 0o777 & ~stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
        probe.unlink()


def _temp_name(parent: Path, suffix: str = "") -> Path:
    """A name in ``parent`` that nothing uses: the writer creates the file or directory."""
    while True:
        candidate = parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}{suffix}"
        if not os.path.lexists(candidate):
            return candidate


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)


def _settle(path: Path, umask: int) -> None:
    """Give ``path`` (a file, or a directory tree) the usual modes and flush it to disk.

    The writers (GDAL, pyarrow, pandas) create files with the usual modes,
    but a library that stages through ``mkstemp`` would leave 0600: the
    modes are set here, once, for every output.
    """
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    if path.is_dir() and not path.is_symlink():
        for root, _dirs, files in os.walk(path):
            for name in files:
                os.chmod(Path(root) / name, file_mode)
                _fsync(Path(root) / name)
            os.chmod(root, dir_mode)
            _fsync(Path(root))
    else:
        os.chmod(path, file_mode)
        _fsync(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink(missing_ok=True)


def _remove_temp(tmp: Path) -> None:
    """Remove a temporary and whatever a writer left beside it (``-journal``, ``.aux.xml``)."""
    for leftover in tmp.parent.glob(f"{glob.escape(tmp.name)}*"):
        _remove(leftover)


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Write one file atomically: yield a temporary path beside ``path`` to write to.

    The temporary does not exist yet (GDAL and pyarrow create their files);
    it ends in ``suffix`` (default: the suffix of ``path``) so that writers
    that look at the name see the right one. When the block ends without an
    error the file gets the usual mode, is flushed to disk and renamed onto
    ``path``, replacing any file there; on any error it is removed and
    ``path`` is left as it was. Missing parent directories are created.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_file(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text(), oct(target.stat().st_mode & 0o777)  # under umask 022
    ('hello', '0o644')
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(out.parent, out.suffix if suffix is None else suffix)
    try:
        yield tmp
        _settle(tmp, _umask(out.parent))
        os.replace(tmp, out)
        _fsync(out.parent)
    finally:
        _remove_temp(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike[str], *, merge: bool = False) -> Iterator[Path]:
    """Write a directory atomically: yield an empty staging directory to write into.

    When the block ends without an error every file and directory in it gets
    the usual mode and is flushed to disk, then:

    - ``merge=False``: the staging directory replaces ``path`` whole (a
      dataset directory: no layer file of an earlier write survives). A
      directory cannot replace another in one rename, so an existing
      ``path`` is first moved aside and put back should the rename fail.
    - ``merge=True``: each file written replaces its namesake in ``path``
      (created when missing) and other files there stay: the output
      directory that ``analyze``, ``gaps`` and ``bead`` share. The staging
      directory lies inside ``path``, so every rename stays on one file system.

    On any error the staging directory is removed and ``path`` is left as it
    was (a ``path`` this call created is removed again).

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out"
    >>> with atomic_dir(target) as tmp:
    ...     _ = (tmp / "a.csv").write_text("x\\n1\\n")
    >>> sorted(p.name for p in target.iterdir()), oct(target.stat().st_mode & 0o777)
    (['a.csv'], '0o755')
    """
    out = Path(path)
    created = False
    if merge:
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        parent = out
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        parent = out.parent
    tmp = _temp_name(parent)
    tmp.mkdir()
    try:
        yield tmp
        _settle(tmp, _umask(parent))
        if merge:
            entries = sorted(tmp.iterdir())
            # a file cannot replace a directory: refuse before the first rename, not halfway
            for entry in entries:
                if (out / entry.name).is_dir() and not entry.is_dir():
                    raise IsADirectoryError(f"cannot write {out / entry.name}: it is a directory")
            for entry in entries:
                os.replace(entry, out / entry.name)
        else:
            _replace_dir(tmp, out)
        _fsync(out if merge else out.parent)
    except BaseException:
        _remove(tmp)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    finally:
        _remove(tmp)


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename directory ``tmp`` onto ``out``, which may exist (a directory or a file)."""
    if not os.path.lexists(out):
        os.replace(tmp, out)
        return
    # a directory cannot replace another in one rename: move the old one aside first
    backup = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    try:
        os.replace(out, backup / "old")
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(backup / "old", out)
            raise
    finally:
        _remove(backup)


def write_dataset(
    dataset: Dataset, path: str | os.PathLike[str], *, fmt: str | None = None
) -> Path:
    """Write ``dataset`` to ``path`` atomically.

    ``fmt`` is ``gpkg``, ``geojson``, ``fgb`` or ``parquet``; by default it
    comes from ``path`` (see :func:`detect_format`): ``.gpkg`` writes one
    GeoPackage; ``.geojson``, ``.fgb`` or ``.parquet`` (or no suffix: GeoJSON)
    writes a directory of ``<layer>.<ext>`` files, replacing any there. The
    optional ``streets`` context layer is written too when the dataset has one.

    Examples
    --------
    >>> import tempfile
    >>> from netgis.io import read_dataset
    >>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> out = write_dataset(ds, Path(tempfile.mkdtemp()) / "ring.parquet")
    >>> sorted(p.name for p in out.iterdir())
    ['areas.parquet', 'nodes.parquet', 'premises.parquet', 'spans.parquet']
    """
    out = Path(path)
    fmt = detect_format(out, fmt)
    # an empty optional layer is left out: GeoJSON cannot keep the schema of an empty layer
    layers = {n: f for n, f in dataset.layers().items() if LAYERS[n].required or len(f)}
    if dataset.streets is not None and len(dataset.streets):
        layers["streets"] = dataset.streets  # the optional context layer, as it was read
    if fmt == "gpkg":
        with atomic_file(out, suffix=".gpkg") as tmp:
            for name, frame in layers.items():
                pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG")
        return out
    with atomic_dir(out) as tmp_dir:
        for name, frame in layers.items():
            write_layer_file(frame, tmp_dir / f"{name}{DIR_FORMATS[fmt]}", fmt)
    return out


def write_layer_file(frame: gpd.GeoDataFrame, target: Path, fmt: str) -> None:
    """Write one layer file of a dataset directory (not atomic: inside :func:`atomic_dir`)."""
    if fmt == "parquet":
        frame.to_parquet(target, index=False)
    else:
        pyogrio.write_dataframe(frame, target, driver=OGR_DRIVERS[fmt])
