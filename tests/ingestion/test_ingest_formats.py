"""Ingest of every real vendor file in ../shared/data/vendor_formats (ingested once per module)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from quantscope.catalog import Repository
from quantscope.ingestion import IngestReport, ingest, verify
from quantscope.io import FORMATS
from quantscope.model import Image


@dataclass
class Ingested:
    repo: Repository
    report: IngestReport
    images: list[Image]

    def by_source(self, name: str) -> list[Image]:
        return [i for i in self.images if any(Path(s.path).name == name for s in i.sources)]

    def pixels(self, image: Image, level: int = 0) -> np.ndarray:
        group = zarr.open_group(str(self.repo.root / image.store_path), mode="r")
        return np.asarray(group[str(level)][:])


@pytest.fixture(scope="module")
def vendor(vendor_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    repo = Repository.init(tmp_path_factory.mktemp("vendor") / "repo")
    report = ingest(repo, [vendor_dir], jobs=2)
    yield Ingested(repo, report, repo.images.all())
    repo.close()


def test_every_file_ingests_except_seq_which_names_supported_formats(
    vendor: Ingested, vendor_dir: Path
) -> None:
    failed = {Path(f.path).name: f.message for f in vendor.report.failed}
    assert list(failed) == ["pims_sample_norpix6.seq"], vendor.report.failed
    message = failed["pims_sample_norpix6.seq"]
    assert "no reader for .seq" in message
    assert "supported formats:" in message
    for fmt in ("ome-tiff", "tiff", "czi", "nd2", "lif", "dv"):
        assert fmt in message
    ingested = {Path(s.path).name for img in vendor.images for s in img.sources}
    expected = {
        p.name
        for p in vendor_dir.rglob("*")
        if p.is_file() and p.suffix.lower() in {".czi", ".tiff", ".tif", ".lif", ".nd2", ".dv"}
    }
    assert ingested == expected
    assert not vendor.report.skipped
    # the LIF yields 3 images, every other file 1
    assert len(vendor.images) == len(expected) + 2 == len(vendor.report.added)
    assert vendor.repo.summary()["source_files"] == len(expected)


def test_every_scene_of_the_lif_becomes_its_own_image(vendor: Ingested) -> None:
    lif = vendor.by_source("readlif_xz-example.lif")
    assert len(lif) == 3
    assert len({i.id for i in lif}) == 3
    assert len({i.store_path for i in lif}) == 3
    assert sorted(s.scene for i in lif for s in i.sources) == [0, 1, 2]
    # names carry the scene: "readlif_xz-example [xz]" etc.
    assert sorted(i.name for i in lif) == [
        "readlif_xz-example [xz]",
        "readlif_xz-example [xzt]",
        "readlif_xz-example [xzy]",
    ]
    shapes = {i.name.split("[")[1].rstrip("]"): i.shape for i in lif}
    assert shapes["xzt"][0] == 20  # 20 time points
    assert shapes["xzy"][3] == 23  # 23 planes
    assert all(i.shape[1] == 2 and i.dtype == "uint8" for i in lif)


def test_lif_pixels_match_the_expected_planes(vendor: Ingested, vendor_dir: Path) -> None:
    (xzt,) = [i for i in vendor.by_source("readlif_xz-example.lif") if i.name.endswith("[xzt]")]
    stored = vendor.pixels(xzt)
    assert stored.shape == xzt.shape == (20, 2, 128, 1, 128)
    expected = vendor_dir / "lif" / "readlif_xz-example_expected"
    for name, (c, t) in {"c0t0.tif": (0, 0), "c1t8.tif": (1, 8)}.items():
        np.testing.assert_array_equal(stored[t, c, :, 0, :], tifffile.imread(expected / name))


def test_czi_ome_tiff_and_imagej_tiff_copies_are_pixel_identical(
    vendor: Ingested, vendor_dir: Path
) -> None:
    names = [
        "aicsimageio_s_1_t_1_c_1_z_1.czi",
        "aicsimageio_s_1_t_1_c_1_z_1.ome.tiff",
        "aicsimageio_s_1_t_1_c_1_z_1.tiff",
    ]
    images = [vendor.by_source(n) for n in names]
    assert [len(i) for i in images] == [1, 1, 1]
    arrays = [vendor.pixels(i[0]) for i in images]
    assert {a.shape for a in arrays} == {(1, 1, 1, 325, 475)}
    assert {a.dtype for a in arrays} == {np.dtype("uint16")}
    reference = tifffile.imread(vendor_dir / "ome_tiff" / names[1])
    assert reference.shape == (325, 475)
    for name, arr in zip(names, arrays, strict=True):
        np.testing.assert_array_equal(arr[0, 0, 0], reference, err_msg=name)
    # the three stores are distinct images from distinct files
    assert len({i[0].id for i in images}) == 3
    # all three know the pixel size (about 1.0833 µm)
    for i in images:
        assert i[0].physical_size_x_um == pytest.approx(1.0833, rel=1e-3)


def test_nd2_and_dv_keep_their_dimensions(vendor: Ingested) -> None:
    (nd2,) = vendor.by_source("pims_cluster.nd2")
    assert nd2.shape == (3, 2, 10, 31, 38)  # T3 C2 Z10
    (dv,) = vendor.by_source("mrc_toxo.dv")
    assert dv.shape == (1, 2, 17, 128, 128)
    assert vendor.pixels(dv).shape == dv.shape
    (stack,) = vendor.by_source("pims_stuck.tif")
    assert stack.shape[0] == 5 and stack.shape[3:] == (512, 512)  # frames of a movie: T


def test_stored_images_are_ngff_05_with_a_clean_manifest(vendor: Ingested) -> None:
    for img in vendor.images:
        group = zarr.open_group(str(vendor.repo.root / img.store_path), mode="r")
        ome = group.attrs["ome"]
        assert ome["version"] == "0.5"
        (ms,) = ome["multiscales"]
        assert [a["name"] for a in ms["axes"]] == ["t", "c", "z", "y", "x"]
        assert len(ms["datasets"]) == img.levels
        assert group["0"].shape == img.shape
        assert [ch["label"] for ch in ome["omero"]["channels"]] == [c.name for c in img.channels]
        assert vendor.repo.images.stored_files(img.id)
    assert verify(vendor.repo) == []


def test_formats_table_covers_the_vendor_files() -> None:
    names = {f.name: f for f in FORMATS}
    for fmt in ("ome-tiff", "tiff", "czi", "nd2", "lif", "dv"):
        assert names[fmt].installed, fmt
    assert not any(".seq" in f.extensions for f in FORMATS)
