"""`quantscope.io.open_sources` on real vendor files: shapes, pixels, physical sizes, damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from quantscope.errors import CorruptFile, QuantscopeError
from quantscope.io import SourceImage, open_sources

SAME_IMAGE = [  # one Zeiss acquisition saved three ways
    "czi/aicsimageio_s_1_t_1_c_1_z_1.czi",
    "ome_tiff/aicsimageio_s_1_t_1_c_1_z_1.ome.tiff",
    "tiff/aicsimageio_s_1_t_1_c_1_z_1.tiff",
]
LIF = "lif/readlif_xz-example.lif"


def read_all(s: SourceImage) -> np.ndarray:
    """The whole (t, c, z, y, x) array of a source, read plane by plane as the writer does."""
    out = np.empty(s.shape, dtype=s.dtype)
    t_n, c_n, z_n, _, _ = s.shape
    for t in range(t_n):
        for c in range(c_n):
            for z in range(z_n):
                out[t, c, z] = s.read_plane(t, c, z)
    return out


# (file, format, [(scene name or None, shape)], dtype)
EXPECTED = [
    ("czi/aicsimageio_s_1_t_1_c_1_z_1.czi", "czi", [(None, (1, 1, 1, 325, 475))], "uint16"),
    (SAME_IMAGE[1], "ome-tiff", [(None, (1, 1, 1, 325, 475))], "uint16"),
    (SAME_IMAGE[2], "tiff", [(None, (1, 1, 1, 325, 475))], "uint16"),
    # a 5-frame movie whose pages carry no axis metadata (tifffile: QYX): time points
    ("tiff/pims_stuck.tif", "tiff", [(None, (5, 1, 1, 512, 512))], "uint16"),
    (
        LIF,
        "lif",
        [("xzt", (20, 2, 128, 1, 128)), ("xzy", (1, 2, 128, 23, 128)), ("xz", (1, 2, 512, 1, 512))],
        "uint8",
    ),
    ("nd2/pims_cluster.nd2", "nd2", [(None, (3, 2, 10, 31, 38))], "uint16"),
    ("dv/mrc_toxo.dv", "dv", [(None, (1, 2, 17, 128, 128))], "uint16"),
]


@pytest.mark.parametrize(("rel", "fmt", "scenes", "dtype"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_shapes_dtypes_and_scenes(
    vendor_dir: Path,
    rel: str,
    fmt: str,
    scenes: list[tuple[str | None, tuple[int, ...]]],
    dtype: str,
) -> None:
    path = vendor_dir / rel
    with open_sources(path) as sources:
        assert len(sources) == len(scenes)
        for i, (s, (name, shape)) in enumerate(zip(sources, scenes, strict=True)):
            assert s.scene == i
            assert s.path == path
            assert s.format == fmt
            assert s.shape == shape
            assert s.dtype == np.dtype(dtype)
            assert len(s.channel_names) == shape[1]
            assert s.nbytes == int(np.prod(shape)) * np.dtype(dtype).itemsize
            if name is not None:
                assert s.scene_name == name
            plane = s.read_plane(shape[0] - 1, shape[1] - 1, shape[2] - 1)  # the last plane
            assert plane.shape == shape[3:]
            assert plane.dtype == np.dtype(dtype)


def test_lif_xz_planes_match_readlif_expected_outputs(vendor_dir: Path) -> None:
    expected_dir = vendor_dir / "lif" / "readlif_xz-example_expected"
    c0t0 = tifffile.imread(expected_dir / "c0t0.tif")
    c1t8 = tifffile.imread(expected_dir / "c1t8.tif")
    with open_sources(vendor_dir / LIF) as sources:
        xzt = sources[0]
        assert xzt.scene_name == "xzt"
        # the LIF frame is (z, x); stacking the (1, x) rows over z rebuilds it
        got0 = np.stack([xzt.read_plane(0, 0, z)[0] for z in range(xzt.shape[2])])
        got8 = np.stack([xzt.read_plane(8, 1, z)[0] for z in range(xzt.shape[2])])
    assert got0.shape == c0t0.shape == (128, 128)
    assert got0.dtype == c0t0.dtype == np.uint8
    np.testing.assert_array_equal(got0, c0t0)
    np.testing.assert_array_equal(got8, c1t8)
    assert not np.array_equal(got0, got8)  # the two reference planes differ: the check has teeth


def test_lif_channel_names_and_sizes(vendor_dir: Path) -> None:
    with open_sources(vendor_dir / LIF) as sources:
        for s in sources:
            assert s.channel_names == ["Green", "Red"]
            x, _, z = s.physical_size
            assert x is not None and z is not None and 0.05 < x < 0.5 and 0.05 < z < 0.5


def test_same_image_in_three_formats_is_pixel_identical(vendor_dir: Path) -> None:
    arrays = {}
    sizes = {}
    for rel in SAME_IMAGE:
        with open_sources(vendor_dir / rel) as sources:
            assert len(sources) == 1
            arrays[rel] = read_all(sources[0])
            sizes[rel] = sources[0].physical_size
    ref = arrays[SAME_IMAGE[0]]
    assert ref.shape == (1, 1, 1, 325, 475)
    assert ref.std() > 0  # a real image, not a blank
    for rel in SAME_IMAGE[1:]:
        np.testing.assert_array_equal(arrays[rel], ref, err_msg=rel)
    for rel, (x, y, z) in sizes.items():
        assert x == pytest.approx(1.0833333, rel=1e-5), rel
        assert y == pytest.approx(1.0833333, rel=1e-5), rel
        assert z is None, rel  # a single plane has no z spacing


def test_band_reads_equal_plane_slices(vendor_dir: Path) -> None:
    with open_sources(vendor_dir / "nd2" / "pims_cluster.nd2") as sources:
        s = sources[0]
        plane = s.read_plane(2, 1, 7)
        np.testing.assert_array_equal(s.read_rows(2, 1, 7, 5, 17), plane[5:17])
        np.testing.assert_array_equal(s.read_rows(2, 1, 7, 30, 31), plane[30:31])
    with open_sources(vendor_dir / "tiff" / "pims_stuck.tif") as sources:
        s = sources[0]
        plane = s.read_plane(0, 0, 4)
        np.testing.assert_array_equal(s.read_rows(0, 0, 4, 100, 356), plane[100:356])


def test_nd2_channels_and_sizes(vendor_dir: Path) -> None:
    with open_sources(vendor_dir / "nd2" / "pims_cluster.nd2") as sources:
        s = sources[0]
        assert s.channel_names == ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"]
        x, y, z = s.physical_size
        assert x == pytest.approx(0.1678, rel=1e-3)
        assert y == pytest.approx(0.1678, rel=1e-3)
        assert z == pytest.approx(0.5)
        assert s.ome_xml is not None and s.ome() is not None
        # time points and z planes differ: the reader does not repeat one plane
        assert not np.array_equal(s.read_plane(0, 0, 0), s.read_plane(2, 0, 0))
        assert not np.array_equal(s.read_plane(0, 0, 0), s.read_plane(0, 0, 9))
        assert not np.array_equal(s.read_plane(0, 0, 0), s.read_plane(0, 1, 0))


def test_dv_sizes(vendor_dir: Path) -> None:
    with open_sources(vendor_dir / "dv" / "mrc_toxo.dv") as sources:
        s = sources[0]
        x, y, z = s.physical_size
        assert x == pytest.approx(0.13262, rel=1e-4)
        assert y == pytest.approx(0.13262, rel=1e-4)
        assert z == pytest.approx(0.3, rel=1e-4)
        assert not np.array_equal(s.read_plane(0, 0, 0), s.read_plane(0, 0, 16))


def test_tiff_named_png_reads_with_note(shared_data: Path) -> None:
    path = shared_data / "image_quality" / "BBBC006_z_aligned__a01__s1__w1_10.png"
    with open_sources(path) as sources:
        s = sources[0]
        assert s.format == "tiff"
        assert s.note is not None and path.name in s.note
        assert s.shape == (1, 1, 1, 520, 696)
        assert s.dtype == np.uint16
        np.testing.assert_array_equal(s.read_plane(0, 0, 0), tifffile.imread(path))


def _truncate(src: Path, dest_dir: Path) -> Path:
    data = src.read_bytes()
    dest = dest_dir / f"truncated_{src.name}"
    dest.write_bytes(data[: len(data) // 2])
    return dest


def _open_and_read_everything(path: Path) -> None:
    with open_sources(path) as sources:
        for s in sources:
            read_all(s)


TRUNCATED = [
    "vendor_formats/tiff/pims_stuck.tif",
    "vendor_formats/tiff/aicsimageio_s_1_t_1_c_1_z_1.tiff",
    "bbbc039_nuclei_subset/images/IXMtest_A02_s1_w1051DAA7C-7042-435F-99F0-1E847D9B42CB.tif",
    "vendor_formats/czi/aicsimageio_s_1_t_1_c_1_z_1.czi",
    "vendor_formats/nd2/pims_cluster.nd2",
    "vendor_formats/lif/readlif_xz-example.lif",
    "vendor_formats/dv/mrc_toxo.dv",
]


@pytest.mark.parametrize(
    "rel", TRUNCATED, ids=[Path(r).suffix + ":" + Path(r).name for r in TRUNCATED]
)
def test_truncated_file_is_corrupt(shared_data: Path, tmp_path: Path, rel: str) -> None:
    path = _truncate(shared_data / rel, tmp_path)
    with pytest.raises(CorruptFile) as info:  # on open or on read: either is fine
        _open_and_read_everything(path)
    assert isinstance(info.value, QuantscopeError)
    assert str(path) in str(info.value)


def test_ome_tiff_cut_in_padding_still_reads_exactly(vendor_dir: Path, tmp_path: Path) -> None:
    """This OME-TIFF's second half is zero padding after the OME-XML: cutting it loses nothing,
    so it must read normally (no false alarm) and give the same pixels."""
    src = vendor_dir / SAME_IMAGE[1]
    path = _truncate(src, tmp_path)
    with open_sources(src) as a, open_sources(path) as b:
        np.testing.assert_array_equal(read_all(b[0]), read_all(a[0]))


def test_ome_tiff_cut_into_pixel_data_is_corrupt(vendor_dir: Path, tmp_path: Path) -> None:
    src = vendor_dir / SAME_IMAGE[1]
    path = tmp_path / "cut.ome.tiff"
    path.write_bytes(src.read_bytes()[:100_000])  # inside the LZW strips
    with pytest.raises(CorruptFile) as info:
        _open_and_read_everything(path)
    assert str(path) in str(info.value)
