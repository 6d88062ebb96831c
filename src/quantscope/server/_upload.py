"""Multipart uploads streamed to a folder on disk, chunk by chunk, with a size limit.

Starlette's ``request.form()`` spools files to the system's temporary folder and sets no limit
on their total size; an upload to a repository goes to a folder inside it instead (the same
file system: no copy across disks), and the request is refused (413) as soon as it passes the
limit. The client's file names are reduced to a plain name (no folders, no ``..``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidInput, PayloadTooLarge

__all__ = [
    "PayloadTooLarge",
    "Upload",
    "receive_multipart",
    "remove_folder",
    "safe_filename",
    "save_parsed_form",
]

_MAX_FIELD = 4096  # bytes of a plain form field
_MAX_FILES = 10_000


@dataclass
class Upload:
    """What a multipart request carried: its files (saved under ``folder``) and fields."""

    folder: Path
    files: list[tuple[str, Path]] = field(default_factory=list)  # (client's name, saved file)
    fields: dict[str, str] = field(default_factory=dict)
    bytes: int = 0


_UNSAFE = re.compile(r"[^\w.\- ()+,@=]+", re.UNICODE)


def safe_filename(name: str) -> str:
    """A client's file name as a plain name: the last component of any path (``/`` or ``\\``),
    control and shell-special characters replaced, no leading dots (so never ``..``), at most
    200 characters; ``"upload"`` where nothing is left."""
    name = unicodedata.normalize("NFC", str(name))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else name[:200]
    return name or "upload"


def _unique(folder: Path, name: str) -> Path:
    path = folder / name
    n = 1
    while path.exists():
        stem, dot, ext = name.partition(".")
        path = folder / f"{stem}-{n}{dot}{ext}"
        n += 1
    return path


class _Parser:
    """Callbacks of :class:`python_multipart.multipart.MultipartParser`."""

    def __init__(self, upload: Upload, limit: int) -> None:
        self.upload = upload
        self.limit = limit
        self.headers: dict[bytes, bytes] = {}
        self.header_field = b""
        self.header_value = b""
        self.out: IO[bytes] | None = None
        self.field_name: str | None = None
        self.field_data = bytearray()
        self.ended = False

    def on_part_begin(self) -> None:
        self.headers = {}
        self.out = None
        self.field_name = None
        self.field_data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition = self.headers.get(b"content-disposition")
        if disposition is None:
            raise InvalidInput("upload: a part without a Content-Disposition header")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if len(self.upload.files) >= _MAX_FILES:
                raise InvalidInput(f"upload: more than {_MAX_FILES} files in one request")
            client = options[b"filename"].decode("utf-8", "replace")
            path = _unique(self.upload.folder, safe_filename(client))
            self.out = open(path, "xb")  # noqa: SIM115 (closed in on_part_end or by cleanup)
            self.upload.files.append((client, path))
        else:
            self.field_name = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        self.upload.bytes += n
        if self.upload.bytes > self.limit:
            raise PayloadTooLarge(
                f"upload: over the server's limit of {self.limit} bytes; send fewer or smaller "
                "files per request"
            )
        if self.out is not None:
            self.out.write(data[start:end])
        else:
            self.field_data += data[start:end]
            if len(self.field_data) > _MAX_FIELD:
                raise InvalidInput(f"upload: field {self.field_name!r} over {_MAX_FIELD} bytes")

    def on_part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        elif self.field_name is not None:
            self.upload.fields[self.field_name] = self.field_data.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


def _boundary(content_type: str) -> bytes:
    from python_multipart.multipart import parse_options_header

    ctype, options = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise InvalidInput(
            "upload: send multipart/form-data (files in 'files', the dataset in 'dataset')"
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("upload: multipart/form-data without a boundary")
    return boundary


async def receive_multipart(
    content_type: str,
    content_length: str | None,
    stream: AsyncIterator[bytes],
    folder: Path,
    *,
    limit: int,
) -> Upload:
    """Stream a multipart body into ``folder`` (created; removed again on any failure).

    Raises
    ------
    PayloadTooLarge
        The body (announced, or as received) is over ``limit`` bytes.
    InvalidInput
        Not multipart, malformed, or truncated (the client stopped before the final boundary).
    """
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser
    from starlette.requests import ClientDisconnect

    boundary = _boundary(content_type)
    if content_length is not None:
        try:
            announced = int(content_length)
        except ValueError:
            raise InvalidInput("upload: bad Content-Length") from None
        if announced > limit + 64 * 1024:  # the multipart framing around the files
            raise PayloadTooLarge(f"upload: {announced} bytes is over the limit of {limit} bytes")
    folder.mkdir(parents=True)
    upload = Upload(folder)
    parser = _Parser(upload, limit)
    callbacks: Any = {
        k: getattr(parser, k)
        for k in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_end",
        )
    }
    mp = MultipartParser(boundary, callbacks)
    try:
        async for chunk in stream:
            if chunk:
                mp.write(chunk)
        mp.finalize()
        if not parser.ended:
            raise InvalidInput("upload: truncated (the body ends before its final boundary)")
    except ClientDisconnect:
        parser.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise InvalidInput("upload: the client disconnected before the end") from None
    except FormParserError as e:
        parser.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise InvalidInput(f"upload: malformed multipart body ({e})") from None
    except BaseException:
        parser.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return upload


async def save_parsed_form(form: Any, folder: Path, *, limit: int) -> Upload:
    """An :class:`Upload` from a form Starlette already parsed (a middleware or dependency read
    the body first, e.g. to find a CSRF field): its files copied into ``folder`` in chunks,
    with the same limit and names as :func:`receive_multipart`."""
    folder.mkdir(parents=True)
    upload = Upload(folder)
    try:
        for key, value in form.multi_items():
            if isinstance(value, str):
                upload.fields[key] = value[:_MAX_FIELD]
                continue
            path = _unique(folder, safe_filename(value.filename or ""))
            with open(path, "xb") as out:
                while chunk := await value.read(1 << 20):
                    upload.bytes += len(chunk)
                    if upload.bytes > limit:
                        raise PayloadTooLarge(
                            f"upload: over the server's limit of {limit} bytes; send fewer or "
                            "smaller files per request"
                        )
                    out.write(chunk)
            upload.files.append((value.filename or "", path))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return upload


def remove_folder(folder: Path) -> None:
    """Remove an upload folder (and an empty parent ``.quantscope.uploads``)."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(folder.parent)
