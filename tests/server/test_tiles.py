"""Tiles, thumbnails, label tiles and object crops: their pixels against the stored arrays
(read with zarr-python, rendered here independently), contrast and channel parameters, ETags,
and every bad coordinate answering 4xx JSON (never 500)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from PIL import Image as PILImage

from quantscope.io import ChannelDisplay, ImageSpec, write_image
from quantscope.server import _render

SHAPE = (2, 3, 2, 1100, 700)  # t, c, z, y, x: 3 levels, edge tiles on both axes


def png(data: bytes) -> np.ndarray:
    im = PILImage.open(io.BytesIO(data))
    assert im.format == "PNG"
    return np.asarray(im)


def expected(
    planes: list[np.ndarray], colors: list[tuple[int, int, int]], windows: list[tuple[float, float]]
) -> np.ndarray:
    """The additive composite, computed independently of quantscope (float64)."""
    acc = np.zeros((*planes[0].shape, 3))
    for p, col, (lo, hi) in zip(planes, colors, windows, strict=True):
        s = np.clip((p.astype(np.float64) - lo) / (hi - lo), 0, 1)
        acc += s[..., None] * np.asarray(col, dtype=np.float64)
    return np.clip(np.rint(acc), 0, 255).astype(np.uint8)


def close(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-level (t, c, z, y, x) image with 256-px chunks (windows cross chunk borders)."""
    rng = np.random.default_rng(7)
    data = rng.integers(0, 4000, size=SHAPE, dtype=np.uint16)
    dest = tmp_path_factory.mktemp("big") / "img.ome.zarr"
    spec = ImageSpec(
        shape=SHAPE,
        dtype="uint16",
        channels=(
            ChannelDisplay("DAPI", "0000FF"),
            ChannelDisplay("GFP", "00FF00"),
            ChannelDisplay("Cy5", "FF0000"),
        ),
        chunk=256,
    )
    write_image(dest, lambda t, c, z, y0, y1: data[t, c, z, y0:y1], spec)
    return dest


def omero(path: Path) -> list[dict[str, Any]]:
    doc = json.loads((path / "zarr.json").read_text())
    return list(doc["attributes"]["ome"]["omero"]["channels"])


def color(hexa: str) -> tuple[int, int, int]:
    v = int(hexa, 16)
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def test_open_image_reads_levels_scales_and_omero(big: Path) -> None:
    img = _render.open_image(big)
    assert img.shapes[0] == SHAPE and len(img.shapes) == 3
    assert img.shapes[2][3:] == (275, 175)
    assert [c["label"] for c in img.omero] == ["DAPI", "GFP", "Cy5"]
    assert _render.open_image(big) is img  # cached while the files are unchanged


@pytest.mark.parametrize(
    ("level", "z", "y", "x", "t"),
    [(0, 0, 0, 0, 0), (0, 1, 4, 2, 1), (1, 1, 2, 1, 0), (2, 0, 1, 0, 1)],
)
def test_tile_pixels_equal_the_stored_array(
    big: Path, level: int, z: int, y: int, x: int, t: int
) -> None:
    img = _render.open_image(big)
    arr = zarr.open_group(str(big), mode="r")[str(level)]
    ny, nx = arr.shape[3:]
    ys = slice(y * 256, min(ny, (y + 1) * 256))
    xs = slice(x * 256, min(nx, (x + 1) * 256))
    styles = _render.parse_styles(img)  # all three channels active, omero windows
    got = png(_render.tile_png(img, level, z, y, x, t, styles))
    om = omero(big)
    planes = [np.asarray(arr[t, c, z, ys, xs]) for c in range(3)]
    want = expected(
        planes,
        [color(c["color"]) for c in om],
        [(c["window"]["start"], c["window"]["end"]) for c in om],
    )
    close(got, want)
    if (y + 1) * 256 > ny or (x + 1) * 256 > nx:
        assert got.shape[:2] != (256, 256)  # edge tiles are cropped, not padded


def test_min_max_and_channel_choice(big: Path) -> None:
    img = _render.open_image(big)
    arr = np.asarray(zarr.open_group(str(big), mode="r")["0"][0, :, 0, :256, :256])
    styles = _render.parse_styles(img, "1", "100", "1100")
    got = png(_render.tile_png(img, 0, 0, 0, 0, 0, styles))
    close(got, expected([arr[1]], [(0, 255, 0)], [(100.0, 1100.0)]))
    assert got[..., 0].max() == 0 and got[..., 2].max() == 0  # only GFP: green
    # two channels with their own windows, in the order given
    styles = _render.parse_styles(img, "2,0", "0,50", "2000,3000")
    got = png(_render.tile_png(img, 0, 0, 0, 0, 0, styles))
    close(got, expected([arr[2], arr[0]], [(255, 0, 0), (0, 0, 255)], [(0, 2000), (50, 3000)]))
    assert got[..., 1].max() == 0


