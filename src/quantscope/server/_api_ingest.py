"""``POST /api/ingest``: files uploaded (multipart, streamed to a folder inside the repository,
never held whole in memory) and ingested as ``quantscope ingest`` does it (with QC), the images
added to a dataset the caller may write.

The answer is the ingest report (:meth:`quantscope.ingestion.IngestReport.to_dict`) with the
client's file names in place of the temporary paths, and ``"dataset"``.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..catalog import Principal, Repository
from ..errors import InvalidInput
from ._auth import CSRF, principal
from ._errors import error_response
from ._guard import filter_visible, require_dataset_write, require_user
from ._state import state
from ._upload import (
    PayloadTooLarge,
    Upload,
    receive_multipart,
    remove_folder,
    save_parsed_form,
)

__all__ = ["DEFAULT_MAX_UPLOAD", "UPLOADS_DIR", "max_upload_bytes", "router"]

router = APIRouter(tags=["ingest"])

#: Upload folders live here, relative to the repository root (removed after each request).
UPLOADS_DIR = ".quantscope.uploads"
#: Default limit of one upload request (bytes): ``QUANTSCOPE_MAX_UPLOAD_BYTES`` overrides it.
DEFAULT_MAX_UPLOAD = 4 * 1024**3


def max_upload_bytes(request: Request) -> int:
    """The size limit of one upload: ``app.state.max_upload_bytes``, else the environment's
    ``QUANTSCOPE_MAX_UPLOAD_BYTES``, else :data:`DEFAULT_MAX_UPLOAD`."""
    value = getattr(request.app.state, "max_upload_bytes", None)
    if value is None:
        env = os.environ.get("QUANTSCOPE_MAX_UPLOAD_BYTES")
        value = int(env) if env and env.isdigit() else DEFAULT_MAX_UPLOAD
    return int(value)


def _client_paths(report: dict[str, Any], upload: Upload) -> dict[str, Any]:
    """The report with the upload folder left out of every path: each file by the (safe) name
    it was saved under, never a server path."""
    prefix = str(upload.folder) + os.sep

    def fix(text: str) -> str:
        return text.replace(prefix, "").replace(str(upload.folder), ".")

    for key in ("skipped", "failed", "notes"):
        report[key] = [{"path": fix(i["path"]), "message": fix(i["message"])} for i in report[key]]
    for row in report["added"]:
        for k, v in list(row.items()):
            if isinstance(v, str):
                row[k] = fix(v)
    report["cleaned"] = [c for c in report["cleaned"] if not c.startswith(UPLOADS_DIR)]
    return report


_IDS = re.compile(r"as image ([A-Za-z0-9, ]+)$")


def _hide_unseen(repo: Repository, who: Principal, report: dict[str, Any]) -> None:
    """'already ingested as image X': X only where the caller may see it."""
    for item in report["skipped"]:
        m = _IDS.search(item["message"])
        if m:
            ids = [i.strip() for i in m.group(1).split(",") if i.strip()]
            if len(filter_visible(repo, who, ids)) < len(ids):
                item["message"] = item["message"][: m.start()].rstrip() + " as another image"


def _ingest(repo: Repository, who: Principal, upload: Upload, dataset: str) -> dict[str, Any]:
    from ..ingestion import ingest

    name = dataset.strip()
    new = name not in {d.name for d in repo.annotations.datasets()}
    report = ingest(repo, [path for _, path in upload.files], qc=True)
    ids = [img.id for img in report.added]
    added = repo.annotations.add_to_dataset(name, ids, source=f"user:{who.name}") if ids else 0
    access = getattr(repo, "access", None)  # (the access control of issue 14)
    if ids and new and access is not None and who.user_id is not None:
        access.set_owner(name, who.name)  # a dataset an upload creates is the uploader's
    out = _client_paths(report.to_dict(), upload)
    _hide_unseen(repo, who, out)
    out.update(dataset=name, added_to_dataset=added, files=len(upload.files))
    out["ok"] = report.ok
    return out


_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files", "dataset"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                        "dataset": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post("/api/ingest", dependencies=[CSRF], response_model=None, openapi_extra=_INGEST_BODY)
async def post_ingest(request: Request, who: Principal = Depends(principal)) -> Response:
    """Upload files (multipart: ``files`` parts, ``dataset`` field; or ``?dataset=``) and
    ingest them with QC into that dataset. 413 over the size limit; 400 for an empty,
    malformed or truncated upload (nothing is ingested then)."""
    require_user(who)
    repo = state(request).repo
    early = request.query_params.get("dataset")
    if early is not None:
        require_dataset_write(repo, who, early)
    folder = repo.root / UPLOADS_DIR / uuid.uuid4().hex
    try:
        parsed = getattr(request, "_form", None)  # the body was read already (a CSRF check)
        if parsed is not None:
            upload = await save_parsed_form(parsed, folder, limit=max_upload_bytes(request))
        else:
            upload = await receive_multipart(
                request.headers.get("content-type", ""),
                request.headers.get("content-length"),
                request.stream(),
                folder,
                limit=max_upload_bytes(request),
            )
    except PayloadTooLarge as e:
        remove_folder(folder)
        return error_response(request, 413, "PayloadTooLarge", str(e))
    except BaseException:
        remove_folder(folder)
        raise
    try:
        dataset = upload.fields.get("dataset", early or "")
        if not dataset.strip():
            raise InvalidInput("dataset: name the dataset the images go to (field 'dataset')")
        require_dataset_write(repo, who, dataset)
        if not upload.files:
            raise InvalidInput("upload: no files (send them as multipart parts named 'files')")
        if not any(path.stat().st_size for _, path in upload.files):
            raise InvalidInput("upload: every file is empty")
        out = await run_in_threadpool(_ingest, repo, who, upload, dataset)
    finally:
        remove_folder(folder)
    return JSONResponse(out)
