"""``/zarr/``: the store read over HTTP from a real ``quantscope serve`` process by the
ecosystem's own readers (zarr-python over fsspec HTTP, ome-zarr-py), pixel-equal to the local
store; ranges, ETags, HEAD; and path traversal attacks (raw requests, nothing normalized)."""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import zarr


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def raw(
    base: str, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with ``path`` sent byte for byte (no client-side normalization)."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture
def record(live_server: str) -> dict[str, Any]:
    items = get_json(live_server + "/api/images")["items"]
    return dict(get_json(live_server + f"/api/images/{items[0]['id']}"))


def test_zarr_python_reads_the_image_and_its_labels_over_http(
    record: dict[str, Any], live_server: str, served_root: Path
) -> None:
    url = record["zarr_url"]
    assert url.startswith(live_server + "/zarr/")
    local = zarr.open_group(str(served_root / record["store_path"]), mode="r")
    remote = zarr.open_group(url, mode="r")
    assert dict(remote.attrs) == dict(local.attrs)
    a = np.asarray(remote["0"][:])
    assert a.shape == (1, 2, 1, 256, 256) and a.dtype == np.uint16
    assert np.array_equal(a, np.asarray(local["0"][:]))
    name = record["labels"][0]
    assert dict(zarr.open_group(url + "/labels", mode="r").attrs)["ome"]["labels"] == [name]
    rl = np.asarray(zarr.open_group(f"{url}/labels/{name}", mode="r")["0"][:])
    ll = np.asarray(
        zarr.open_group(str(served_root / record["store_path"] / "labels" / name), mode="r")["0"][:]
    )
    assert rl.max() > 3 and np.array_equal(rl, ll)


def test_ome_zarr_reads_image_labels_and_plate_over_http(
    record: dict[str, Any], served_root: Path
) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Plate, Reader

    def nodes(where: str) -> list[Any]:
        loc = parse_url(where)
        assert loc is not None, where
        return list(Reader(loc)())

    remote = nodes(record["zarr_url"])
    local = nodes(str(served_root / record["store_path"]))
    assert any(isinstance(s, Multiscales) for s in remote[0].specs)
    assert len(remote) == len(local) == 3  # image, labels group, the label image
    for r, lo in zip(remote, local, strict=True):
        assert len(r.data) == len(lo.data)
        for a, b in zip(r.data, lo.data, strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b))
    assert any(isinstance(s, Label) for s in remote[2].specs)
    plate_r = nodes(record["plate_zarr_url"])[0]
    plate_l = nodes(str(served_root / "plates" / "synth.ome.zarr"))[0]
    assert any(isinstance(s, Plate) for s in plate_r.specs)
    whole = np.asarray(plate_r.data[0])
    assert whole.shape == (1, 2, 1, 512, 512)  # 2x2 wells of 256 px
    assert np.array_equal(whole, np.asarray(plate_l.data[0]))


def test_range_etag_and_head(record: dict[str, Any], live_server: str, served_root: Path) -> None:
    files = {p: (n, h) for _, p, n, h in _stored(served_root, record["id"])}
    chunk = next(p for p in files if "/0/c." in p)
    path = "/zarr/" + chunk
    body = (served_root / chunk).read_bytes()
    status, head, data = raw(live_server, path)
    assert status == 200 and data == body
    assert head["etag"] == f'"{files[chunk][1]}"'  # the SHA-256 recorded at ingest
    assert head["content-type"] == "application/octet-stream"
    assert "max-age" in head["cache-control"] and head["accept-ranges"] == "bytes"
    status, h2, data = raw(live_server, path, headers={"Range": "bytes=10-19"})
    assert status == 206 and data == body[10:20]
    assert h2["content-range"] == f"bytes 10-19/{len(body)}"
    status, h2, data = raw(live_server, path, headers={"Range": "bytes=-7"})
    assert status == 206 and data == body[-7:]
    status, h2, data = raw(live_server, path, headers={"Range": f"bytes={len(body) - 3}-"})
    assert status == 206 and data == body[-3:]
    status, h2, data = raw(live_server, path, headers={"Range": "bytes=5-999999999"})
    assert status == 206 and data == body[5:]
    for bad in (f"bytes={len(body)}-", "bytes=9-3", "bytes=-0", "bytes=abc", "bytes=1-2,4-5"):
        status, h2, _ = raw(live_server, path, headers={"Range": bad})
        assert status == 416, bad
        assert h2["content-range"] == f"bytes */{len(body)}"
    status, h2, data = raw(live_server, path, headers={"If-None-Match": head["etag"]})
    assert status == 304 and data == b""
    status, h2, data = raw(live_server, path, method="HEAD")
    assert status == 200 and data == b"" and h2["content-length"] == str(len(body))
    status, h2, data = raw(live_server, "/zarr/" + record["store_path"] + "/zarr.json")
    assert status == 200 and h2["content-type"] == "application/json"
    assert json.loads(data)["attributes"]["ome"]["multiscales"]