@pytest.mark.parametrize(
    ("c", "lo", "hi", "message"),
    [
        ("3", None, None, "c: channel 3"),
        ("-1", None, None, "c: channel -1"),
        ("a", None, None, "c: expected"),
        ("0,0", None, None, "listed twice"),
        ("0,1", "1,2,3", None, "min: 3 values for 2 channels"),
        ("0", "nan", None, "min: 'nan'"),
        ("0", "inf", None, "min: 'inf'"),
        ("0", "10", "5", "max: must be above min"),
        ("0", None, "x", "max: expected"),
    ],
)
def test_bad_style_parameters_are_invalid_input(
    big: Path, c: str, lo: str | None, hi: str | None, message: str
) -> None:
    from quantscope.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        _render.parse_styles(_render.open_image(big), c, lo, hi)


def test_thumbnail_is_small_and_matches_the_coarsest_level(big: Path) -> None:
    img = _render.open_image(big)
    got = png(_render.thumbnail_png(img, _render.parse_styles(img)))
    assert max(got.shape[:2]) <= 256 and got.shape[2] == 3
    arr = zarr.open_group(str(big), mode="r")["2"]
    om = omero(big)
    planes = [np.asarray(arr[0, c, 1, ::2, ::2]) for c in range(3)]  # middle z of 2 = 1
    close(
        got,
        expected(
            planes,
            [color(c["color"]) for c in om],
            [(c["window"]["start"], c["window"]["end"]) for c in om],
        ),
    )


def test_a_rewritten_image_is_reopened(tmp_path: Path) -> None:
    dest = tmp_path / "a.ome.zarr"
    spec = ImageSpec(shape=(1, 1, 1, 64, 64), dtype="uint8")
    write_image(dest, lambda t, c, z, y0, y1: np.full((y1 - y0, 64), 10, np.uint8), spec)
    first = _render.open_image(dest)
    a = first.window(0, 0, 0, 0, (0, 64), (0, 64))
    import shutil

    shutil.rmtree(dest)
    spec2 = ImageSpec(shape=(1, 1, 1, 64, 80), dtype="uint8")
    write_image(dest, lambda t, c, z, y0, y1: np.full((y1 - y0, 80), 99, np.uint8), spec2)
    second = _render.open_image(dest)
    assert second is not first and second.shapes[0][4] == 80
    assert a.max() == 10 and second.window(0, 0, 0, 0, (0, 64), (0, 64)).max() == 99


# ----------------------------------------------------------------------- over HTTP (served)


