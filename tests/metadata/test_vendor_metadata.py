"""Vendor files: the metadata their readers expose reaches the model; the CZI and the OME-TIFF
copy of the same image agree on every field both carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantscope.io import open_sources
from quantscope.metadata import ImageMetadata, from_ome
from quantscope.model import AcquisitionMode, Binning, ContrastMethod, IlluminationType

CZI = "czi/aicsimageio_s_1_t_1_c_1_z_1.czi"
OME_TIFF = "ome_tiff/aicsimageio_s_1_t_1_c_1_z_1.ome.tiff"


@pytest.fixture(scope="module")
def czi_and_tiff(vendor_dir: Path) -> tuple[ImageMetadata, ImageMetadata]:
    out = []
    for rel in (CZI, OME_TIFF):
        with open_sources(vendor_dir / rel) as sources:
            ome = sources[0].ome()
            assert ome is not None, rel
            out.append(from_ome(ome, sources[0].ome_image_index))
    return out[0], out[1]


def test_czi_full_metadata(czi_and_tiff: tuple[ImageMetadata, ImageMetadata]) -> None:
    czi, _ = czi_and_tiff
    obj = czi.acquisition.objective
    assert obj is not None and obj.working_distance_um == pytest.approx(610.0)
    settings = czi.acquisition.objective_settings
    assert settings is not None and settings.refractive_index == pytest.approx(1.000293)
    env = czi.acquisition.environment
    assert env is not None
    assert env.temperature_c == pytest.approx(37.0)
    assert env.co2_percent == pytest.approx(5.0)  # OME stores 0.05
    inst = czi.acquisition.instrument
    assert inst is not None and inst.manufacturer == "Zeiss"
    assert [d.model for d in inst.detectors] == ["HDCamC11440-22C"]
    [ch] = czi.channels
    assert ch.illumination_type is IlluminationType.TRANSMITTED
    assert ch.detector_binning is Binning.B4X4
    assert ch.detector_id == inst.detectors[0].id
    assert czi.significant_bits == 16


def test_czi_and_ome_tiff_agree(czi_and_tiff: tuple[ImageMetadata, ImageMetadata]) -> None:
    """Every field both files carry has the same value (up to the OME-TIFF's rounding)."""
    czi, tiff = czi_and_tiff
    compared = 0
    a, b = czi.acquisition, tiff.acquisition
    for part in ("objective", "objective_settings"):
        da, db = getattr(a, part).model_dump(), getattr(b, part).model_dump()
        for k in da.keys() & db.keys():
            if da[k] is not None and db[k] is not None:
                assert da[k] == db[k], (part, k)
                compared += 1
    for ca, cb in zip(czi.channels, tiff.channels, strict=True):
        da, db = ca.model_dump(), cb.model_dump()
        for k in da.keys() - {"detector_id"}:  # detector ids are file-local names
            if da[k] not in (None, ()) and db[k] not in (None, ()):
                assert da[k] == db[k], ("channel", k)
                compared += 1
    ia, ib = a.instrument, b.instrument
    assert ia is not None and ib is not None
    assert [d.model for d in ia.detectors] == [d.model for d in ib.detectors]
    assert czi.physical_size[0] == pytest.approx(tiff.physical_size[0], rel=1e-12)
    assert czi.significant_bits == tiff.significant_bits == 16
    assert a.acquired_at is not None and b.acquired_at is not None
    assert (
        abs(a.acquired_at.replace(tzinfo=None) - b.acquired_at.replace(tzinfo=None)).total_seconds()
        < 1e-3
    )
    assert compared >= 10


def test_nd2_acquisition_settings(vendor_dir: Path) -> None:
    with open_sources(vendor_dir / "nd2" / "pims_cluster.nd2") as sources:
        ome = sources[0].ome()
        assert ome is not None
        md = from_ome(ome, sources[0].ome_image_index)
    for ch in md.channels:
        assert ch.contrast_method is ContrastMethod.FLUORESCENCE
        assert ch.illumination_type is IlluminationType.EPIFLUORESCENCE
        assert ch.acquisition_mode is AcquisitionMode.LASER_SCANNING_CONFOCAL
        assert ch.pinhole_size_um == pytest.approx(38.314, rel=1e-3)
    inst = md.acquisition.instrument
    assert inst is not None and inst.detectors[0].model == "Nikon A1"
    stage = md.acquisition.stage
    assert stage is not None and stage.z_um == pytest.approx(3912.3375)
    assert md.significant_bits == 12


@pytest.mark.parametrize(
    ("rel", "scene", "size_x_um"),
    [("lif/readlif_xz-example.lif", 1, 0.1402798)],
)
def test_readers_without_ome_metadata_give_pixel_sizes(
    vendor_dir: Path, rel: str, scene: int, size_x_um: float
) -> None:
    """The LIF reader exposes no OME-XML; its pixel sizes (µm) and channel names are what
    ingest records."""
    with open_sources(vendor_dir / rel) as sources:
        s = sources[scene]
        assert s.ome() is None
        assert s.physical_size[0] == pytest.approx(size_x_um, rel=1e-5)
        assert len(s.channel_names) == s.shape[1]


def test_dv_header_becomes_ome_with_wavelengths_and_objective(vendor_dir: Path) -> None:
    """bioio-dv has no OME conversion: the DeltaVision header's wavelengths (emission, nm),
    pixel sizes and lens become OME metadata, as Bio-Formats reads them (issue 12, item 10)."""
    with open_sources(vendor_dir / "dv" / "mrc_toxo.dv") as sources:
        s = sources[0]
        ome = s.ome()
        assert ome is not None
        md = from_ome(ome, s.ome_image_index)
        assert s.channel_names == ["525", "632"]
    assert [c.emission_wavelength_nm for c in md.channels] == [525.0, 632.0]
    assert [c.excitation_wavelength_nm for c in md.channels] == [None, None]  # no extended header
    assert md.physical_size == pytest.approx((0.13262, 0.13262, 0.3), rel=1e-4)
    obj = md.acquisition.objective
    assert obj is not None
    assert (obj.nominal_magnification, obj.lens_na, obj.manufacturer) == (100.0, 1.35, "Olympus")


def test_dv_wavelengths_reach_the_catalog(vendor_dir: Path, tmp_path: Path) -> None:
    from quantscope.catalog import Repository
    from quantscope.ingestion import ingest

    with Repository.init(tmp_path / "repo") as repo:
        report = ingest(repo, [vendor_dir / "dv" / "mrc_toxo.dv"], qc=False)
        assert report.ok
        (img,) = repo.images.all()
        assert [(c.name, c.emission_wavelength_nm) for c in img.channels] == [
            ("525", 525.0),
            ("632", 632.0),
        ]
        assert img.acquisition.objective is not None
        assert img.acquisition.objective.lens_na == 1.35
        assert repo.query.find_ids("channel.emission_wavelength_nm == 632") == [img.id]