def _stored(root: Path, image_id: str) -> list[tuple[str, str, int, str]]:
    from quantscope.catalog import Repository

    with Repository.open(root) as repo:
        return repo.images.stored_files(image_id)


ATTACKS = [
    "/zarr/../catalog.sqlite",
    "/zarr/plates/../catalog.sqlite",
    "/zarr/plates/%2e%2e/catalog.sqlite",
    "/zarr/plates/%2E%2E/quantscope.toml",
    "/zarr/plates/.%2e/.%2e/.%2e/etc/passwd",
    "/zarr/plates%2f..%2fcatalog.sqlite",
    "/zarr/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/zarr//etc/passwd",
    "/zarr/%2fetc%2fpasswd",
    "/zarr/plates/..\\catalog.sqlite",
    "/zarr/plates%5c..%5ccatalog.sqlite",
    "/zarr/plates/synth.ome.zarr/%00",
    "/zarr/plates/synth.ome.zarr/zarr.json%00.png",
    "/zarr/catalog.sqlite",
    "/zarr/quantscope.toml",
    "/zarr/tables",
    "/zarr/plates/./synth.ome.zarr/zarr.json",
    "/zarr/plates/synth.ome.zarr",
    "/zarr/plates/synth.ome.zarr/",
    "/zarr/plates/synth.ome.zarr/A/01/0/link-out",
    "/zarr/plates/synth.ome.zarr/A/01/0/dir-out/passwd",
    "/zarr/images/../../../../../../etc/passwd",
    "/zarr/C:/Windows/win.ini",
    "/zarr/plates/%252e%252e/catalog.sqlite",
]


def test_traversal_attacks_are_404(served_copy: Path, serve_process: Callable[..., str]) -> None:
    well = served_copy / "plates" / "synth.ome.zarr" / "A" / "01" / "0"
    (well / "link-out").symlink_to(served_copy / "catalog.sqlite")
    (well / "dir-out").symlink_to("/etc")
    base = serve_process(served_copy)
    secret = (served_copy / "catalog.sqlite").read_bytes()[:16]
    for attack in ATTACKS:
        status, _, data = raw(base, attack)
        assert status in (400, 404), (attack, status)
        assert secret not in data and b"root:" not in data, attack
    ok, _, _ = raw(base, "/zarr/plates/synth.ome.zarr/zarr.json")
    assert ok == 200


def test_anonymous_callers_read_nothing(served_root: Path) -> None:
    # a server that treats callers as anonymous (a repository with users, nobody signed in)
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    app = create_app(served_root, single_user=False)
    with TestClient(app) as c:
        for p in (
            "plates/synth.ome.zarr/zarr.json",
            "plates/synth.ome.zarr/A/01/0/zarr.json",
            "plates/synth.ome.zarr/A/zarr.json",
        ):
            assert c.get("/zarr/" + p).status_code == 404, p
    app.state.quantscope.repo.close()


