"""The streaming OME-Zarr writer (`write_image`, `pyramid_shapes`), checked with zarr-python."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from quantscope.io import ChannelDisplay, ImageSpec, WriteResult, pyramid_shapes, write_image
from quantscope.io._zarr_writer import MAX_TOP_LEVEL


def make_array(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


def rows_of(a: np.ndarray):
    def read_rows(t: int, c: int, z: int, y0: int, y1: int) -> np.ndarray:
        return a[t, c, z, y0:y1]

    return read_rows


def write(a: np.ndarray, dest: Path, **kwargs: Any) -> WriteResult:
    spec_kw = {
        k: kwargs.pop(k) for k in ("physical_size", "channels", "chunk", "name") if k in kwargs
    }
    spec = ImageSpec(shape=a.shape, dtype=a.dtype.name, **spec_kw)
    return write_image(dest, rows_of(a), spec, **kwargs)


def read_levels(path: Path) -> list[np.ndarray]:
    group = zarr.open_group(str(path), mode="r")
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    return [np.asarray(group[d["path"]][...]) for d in datasets]


def reference_downsample(a: np.ndarray) -> np.ndarray:
    """2x2 mean over (y, x), floor shape, integers rounded half up: written independently of
    the writer (float64 mean of a reshaped view; exact Python integers for 64-bit integers)."""
    y, x = a.shape[-2:]
    a2 = a[..., : y - y % 2, : x - x % 2]
    if a.dtype.kind in "iu" and a.dtype.itemsize == 8:
        b = a2.astype(object)
        total = b[..., 0::2, 0::2] + b[..., 1::2, 0::2] + b[..., 0::2, 1::2] + b[..., 1::2, 1::2]
        return ((total + 2) // 4).astype(a.dtype)  # floor(mean + 1/2), exactly
    m = a2.astype(np.float64).reshape(*a.shape[:-2], y // 2, 2, x // 2, 2).mean(axis=(-3, -1))
    if a.dtype.kind in "iu":
        return np.floor(m + 0.5).astype(a.dtype)
    return m.astype(a.dtype)


def assert_level_equal(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    # float32 means are summed in float64 and rounded once, so they match the reference exactly;
    # a float64 sum may round differently in the last bit
    if got.dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    else:
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
@pytest.mark.parametrize("shape", [(1, 2, 3, 1031, 517), (2, 1, 1, 1, 700), (1, 1, 1, 5, 3)])
def test_round_trip_exact(tmp_path: Path, dtype: str, shape: tuple[int, ...]) -> None:
    a = make_array(shape, dtype)
    result = write(a, tmp_path / "img.ome.zarr")
    levels = read_levels(tmp_path / "img.ome.zarr")
    assert result.levels == len(levels) == len(pyramid_shapes(shape))
    assert levels[0].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(levels[0], a)
    assert [lv.shape for lv in levels] == pyramid_shapes(shape)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_pyramid_levels_are_rounded_2x2_means(tmp_path: Path, dtype: str) -> None:
    shape = (1, 2, 1, 2111, 1029)  # odd at every level: 2111 -> 1055 -> 527 -> 263
    a = make_array(shape, dtype, seed=1)
    write(a, tmp_path / "img.ome.zarr")
    levels = read_levels(tmp_path / "img.ome.zarr")
    assert [lv.shape[-2:] for lv in levels] == [(2111, 1029), (1055, 514), (527, 257), (263, 128)]
    for k in range(1, len(levels)):
        assert_level_equal(levels[k], reference_downsample(levels[k - 1]))


def test_integer_rounding_is_half_up(tmp_path: Path) -> None:
    # 2x2 blocks with means 0.25, 0.5, 0.75, -0.5 -> 0, 1, 1, 0; then a 513-wide row forces a level
    block = np.array([[0, 0, 0, 1, 1, 1, -1, 0], [0, 1, 0, 1, 1, 0, -1, 0]], dtype=np.int16)
    a = np.zeros((1, 1, 1, 2, 514), dtype=np.int16)
    a[0, 0, 0, :, :8] = block
    write(a, tmp_path / "img.ome.zarr")
    levels = read_levels(tmp_path / "img.ome.zarr")
    assert levels[1][0, 0, 0, 0, :4].tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((1, 1, 1, 512, 512), [(512, 512)]),
        ((1, 1, 1, 513, 10), [(513, 10), (256, 5)]),
        ((1, 1, 1, 4096, 3000), [(4096, 3000), (2048, 1500), (1024, 750), (512, 375)]),
        ((1, 1, 1, 1, 700), [(1, 700)]),  # a single row cannot be halved
        ((2, 3, 4, 1031, 517), [(1031, 517), (515, 258), (257, 129)]),
    ],
)
def test_pyramid_shapes(shape: tuple[int, ...], expected: list[tuple[int, int]]) -> None:
    shapes = pyramid_shapes(shape)
    assert [s[-2:] for s in shapes] == expected
    assert all(s[:3] == shape[:3] for s in shapes)


@given(y=st.integers(1, 20_000), x=st.integers(1, 20_000))
def test_pyramid_shapes_stop_rule(y: int, x: int) -> None:
    shapes = pyramid_shapes((1, 1, 1, y, x))
    assert shapes[0] == (1, 1, 1, y, x)
    for prev, cur in itertools.pairwise(shapes):
        assert max(prev[3:]) > MAX_TOP_LEVEL and min(prev[3:]) >= 2  # it had to go on
        assert cur[3:] == (prev[3] // 2, prev[4] // 2)
    last = shapes[-1]
    assert max(last[3:]) <= MAX_TOP_LEVEL or min(last[3:]) < 2


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32", "uint32"])
def test_wide_integers_at_their_limits_do_not_overflow(tmp_path: Path, dtype: str) -> None:
    info = np.iinfo(dtype)
    a = make_array((1, 1, 1, 4, 1030), dtype)
    a[..., :, :4] = info.max  # all-max blocks must stay max
    a[..., :, 4:8] = info.min
    a[..., 0, 8:10] = info.max  # half max, half min
    a[..., 1, 8:10] = info.min
    write(a, tmp_path / "img.ome.zarr")
    levels = read_levels(tmp_path / "img.ome.zarr")
    np.testing.assert_array_equal(levels[0], a)
    np.testing.assert_array_equal(levels[1], reference_downsample(a))
    assert (levels[1][..., :2] == info.max).all() and (levels[1][..., 2:4] == info.min).all()


def test_bool_round_trip(tmp_path: Path) -> None:
    a = make_array((1, 1, 2, 600, 40), "bool")
    write(a, tmp_path / "mask.ome.zarr")
    levels = read_levels(tmp_path / "mask.ome.zarr")
    assert levels[0].dtype == np.bool_
    np.testing.assert_array_equal(levels[0], a)
    np.testing.assert_array_equal(levels[1], a[..., 0:600:2, 0:40:2])  # nearest (top-left)


@settings(max_examples=25, deadline=None)
@given(
    t=st.integers(1, 2),
    c=st.integers(1, 3),
    z=st.integers(1, 2),
    y=st.integers(1, 1100),
    x=st.integers(1, 48),
    dtype=st.sampled_from(
        ["uint8", "uint16", "int16", "int32", "int64", "uint64", "float32", "float64"]
    ),
    chunk=st.sampled_from([16, 100, 1024]),
    band_rows=st.sampled_from([None, 1, 7, 100]),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory,
    t: int,
    c: int,
    z: int,
    y: int,
    x: int,
    dtype: str,
    chunk: int,
    band_rows: int | None,
    seed: int,
) -> None:
    shape = (t, c, z, y, x)
    a = make_array(shape, dtype, seed)
    dest = tmp_path_factory.mktemp("prop") / "img.ome.zarr"
    result = write(a, dest, chunk=chunk, band_rows=band_rows)
    levels = read_levels(dest)
    np.testing.assert_array_equal(levels[0], a)
    assert [lv.shape for lv in levels] == pyramid_shapes(shape)
    for k in range(1, len(levels)):
        assert_level_equal(levels[k], reference_downsample(levels[k - 1]))
    for ci in range(c):
        assert result.minmax[ci] == (float(a[:, ci].min()), float(a[:, ci].max()))


# ------------------------------------------------------------------------------ streaming


def _manifest(result: WriteResult) -> list[tuple[str, int, str]]:
    return sorted((m.path, m.size, m.sha256) for m in result.manifest)


def test_streaming_band_rows_gives_identical_store(tmp_path: Path) -> None:
    a = make_array((1, 2, 2, 1300, 700), "uint16", seed=3)
    default = write(a, tmp_path / "default.ome.zarr")
    banded = write(a, tmp_path / "banded.ome.zarr", band_rows=100)
    odd = write(a, tmp_path / "odd.ome.zarr", band_rows=33)
    with ThreadPoolExecutor(2) as pool:
        threaded = write(a, tmp_path / "threaded.ome.zarr", band_rows=100, executor=pool)
    assert len(default.manifest) > 10
    assert _manifest(banded) == _manifest(default)
    assert _manifest(odd) == _manifest(default)
    assert _manifest(threaded) == _manifest(default)
    assert banded.minmax == default.minmax


def test_band_rows_bounds_the_rows_read(tmp_path: Path) -> None:
    a = make_array((1, 1, 1, 1000, 64), "uint8")
    calls: list[tuple[int, int]] = []

    def read_rows(t: int, c: int, z: int, y0: int, y1: int) -> np.ndarray:
        calls.append((y0, y1))
        return a[t, c, z, y0:y1]

    spec = ImageSpec(shape=a.shape, dtype="uint8")
    write_image(tmp_path / "img.ome.zarr", read_rows, spec, band_rows=100)
    assert calls == [(y, y + 100) for y in range(0, 1000, 100)]


# ------------------------------------------------------------------------ safety of writes


def test_existing_dest_is_refused_and_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "img.ome.zarr"
    dest.mkdir()
    (dest / "keep.txt").write_text("precious")
    a = make_array((1, 1, 1, 8, 8), "uint8")
    with pytest.raises(FileExistsError, match=r"img\.ome\.zarr"):
        write(a, dest)
    assert sorted(os.listdir(tmp_path)) == ["img.ome.zarr"]  # no temporary folder left
    assert os.listdir(dest) == ["keep.txt"]
    assert (dest / "keep.txt").read_text() == "precious"


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("nested", [False, True])
def test_failing_reader_leaves_nothing_behind(tmp_path: Path, nested: bool) -> None:
    a = make_array((1, 2, 1, 3000, 50), "uint16")
    calls = 0

    def read_rows(t: int, c: int, z: int, y0: int, y1: int) -> np.ndarray:
        nonlocal calls
        calls += 1
        if c == 1 and y0 >= 1000:  # mid-way: level-0 and level-1 chunks are already on disk
            raise Boom("disk went away")
        return a[t, c, z, y0:y1]

    dest = tmp_path / "plate" / "B" / "03" / "0" if nested else tmp_path / "img.ome.zarr"
    spec = ImageSpec(shape=a.shape, dtype="uint16")
    with pytest.raises(Boom):
        write_image(dest, read_rows, spec, band_rows=500)
    assert calls > 3
    assert not dest.exists()
    assert os.listdir(tmp_path) == []  # neither temporary folders nor the parents made for dest


def test_write_into_existing_parent_keeps_the_parent(tmp_path: Path) -> None:
    parent = tmp_path / "plate" / "A"
    parent.mkdir(parents=True)

    def read_rows(*_: int) -> np.ndarray:
        raise Boom("no")

    with pytest.raises(Boom):
        write_image(parent / "01" / "0", read_rows, ImageSpec(shape=(1, 1, 1, 4, 4), dtype="uint8"))
    assert parent.is_dir() and os.listdir(parent) == []


def test_manifest_lists_every_file_with_size_and_sha256(tmp_path: Path) -> None:
    dest = tmp_path / "img.ome.zarr"
    a = make_array((2, 2, 1, 1100, 300), "int16", seed=5)
    result = write(a, dest, ome_xml="<OME/>")
    on_disk = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file()}
    listed = {m.path: m for m in result.manifest}
    assert len(listed) == len(result.manifest)  # no duplicates
    assert set(listed) == set(on_disk)
    for rel, path in on_disk.items():
        data = path.read_bytes()
        assert listed[rel].size == len(data), rel
        assert listed[rel].sha256 == hashlib.sha256(data).hexdigest(), rel
    assert result.bytes_written == sum(m.size for m in result.manifest)
    assert result.path == dest
    assert {"zarr.json", "0/zarr.json", "1/zarr.json", "OME/METADATA.ome.xml"} <= set(listed)
    assert (dest / "OME" / "METADATA.ome.xml").read_text() == "<OME/>"


# ------------------------------------------------------------------------------- metadata


def test_scale_per_level_is_exact_power_of_two(tmp_path: Path) -> None:
    a = make_array((1, 1, 3, 1031, 517), "uint8")
    write(a, tmp_path / "img.ome.zarr", physical_size=(0.25, 0.5, 2.0))
    ms = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="r").attrs["ome"]["multiscales"][0]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales == [
        [1.0, 1.0, 2.0, 0.5, 0.25],
        [1.0, 1.0, 2.0, 1.0, 0.5],
        [1.0, 1.0, 2.0, 2.0, 1.0],
    ]
    assert [ax["unit"] for ax in ms["axes"][2:]] == ["micrometer"] * 3


def test_omero_channels_and_window(tmp_path: Path) -> None:
    a = make_array((1, 2, 1, 30, 20), "uint16")
    channels = (ChannelDisplay("DAPI", "0000FF"), ChannelDisplay("GFP", "00FF00"))
    result = write(a, tmp_path / "img.ome.zarr", channels=channels)
    attrs = json.loads((tmp_path / "img.ome.zarr" / "zarr.json").read_text())["attributes"]
    omero = attrs["ome"]["omero"]
    assert [ch["label"] for ch in omero["channels"]] == ["DAPI", "GFP"]
    assert [ch["color"] for ch in omero["channels"]] == ["0000FF", "00FF00"]
    for ci, ch in enumerate(omero["channels"]):
        assert ch["window"]["min"] == 0 and ch["window"]["max"] == 65535
        assert (ch["window"]["start"], ch["window"]["end"]) == result.minmax[ci]
        assert result.minmax[ci] == (float(a[:, ci].min()), float(a[:, ci].max()))


def test_nan_does_not_hide_the_display_range(tmp_path: Path) -> None:
    a = np.linspace(-3, 5, 2 * 40 * 10, dtype=np.float32).reshape(1, 2, 1, 40, 10)
    a[0, 0, 0, :5] = np.nan  # the first band of channel 0 holds NaN
    result = write(a, tmp_path / "img.ome.zarr", band_rows=8)
    finite = a[0, 0][np.isfinite(a[0, 0])]
    assert result.minmax[0] == (float(finite.min()), float(finite.max()))
    text = (tmp_path / "img.ome.zarr" / "zarr.json").read_text()
    json.loads(text)
    assert "NaN" not in text and "Infinity" not in text  # strict JSON
    np.testing.assert_array_equal(read_levels(tmp_path / "img.ome.zarr")[0], a)


def test_unsupported_dtype_is_refused(tmp_path: Path) -> None:
    spec = ImageSpec(shape=(1, 1, 1, 4, 4), dtype="complex64")
    with pytest.raises(ValueError, match="complex64"):
        write_image(tmp_path / "img.ome.zarr", lambda *_: np.zeros((4, 4), "complex64"), spec)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("shape", "chunk_z"),
    [((2, 1, 300, 3, 5), 300), ((1, 2, 10, 600, 600), 2), ((1, 1, 5, 1, 128), 5)],
)
def test_small_planes_are_grouped_along_z(
    tmp_path: Path, shape: tuple[int, ...], chunk_z: int
) -> None:
    # a stack of small planes (a line scan) must not become one tiny file per plane
    a = make_array(shape, "uint16")
    result = write(a, tmp_path / "img.ome.zarr")
    levels = read_levels(tmp_path / "img.ome.zarr")
    assert np.array_equal(levels[0], a)
    meta = json.loads((tmp_path / "img.ome.zarr" / "0" / "zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"][2] == chunk_z
    t, c, z = shape[:3]
    chunks = [m for m in result.manifest if m.path.startswith("0/c.")]
    assert len(chunks) == t * c * -(-z // chunk_z)
    for k in range(1, len(levels)):
        assert_level_equal(levels[k], reference_downsample(levels[k - 1]))
