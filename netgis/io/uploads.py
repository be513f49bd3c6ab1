"""Reading an uploaded dataset file: a GeoPackage, or a zip of one or of layer files, or any
GIS source read through a mapping file (docs/interop.md).

The API runs :func:`read_upload` in a child process (:mod:`netgis.io.isolation`), so this
module imports only what reading needs: no web framework, no database. Its errors are
:class:`~netgis.errors.UploadError` (422) and its kinds :class:`~netgis.errors.UploadTooLarge`
(413) and :class:`~netgis.errors.UnsupportedUpload` (415).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from netgis.errors import Problem, UnsupportedUpload, UploadError, UploadTooLarge
from netgis.io.formats import check_plain_path
from netgis.schema import LAYER_NAMES

if TYPE_CHECKING:
    from netgis.dataset import Dataset
    from netgis.interop.mapping import Mapping

_SQLITE_MAGIC = b"SQLite format 3\x00"
_ZIP_MAGIC = b"PK\x03\x04"
#: Archives (and compressed files) by name and by their first bytes: zip (KMZ), gzip,
#: bzip2, xz, 7z, zstd, RAR.
_ARCHIVE_SUFFIXES = frozenset({".zip", ".kmz", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z",
                               ".zst", ".rar", ".shz"})
_ARCHIVE_MAGIC = (_ZIP_MAGIC, b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf\x27\x1c",
                  b"\x28\xb5\x2f\xfd", b"Rar!")
_CHUNK = 1024 * 1024


def read_upload(upload: Path, max_bytes: int, mapping: Mapping | None = None) -> Dataset:
    """Unpack and read an upload into a validated dataset (the API runs it through
    :func:`netgis.io.isolation.run_isolated`)."""
    if mapping is not None:
        from netgis.interop.mapping import import_mapped

        return import_mapped([source_path(upload, max_bytes)], mapping)
    from netgis.io.read import read_dataset

    return read_dataset(dataset_path(upload, max_bytes))


def source_path(upload: Path, max_bytes: int) -> Path:
    """What a mapping reads: the uploaded file, or the folder a zip unpacks to."""
    with upload.open("rb") as fh:
        head = fh.read(4)
    if not head.startswith(_ZIP_MAGIC):
        return upload
    out = upload.parent.parent / "unzipped"
    _unzip(upload, out, max_bytes)
    return out


def _unzip(upload: Path, out: Path, max_bytes: int) -> None:
    try:
        with zipfile.ZipFile(upload) as archive:
            _safe_extract(archive, out, max_bytes)
    except zipfile.BadZipFile as exc:
        raise UploadError(f"the zip archive cannot be read: {exc}",
                          [Problem("dataset", None, None, "broken zip archive")]) from None


def dataset_kind(upload: Path) -> Literal["gpkg", "zip"]:
    """A dataset upload is a GeoPackage or a zip archive, by its first bytes (415 else)."""
    with upload.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(_SQLITE_MAGIC):
        return "gpkg"
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    raise UnsupportedUpload("the file is neither a GeoPackage nor a zip archive")


def dataset_path(upload: Path, max_bytes: int) -> Path:
    """The GeoPackage or layer directory inside ``upload`` (415 for anything else)."""
    if dataset_kind(upload) == "gpkg":
        # the reader goes by the suffix; the client's name stays visible in front of it
        if upload.suffix == ".gpkg":
            return upload
        return upload.rename(upload.with_name(upload.name + ".gpkg"))
    out = upload.parent.parent / "unzipped"
    _unzip(upload, out, max_bytes)
    packages = sorted(out.rglob("*.gpkg"))
    if len(packages) == 1:
        return packages[0]
    dirs = sorted({p.parent for p in out.rglob("*") if p.is_file() and p.stem in LAYER_NAMES})
    if len(packages) > 1 or len(dirs) != 1:
        raise UploadError("the zip must hold one .gpkg or one folder of layer files",
                       [Problem("dataset", None, None,
                                f"found {len(packages)} GeoPackages and {len(dirs)} "
                                "layer folders")])
    return dirs[0]


def _safe_extract(archive: zipfile.ZipFile, out: Path, max_bytes: int) -> None:
    # member names come from the client: refuse paths that leave the folder or that GDAL
    # would read as something else, zip bombs, and archives inside the archive (a KMZ, a
    # .gz: their content would escape the size limit, which sees the outer archive only)
    total = 0
    out.mkdir()
    for info in archive.infolist():
        name = PurePosixPath(info.filename)
        if name.is_absolute() or ".." in name.parts:
            raise UploadError(f"unsafe path in zip: {info.filename!r}",
                              [Problem("dataset", None, None, "zip member leaves the archive")])
        for part in name.parts:
            check_plain_path(part, "dataset")
        if info.is_dir():
            continue
        total += info.file_size
        if total > max_bytes:
            raise UploadTooLarge(f"the unzipped dataset is larger than {max_bytes} bytes")
        target = out.joinpath(*name.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, target.open("wb") as dst:
            head = src.read(_CHUNK)
            if name.suffix.lower() in _ARCHIVE_SUFFIXES or head.startswith(_ARCHIVE_MAGIC):
                raise UploadError(f"zip member {info.filename!r} is itself an archive: "
                               "archives inside the upload are not unpacked (their content "
                               f"would escape the limit of {max_bytes} unpacked bytes); "
                               "unpack it and send its files",
                               [Problem("dataset", None, None, "nested archive")])
            dst.write(head)
            shutil.copyfileobj(src, dst, _CHUNK)
