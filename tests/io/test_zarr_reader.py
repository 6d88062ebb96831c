"""The direct OME-Zarr plane reader agrees with zarr-python and refuses what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from quantscope.errors import InvalidInput, NotFound
from quantscope.io import ImageSpec, OmeZarrPlanes, UnsupportedLayout, write_image


def _write(path: Path, a: np.ndarray, chunk: int = 1024) -> None:
    write_image(
        path,
        lambda t, c, z, y0, y1: a[t, c, z, y0:y1],
        ImageSpec(shape=a.shape, dtype=a.dtype.name, chunk=chunk),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("shape", "dtype", "chunk"),
    [
        ((1, 2, 1, 700, 1300), "uint16", 256),  # several chunks per plane, ragged edges
        ((2, 1, 40, 5, 7), "uint8", 1024),  # small planes grouped along z
        ((1, 1, 3, 1100, 90), "float32", 512),
    ],
)
def test_planes_equal_zarr_python(
    tmp_path: Path, shape: tuple[int, ...], dtype: str, chunk: int
) -> None:
    rng = np.random.default_rng(1)
    a = (rng.random(shape) * 200).astype(dtype)
    _write(tmp_path / "img.ome.zarr", a, chunk)
    fast = OmeZarrPlanes(tmp_path / "img.ome.zarr")
    g = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="r")
    for level, s in enumerate(fast.shapes):
        ref = g[str(level)][:]
        assert ref.shape == s
        for t in range(s[0]):
            for c in range(s[1]):
                assert np.array_equal(fast.stack(level, c, t), ref[t, c])
                for z in (0, s[2] - 1):
                    assert np.array_equal(fast.plane(level, c, z, t), ref[t, c, z])


def test_missing_chunk_reads_as_fill_value(tmp_path: Path) -> None:
    a = np.full((1, 1, 1, 600, 600), 7, np.uint16)
    _write(tmp_path / "img.ome.zarr", a, 256)
    (tmp_path / "img.ome.zarr" / "0" / "c.0.0.0.1.1").unlink()
    plane = OmeZarrPlanes(tmp_path / "img.ome.zarr").plane(0, 0, 0)
    assert (plane[256:512, 256:512] == 0).all() and (plane[:256] == 7).all()


def test_unsupported_layouts_and_missing_stores(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        OmeZarrPlanes(tmp_path / "nothing.ome.zarr")
    a = np.zeros((1, 1, 1, 8, 8), np.uint16)
    _write(tmp_path / "img.ome.zarr", a)
    doc = json.loads((tmp_path / "img.ome.zarr" / "0" / "zarr.json").read_text())
    doc["codecs"] = [{"name": "sharding_indexed", "configuration": {}}]
    (tmp_path / "img.ome.zarr" / "0" / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(UnsupportedLayout):
        OmeZarrPlanes(tmp_path / "img.ome.zarr")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "zarr.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        OmeZarrPlanes(tmp_path / "bad")


def test_stored_image_falls_back_to_zarr_python(tmp_path: Path) -> None:
    # a sharded array written by zarr-python: not a layout the direct reader handles
    from quantscope.qc._measure import StoredImage, _ZarrPlanes

    root = zarr.open_group(str(tmp_path / "yx.ome.zarr"), mode="w", zarr_format=3)
    arr = root.create_array(
        "0",
        shape=(1, 1, 1, 30, 40),
        dtype="uint16",
        chunks=(1, 1, 1, 8, 8),
        shards=(1, 1, 1, 16, 16),
    )
    data = np.arange(1200, dtype=np.uint16).reshape(1, 1, 1, 30, 40)
    arr[:] = data
    axes = [{"name": n, "type": "space"} for n in ("t", "c", "z", "y", "x")]
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": axes,
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [{"type": "scale", "scale": [1] * 5}],
                    }
                ],
            }
        ],
    }
    stored = StoredImage.open(tmp_path / "yx.ome.zarr")
    assert isinstance(stored._reader, _ZarrPlanes)
    assert stored.shapes == [(1, 1, 1, 30, 40)]
    assert np.array_equal(stored.plane(0, 0, 0), data[0, 0, 0])
