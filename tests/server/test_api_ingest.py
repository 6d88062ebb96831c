"""POST /api/ingest: files streamed into the repository and ingested with QC into a dataset;
untrusted names, non-images, empty, oversized and truncated uploads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantscope.server._upload import safe_filename


def _tiff(seed: int = 0, shape: tuple[int, int] = (96, 96)) -> bytes:
    import tifffile

    rng = np.random.default_rng(seed)
    img = (rng.random(shape) * 800 + 100).astype("uint16")
    img[30:50, 30:50] += 2000  # an object, so QC has something to measure
    buf = io.BytesIO()
    tifffile.imwrite(buf, img)
    return buf.getvalue()


@pytest.fixture
def writer(served_copy: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    app = create_app(served_copy)
    with TestClient(app) as c:
        yield c
    app.state.quantscope.repo.close()


def _images(client: Any) -> int:
    return len(client.app.state.quantscope.repo.images.all())


def test_upload_ingests_with_qc_into_dataset(writer, served_copy: Path) -> None:
    before = _images(writer)
    files = [
        ("files", ("cells one.tif", _tiff(1), "image/tiff")),
        ("files", ("cells-two.tif", _tiff(2), "image/tiff")),
    ]
    r = writer.post("/api/ingest", files=files, data={"dataset": "uploads"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["ok"] is True and rep["failed"] == [] and rep["dataset"] == "uploads"
    assert len(rep["added"]) == 2 and rep["added_to_dataset"] == 2
    assert {a["source"] for a in rep["added"]} == {"cells one.tif", "cells-two.tif"}
    assert set(rep["qc"]) == {a["id"] for a in rep["added"]}  # QC ran on the new images
    assert set(rep["qc"].values()) <= {"pass", "warn", "fail"}
    repo = writer.app.state.quantscope.repo
    assert _images(writer) == before + 2
    ds = {d.name: d.images for d in repo.annotations.datasets()}
    assert ds["uploads"] == 2
    # the upload folder is gone; the stored images are readable OME-Zarr
    assert not (served_copy / ".quantscope.uploads").exists()
    for img in repo.images.all([a["id"] for a in rep["added"]]):
        assert (served_copy / img.store_path / "zarr.json").is_file()
    # the same bytes again: skipped, one line each, nothing added
    r = writer.post("/api/ingest", files=files[:1], data={"dataset": "uploads"})
    rep = r.json()
    assert rep["added"] == [] and len(rep["skipped"]) == 1
    assert "already ingested" in rep["skipped"][0]["message"]


def test_traversal_names_and_non_images(writer, served_copy: Path, tmp_path: Path) -> None:
    outside = served_copy.parent
    before = sorted(p.name for p in outside.iterdir())
    files = [
        ("files", ("../../x.tif", _tiff(3), "image/tiff")),
        ("files", ("/etc/passwd", b"root:x:0:0", "text/plain")),
        ("files", ("..\\..\\win.tif", b"II*\x00garbage", "image/tiff")),
        ("files", ("notes.txt", b"just text", "text/plain")),
    ]
    r = writer.post("/api/ingest", files=files, data={"dataset": "d1"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert [a["source"] for a in rep["added"]] == ["x.tif"]
    failed = {f["path"]: f["message"] for f in rep["failed"]}
    assert set(failed) == {"passwd", "win.tif", "notes.txt"}
    assert "no reader for .txt" in failed["notes.txt"]
    assert "tiff" in failed["win.tif"].lower()
    for path, message in failed.items():
        assert "\n" not in message and str(served_copy) not in message, (path, message)
    assert rep["ok"] is False
    # nothing was written beside the repository, nothing left inside it
    assert sorted(p.name for p in outside.iterdir()) == before
    assert not (served_copy / ".quantscope.uploads").exists()


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../x.tif", "x.tif"),
        ("..", "upload"),
        ("/abs/path/a.ome.tif", "a.ome.tif"),
        ("c:\\dir\\b.tif", "b.tif"),
        (".hidden.tif", "hidden.tif"),
        ("a\x00b\n.tif", "ab.tif"),
        ("%2e%2e/y.tif", "y.tif"),
        ("", "upload"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_bad_uploads(writer, served_copy: Path) -> None:
    before = _images(writer)
    tif = ("files", ("a.tif", _tiff(4), "image/tiff"))
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"data": {"dataset": "d"}}, 400, "multipart"),  # no files at all: not multipart
        ({"files": [("other", ("", b"", "text/plain"))], "data": {"dataset": "d"}}, 400, ""),
        (
            {"files": [("files", ("e.tif", b"", "image/tiff"))], "data": {"dataset": "d"}},
            400,
            "empty",
        ),
        ({"files": [tif]}, 400, "dataset"),
        ({"files": [tif], "data": {"dataset": "   "}}, 400, "dataset"),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 400, "multipart"),
        (
            {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
            400,
            "boundary",
        ),
    ]
    for kwargs, status, words in cases:
        r = writer.post("/api/ingest", **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        assert words in r.json()["error"]["message"], r.json()
    assert _images(writer) == before
    assert not (served_copy / ".quantscope.uploads").exists()


def test_oversized_upload_is_413_and_ingests_nothing(writer, served_copy: Path) -> None:
    before = _images(writer)
    writer.app.state.max_upload_bytes = 10_000
    big = ("files", ("big.tif", _tiff(5, (256, 256)), "image/tiff"))
    r = writer.post("/api/ingest", files=[big], data={"dataset": "d"})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "PayloadTooLarge"
    # without Content-Length (chunked): refused while streaming, at the limit

    def chunks() -> Iterator[bytes]:
        yield b'--XX\r\nContent-Disposition: form-data; name="files"; filename="s.tif"\r\n\r\n'
        for _ in range(100):
            yield b"\0" * 1000

    r = writer.post(
        "/api/ingest",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=XX"},
    )
    assert r.status_code == 413
    assert _images(writer) == before
    assert not (served_copy / ".quantscope.uploads").exists()


def test_truncated_upload_ingests_nothing(writer, served_copy: Path) -> None:
    before = _images(writer)
    data = _tiff(6)
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="dataset"\r\n\r\nd\r\n'
        b'--XX\r\nContent-Disposition: form-data; name="files"; filename="t.tif"\r\n'
        b"Content-Type: image/tiff\r\n\r\n" + data[: len(data) // 2]
    )
    r = writer.post(
        "/api/ingest", content=body, headers={"content-type": "multipart/form-data; boundary=XX"}
    )
    assert r.status_code == 400 and "truncated" in r.json()["error"]["message"]
    assert _images(writer) == before
    assert not (served_copy / ".quantscope.uploads").exists()


def test_anonymous_may_not_upload(served_copy: Path) -> None:
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    with TestClient(create_app(served_copy, single_user=False)) as c:
        r = c.post(
            "/api/ingest",
            files=[("files", ("a.tif", _tiff(7), "image/tiff"))],
            data={"dataset": "d"},
        )
        assert r.status_code == 401
    assert not (served_copy / ".quantscope.uploads").exists()


def test_a_form_parsed_before_the_route(tmp_path: Path) -> None:
    """Where a CSRF check read the multipart form first, the route copies its files in chunks,
    with the same limit and the same safe names."""
    import asyncio

    from starlette.datastructures import FormData, UploadFile

    from quantscope.server._upload import PayloadTooLarge, save_parsed_form

    def form(size: int) -> FormData:
        f = UploadFile(io.BytesIO(b"\1" * size), filename="../../a.tif")
        return FormData([("dataset", "d"), ("files", f)])

    up = asyncio.run(save_parsed_form(form(5000), tmp_path / "u1", limit=10_000))
    assert up.fields == {"dataset": "d"} and up.bytes == 5000
    assert [(c, p.name) for c, p in up.files] == [("../../a.tif", "a.tif")]
    assert up.files[0][1].parent == tmp_path / "u1"
    with pytest.raises(PayloadTooLarge):
        asyncio.run(save_parsed_form(form(20_000), tmp_path / "u2", limit=10_000))
    assert not (tmp_path / "u2").exists()