def test_concurrent_first_requests_all_find_their_image(
    served_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh server's index is read once while the other first requests wait for it: none
    may answer 404 (to a Zarr reader a 404 chunk is silently a chunk of fill values)."""
    import threading
    import time

    from quantscope.catalog import Repository
    from quantscope.server._zarr import StoreIndex

    with Repository.open(served_root) as repo:
        sp = next(iter(repo.images.store_paths().items()))
        real = repo.images.store_paths

        def slow() -> dict[str, str]:
            time.sleep(0.3)
            return real()

        monkeypatch.setattr(repo.images, "store_paths", slow)
        idx = StoreIndex(repo)
        parts = (sp[1] + "/0/zarr.json").split("/")
        got: list[object] = []
        threads = [threading.Thread(target=lambda: got.append(idx.owner(parts))) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == [("image", sp[0])] * 8


class _FakeImages:
    def __init__(self, paths: dict[str, str]) -> None:
        self.paths = paths

    def store_paths(self) -> dict[str, str]:
        return dict(self.paths)


class _FakeRepo:
    def __init__(self, paths: dict[str, str]) -> None:
        self.images = _FakeImages(paths)


def own(idx: Any, path: str) -> Any:
    return idx.owner(path.split("/"))


def test_store_index_owners() -> None:
    from quantscope.server._zarr import StoreIndex

    repo = _FakeRepo(
        {
            "a1": "images/a1.ome.zarr",
            "p1": "plates/P.ome.zarr/A/01/0",
            "p2": "plates/P.ome.zarr/A/01/1",
            "q1": "plates/Q.ome.zarr/B/03/0",
        }
    )
    idx = StoreIndex(repo)  # type: ignore[arg-type]
    assert own(idx, "images/a1.ome.zarr/0/c.0.0.0.0.0") == ("image", "a1")
    assert own(idx, "images/a1.ome.zarr/zarr.json") == ("image", "a1")
    assert own(idx, "plates/P.ome.zarr/A/01/1/labels/x/zarr.json") == ("image", "p2")
    assert own(idx, "plates/P.ome.zarr/A/01/zarr.json") == ("plate", ["p1", "p2"])
    assert own(idx, "plates/P.ome.zarr/zarr.json") == ("plate", ["p1", "p2"])
    assert own(idx, "plates/Q.ome.zarr/B/zarr.json") == ("plate", ["q1"])
    assert own(idx, "images/a2.ome.zarr/zarr.json") is None
    assert own(idx, "images/a1.ome.zarr2/zarr.json") is None  # no prefix match
    assert own(idx, "plates/R.ome.zarr/zarr.json") is None
    repo.images.paths["a2"] = "images/a2.ome.zarr"  # a new image: found after a reread
    idx.refresh(force=True)
    assert own(idx, "images/a2.ome.zarr/zarr.json") == ("image", "a2")


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=2-5", 10, (2, 6)),
        ("bytes=2-", 10, (2, 10)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=5-100", 10, (5, 10)),
        ("Bytes= 1-2", 10, (1, 3)),
        ("items=0-5", 10, None),  # another unit: ignored (the whole file)
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    from quantscope.server._zarr import parse_range

    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=10-",
        "bytes=5-4",
        "bytes=-0",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=1-2,3-4",
        "bytes=0-1x",
    ],
)
def test_parse_range_refuses(header: str) -> None:
    from quantscope.errors import InvalidInput
    from quantscope.server._zarr import parse_range

    with pytest.raises(InvalidInput, match="Range"):
        parse_range(header, 10)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "plates/../x",
        "plates/./x",
        "plates//x",
        "tables/x.parquet",
        "catalog.sqlite",
        "plates\\x",
        "plates/x\x00",
        "plates/C:x",
        "plates/x\n",
    ],
)
def test_safe_parts_refuses(path: str) -> None:
    from quantscope.errors import NotFound
    from quantscope.server._zarr import safe_parts

    with pytest.raises(NotFound):
        safe_parts(path)