@pytest.fixture(scope="module")
def image(served_root: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    with TestClient(create_app(served_root)) as c:
        items = c.get("/api/images").json()["items"]
        return dict(c.get(f"/api/images/{items[0]['id']}").json())


def stored(served_root: Path, image: dict[str, Any], sub: str = "") -> Any:
    return zarr.open_group(str(served_root / image["path"] / sub), mode="r")


def test_tile_route_equals_the_stored_pixels(
    client: Any, image: dict[str, Any], served_root: Path
) -> None:
    r = client.get(f"/api/images/{image['id']}/tiles/0/0/0/0.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    arr = np.asarray(stored(served_root, image)["0"][0, :, 0])
    wins = [(c["window"]["start"], c["window"]["end"]) for c in image["channels"]]
    close(png(r.content), expected(list(arr), [color(c["color"]) for c in image["channels"]], wins))
    # channel toggle: DAPI only, a window of our own
    r = client.get(f"/api/images/{image['id']}/tiles/0/0/0/0.png?c=0&min=0&max=500")
    close(png(r.content), expected([arr[0]], [color(image["channels"][0]["color"])], [(0, 500)]))


def test_etag_and_not_modified(client: Any, image: dict[str, Any]) -> None:
    url = f"/api/images/{image['id']}/tiles/0/0/0/0.png"
    r = client.get(url)
    etag = r.headers["etag"]
    assert "max-age" in r.headers["cache-control"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(url + "?c=1")
    assert other.headers["etag"] != etag  # other parameters, another picture
    assert client.get(url, headers={"If-None-Match": '"nope"'}).status_code == 200


def test_thumbnail_route(client: Any, image: dict[str, Any]) -> None:
    r = client.get(image["thumbnail_url"])
    assert r.status_code == 200
    got = png(r.content)
    assert got.shape == (256, 256, 3) and got.max() > 0


def test_label_tile_colours_each_object_and_clears_the_background(
    client: Any, image: dict[str, Any], served_root: Path
) -> None:
    name = image["labels"][0]
    r = client.get(f"/api/images/{image['id']}/labels/{name}/tiles/0/0/0/0.png")
    assert r.status_code == 200
    got = png(r.content)
    assert got.shape == (256, 256, 4)
    lab = np.asarray(stored(served_root, image, f"labels/{name}")["0"][0, 0, 0])
    assert np.array_equal(got[..., 3] == 0, lab == 0)
    values = [v for v in np.unique(lab) if v]
    assert len(values) > 3
    colours = {tuple(got[lab == v][0][:3]) for v in values}
    assert len(colours) == len(values)  # a colour per object
    for v in values:  # one colour over each object
        assert len(np.unique(got[lab == v], axis=0)) == 1
    short = name.rsplit("-", 1)[0]  # "Nuclei": the unique label image of that name
    assert (
        client.get(f"/api/images/{image['id']}/labels/{short}/tiles/0/0/0/0.png").content
        == r.content
    )


def test_object_crop_outlines_the_object(
    client: Any, image: dict[str, Any], served_root: Path
) -> None:
    name = image["labels"][0]
    lab = np.asarray(stored(served_root, image, f"labels/{name}")["0"][0, 0, 0])
    v = int(np.unique(lab)[len(np.unique(lab)) // 2])
    ys, xs = np.nonzero(lab == v)
    r = client.get(f"/api/images/{image['id']}/objects/{v}/crop.png?labels={name}")
    assert r.status_code == 200
    got = png(r.content)
    y0, y1 = max(0, ys.min() - 16), min(256, ys.max() + 1 + 16)
    x0, x1 = max(0, xs.min() - 16), min(256, xs.max() + 1 + 16)
    assert got.shape == (y1 - y0, x1 - x0, 3)
    yellow = np.all(got == (255, 255, 0), axis=-1)
    inside = lab[y0:y1, x0:x1] == v
    assert yellow.any() and np.all(inside[yellow])  # the outline lies on the object
    assert client.get(f"/api/images/{image['id']}/objects/{v}/crop.png").status_code == 200


@pytest.mark.parametrize(
    ("suffix", "status", "names"),
    [
        ("tiles/1/0/0/0.png", 404, "level 1"),
        ("tiles/-1/0/0/0.png", 404, "level -1"),
        ("tiles/0/1/0/0.png", 404, "z 1"),
        ("tiles/0/0/1/0.png", 404, "tile y 1"),
        ("tiles/0/0/0/1.png", 404, "tile x 1"),
        ("tiles/0/0/0/-5.png", 404, "tile x -5"),
        ("tiles/0/0/0/0.png?t=1", 404, "t 1"),
        ("tiles/0/0/0/0.png?t=-1", 404, "t -1"),
        ("tiles/0/0/0/99999999999999999999999.png", 404, "tile x"),
        ("tiles/0/0/0/x.png", 422, "path.x"),
        ("tiles/0/0/0/0.png?t=a", 422, "query.t"),
        ("tiles/0/0/0/0.png?c=7", 400, "c: channel 7"),
        ("tiles/0/0/0/0.png?c=0&min=1&max=0", 400, "max: must be above min"),
        ("tiles/0/0/0/0.png?min=%00", 400, "min"),
        ("labels/nope/tiles/0/0/0/0.png", 404, "labels 'nope'"),
        ("labels/{label}/tiles/2/0/0/0.png", 404, "level 2"),
        ("labels/{label}/tiles/0/0/0/0.png?t=3", 404, "t 3"),
        ("objects/999999/crop.png?labels={label}", 404, "object 999999"),
        ("objects/0/crop.png?labels={label}", 404, "object 0"),
        ("objects/-4/crop.png?labels={label}", 404, "object -4"),
        ("objects/1/crop.png?labels=nope", 404, "labels 'nope'"),
        ("objects/1/crop.png?labels={label}&z=4", 404, "z 4"),
        ("thumbnail.png?c=9", 400, "c: channel 9"),
    ],
)
def test_bad_coordinates_answer_json_errors(
    client: Any, image: dict[str, Any], suffix: str, status: int, names: str
) -> None:
    url = f"/api/images/{image['id']}/" + suffix.replace("{label}", image["labels"][0])
    r = client.get(url)
    assert r.status_code == status, r.text
    assert names in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/images/nope/tiles/0/0/0/0.png",
        "/api/images/nope/thumbnail.png",
        "/api/images/nope/labels/x/tiles/0/0/0/0.png",
        "/api/images/nope/objects/1/crop.png",
        "/api/images/..%2f..%2fetc/thumbnail.png",
    ],
)
def test_unknown_image_is_404(client: Any, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "NotFound"
