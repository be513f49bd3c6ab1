"""Bulk import of a whole dataset file (a GeoPackage, or a zip of one or of layer files), or of
any GIS source mapped into the data model by a mapping file (docs/interop.md)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from netgis.api.deps import RepoDep, SettingsDep, WriterDep, check_upload_length, require_api_key
from netgis.api.errors import ApiError, problem_responses
from netgis.api.routers.common import UploadNames, safe_filename
from netgis.errors import Problem
from netgis.interop.mapping import Mapping, parse_mapping
from netgis.io.isolation import Stopped, run_isolated
from netgis.io.uploads import dataset_kind
from netgis.storage.repository import WriteMode

if TYPE_CHECKING:
    from netgis.dataset import Dataset
    from netgis.storage import Repository

router = APIRouter(tags=["Import"])

#: Name of an upload's temporary folder, before the server's process id: a server killed
#: mid-import (SIGKILL, a crash) leaves it behind, and the next start removes it.
UPLOAD_PREFIX = "netgis-import-"

_CHUNK = 1024 * 1024
#: A mapping file is a page of TOML: more than this is refused before parsing.
_MAX_MAPPING_BYTES = 256 * 1024


class ImportResult(BaseModel):
    """What an import stored."""

    mode: str
    counts: dict[str, int]
    data_version: int


_UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description":
                     "A .gpkg, or a .zip of a .gpkg or of <layer>.geojson/.fgb/.parquet "
                     "files. With a mapping: any file GDAL reads (a .gpkg, .geojson, .kml, "
                     ".csv ...) or a .zip of such files (shapefiles, CSVs)."},
            "mapping": {"type": "string", "format": "binary", "description":
                        "Optional: a mapping file (TOML, the format of `netgis import "
                        "SOURCE --mapping`, docs/interop.md) that maps the file's layers, "
                        "fields and codes into the data model. Problems name the source "
                        "layer, feature and field."},
        },
    }}}}}


@router.post(
    "/import", response_model=ImportResult, summary="Load a dataset file",
    dependencies=[Depends(require_api_key), Depends(check_upload_length)],
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
    openapi_extra=_UPLOAD_BODY,
)
async def import_dataset(
    request: Request, repo: RepoDep, settings: SettingsDep, writer: WriterDep,
    mode: Annotated[WriteMode, Query(
        description="insert: every id must be new; upsert: existing ids are replaced; "
                    "replace: the file's dataset takes the place of everything stored "
                    "(one change).")] = "insert",
) -> ImportResult:
    """Validate the uploaded dataset by the contract and store it, all or nothing.

    With a ``mapping`` part, the file is any GIS source (or a zip of several) read
    through that mapping file, as ``netgis import SOURCE --mapping`` reads it.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ApiError(415, f"unsupported media type {media_type or '(none)'!r}; send "
                       "multipart/form-data with a 'file' part")
    with tempfile.TemporaryDirectory(prefix=f"{UPLOAD_PREFIX}{os.getpid()}-") as tmp:
        async with request.form(max_files=2, max_fields=10) as form:
            mapping = await _mapping_of(form.get("mapping"))
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(422, "the form has no 'file' part",
                               [Problem("body", None, "file", "a file part is required")])
            # saved under the client's own name, so that messages about it name that file
            client_name = safe_filename(upload.filename, "upload")
            names = UploadNames(Path(tmp))
            (Path(tmp) / "upload").mkdir()
            target = Path(tmp) / "upload" / client_name
            names.add(target, client_name)
            names.add(target.with_name(client_name + ".gpkg"), client_name)
            names.add_folder(Path(tmp) / "unzipped", client_name)
            size = 0
            with target.open("wb") as out:
                while chunk := await upload.read(_CHUNK):
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        raise ApiError(413, f"the upload is larger than "
                                       f"{settings.max_upload_bytes} bytes")
                    out.write(chunk)
        with names.client_errors():
            if mapping is None:
                dataset_kind(target)  # a 415 needs no process
            # reading runs in a child process under limits, with only the GDAL drivers of
            # the formats netgis reads; it is killed when the client goes away
            try:
                dataset = await run_isolated(
                    "netgis.io.uploads:read_upload", (target, settings.max_upload_bytes, mapping),
                    work=Path(tmp) / "isolated", limits=settings.import_limits(),
                    stop=request.is_disconnected)
            except Stopped:
                raise ApiError(400, "the client closed the connection: the import was "
                               "stopped") from None
        # the version the load made, not the one read afterwards (another write may follow)
        counts, version = await run_in_threadpool(_store, repo, dataset, mode, writer.name)
    return ImportResult(mode=mode, counts=counts, data_version=version)


async def _mapping_of(part: UploadFile | str | None) -> Mapping | None:
    """The mapping form part (a file or a text field), parsed; None when not sent."""
    if part is None:
        return None
    if isinstance(part, UploadFile):
        raw = await part.read(_MAX_MAPPING_BYTES + 1)
    else:
        raw = part.encode("utf-8")
    if len(raw) > _MAX_MAPPING_BYTES:
        raise ApiError(413, f"the mapping is larger than {_MAX_MAPPING_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "the mapping is not UTF-8 text",
                       [Problem("mapping", None, None, "not UTF-8")]) from None
    return parse_mapping(text)


def _store(repo: Repository, dataset: Dataset, mode: WriteMode,
           actor: str) -> tuple[dict[str, int], int]:
    """Load ``dataset``; the features per layer and the data version the load made."""
    loaded = repo.load_dataset(dataset, mode=mode, actor=actor, action="import")
    return ({name: len(frame) for name, frame in dataset.layers().items()},
            loaded.data_version)


def sweep_abandoned_uploads(folder: Path | None = None) -> list[Path]:
    """Remove the upload folders of servers that no longer run; the folders removed.

    A folder is named after the process that made it (:data:`UPLOAD_PREFIX` and its id),
    so the folders of other servers running on the host, and of this one, stay.
    """
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}*-*"):
        pid = path.name[len(UPLOAD_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir() or _running(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True
