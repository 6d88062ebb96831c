"""Every OME-XML sample in ../shared/data/ome_xml_metadata maps onto the model; invalid ones fail
with a clear error naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from ome_types import from_xml

from quantscope.errors import CorruptFile, InvalidInput, NotFound
from quantscope.metadata import from_ome, image_to_ome_xml, read_ome_xml
from quantscope.model import (
    Binning,
    Correction,
    DetectorType,
    FilterType,
    IlluminationType,
    Image,
    Immersion,
    LightSourceKind,
    Medium,
)

INVALID = {"bad.ome.xml", "invalid_xml_annotation.ome.xml"}  # deliberately invalid samples
SAMPLES = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ome_xml_metadata"
).resolve()
ALL_XML = sorted(p.relative_to(SAMPLES).as_posix() for p in SAMPLES.glob("*/*.xml"))


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> Path:
    return shared_data / "ome_xml_metadata"


def _image(md: object, ome_image: object, index: int) -> Image:
    """A model image from what ``from_ome`` read (shape and dtype from the OME Pixels)."""
    px = ome_image.pixels  # type: ignore[attr-defined]
    dtype = {"float": "float32", "double": "float64", "bit": "bool"}.get(
        px.type.value, px.type.value
    )
    return Image(
        id=f"i{index}",
        name=md.name or f"image {index}",  # type: ignore[attr-defined]
        shape=(px.size_t, px.size_c, px.size_z, px.size_y, px.size_x),
        dtype=dtype,
        physical_size_x_um=md.physical_size[0],  # type: ignore[attr-defined]
        physical_size_y_um=md.physical_size[1],  # type: ignore[attr-defined]
        physical_size_z_um=md.physical_size[2],  # type: ignore[attr-defined]
        significant_bits=md.significant_bits,  # type: ignore[attr-defined]
        channels=tuple(md.channels)[: px.size_c],  # type: ignore[attr-defined]
        acquisition=md.acquisition,  # type: ignore[attr-defined]
        position=md.position,  # type: ignore[attr-defined]
    )


def test_the_sample_folder_is_complete(samples: Path) -> None:
    assert len(ALL_XML) >= 60
    assert {Path(p).name for p in ALL_XML} >= INVALID


@pytest.mark.parametrize("rel", [p for p in ALL_XML if Path(p).name not in INVALID])
def test_every_valid_sample_maps_onto_the_model_and_back(samples: Path, rel: str) -> None:
    """Each image of each valid sample becomes model objects, and the model of each image
    writes OME-XML that the 2016-06 schema accepts and that reads back to the same model."""
    ome = read_ome_xml(samples / rel)
    assert ome.images, rel
    for i, ome_image in enumerate(ome.images[:4]):
        md = from_ome(ome, i)
        assert md.name == ome_image.name
        assert len(md.channels) == len(ome_image.pixels.channels)
        image = _image(md, ome_image, i)
        again = from_ome(from_xml(image_to_ome_xml(image), validate=True), 0)
        assert again.channels == list(image.channels)
        assert again.physical_size == md.physical_size
        assert again.significant_bits == md.significant_bits
        inst, inst2 = md.acquisition.instrument, again.acquisition.instrument
        if inst is not None and inst2 is not None:
            assert len(inst2.light_sources) == len(inst.light_sources)
            assert [d.model for d in inst2.detectors] == [d.model for d in inst.detectors]
            assert [f.cut_in_nm for f in inst2.filters] == [f.cut_in_nm for f in inst.filters]


@pytest.mark.parametrize("name", sorted(INVALID))
def test_deliberately_invalid_samples_fail_clearly(samples: Path, name: str) -> None:
    path = samples / "ome-types_testdata" / name
    with pytest.raises(InvalidInput) as info:
        read_ome_xml(path, validate=True)
    msg = str(info.value)
    assert msg.startswith(f"{path}: not valid OME-XML (2016-06 schema): line ")
    assert "ID" in msg  # the offending attribute is named


@pytest.mark.parametrize("name", ["old_model.json", "ome.tiff"])
def test_files_that_are_not_ome_xml_are_corrupt(samples: Path, name: str) -> None:
    with pytest.raises(CorruptFile, match=f"{name}: not readable as OME-XML"):
        read_ome_xml(samples / "ome-types_testdata" / name)


def test_truncated_xml_is_corrupt(tmp_path: Path, samples: Path) -> None:
    text = (samples / "ome-model_samples_2016-06" / "instrument.ome.xml").read_text()
    bad = tmp_path / "truncated.ome.xml"
    bad.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptFile, match=r"truncated\.ome\.xml"):
        read_ome_xml(bad)
    with pytest.raises(NotFound):
        read_ome_xml(tmp_path / "missing.ome.xml")


# ------------------------------------------------------------- concrete values, real files


def test_micro_manager_values(samples: Path) -> None:
    md = from_ome(read_ome_xml(samples / "ome-types_testdata" / "MMStack.ome.xml"), 0)
    assert md.physical_size == (2.0, 2.0, 1.75)  # µm
    assert md.acquisition.time_increment_s == pytest.approx(0.001)  # written in ms
    assert [c.name for c in md.channels] == ["Cy5", "DAPI", "FITC"]
    assert md.channels[0].exposure_time_s == pytest.approx(0.001)
    inst = md.acquisition.instrument
    assert inst is not None
    [det] = inst.detectors
    assert (det.manufacturer, det.model) == ("DCam", "DemoCamera-MultiMode")
    assert md.channels[0].detector_id == det.id
    assert md.channels[0].detector_binning is Binning.B2X2
    assert md.channels[0].detector_gain == pytest.approx(1.0)
    stage = md.acquisition.stage
    assert stage is not None
    assert (stage.x_um, stage.y_um, stage.label) == (-256.0, -256.0, "2-Pos000_000")


def test_zeiss_values(samples: Path) -> None:
    """OverViewScan2-aics: a Zeiss CZI converted to OME-XML (by aicsimageio)."""
    md = from_ome(read_ome_xml(samples / "ome-types_testdata" / "OverViewScan2-aics.ome.xml"), 0)
    obj = md.acquisition.objective
    assert obj is not None
    assert obj.model == "Plan-Apochromat 5x/0.35"
    assert obj.lens_na == pytest.approx(0.35)
    assert obj.nominal_magnification == pytest.approx(5.0)
    assert obj.immersion is Immersion.AIR
    assert obj.working_distance_um == pytest.approx(5000.0)  # 5 mm
    assert md.physical_size[0] == pytest.approx(4.5743626119409)
    assert md.significant_bits == 14
    settings = md.acquisition.objective_settings
    assert settings is not None and settings.medium is Medium.AIR
    assert settings.refractive_index == pytest.approx(1.000293)
    dapi = md.channels[0]
    assert (dapi.name, dapi.fluor) == ("DAPI", "DAPI")
    assert (dapi.excitation_wavelength_nm, dapi.emission_wavelength_nm) == (353.0, 465.0)
    assert dapi.illumination_type is IlluminationType.EPIFLUORESCENCE
    assert dapi.acquisition_mode == "WideField"
    assert dapi.exposure_time_s == pytest.approx(150.0)
    inst = md.acquisition.instrument
    assert inst is not None and inst.microscope_type == "Inverted"
    assert (inst.filters[0].cut_in_nm, inst.filters[0].cut_out_nm) == (412.0, 438.0)
    stage = md.acquisition.stage
    assert stage is not None and stage.x_um == pytest.approx(43832.03)


def test_instrument_sample_values(samples: Path) -> None:
    md = from_ome(read_ome_xml(samples / "ome-model_samples_2016-06" / "instrument.ome.xml"), 0)
    obj = md.acquisition.objective
    assert obj is not None
    assert obj.correction is Correction.UV and obj.calibrated_magnification == 60.12
    assert obj.working_distance_um == 20.0 and obj.lens_na == 1.2
    inst = md.acquisition.instrument
    assert inst is not None
    laser, arc = inst.light_sources
    assert (laser.kind, laser.type, laser.power_mw) == (LightSourceKind.LASER, "SolidState", 200)
    assert (arc.kind, arc.type, arc.power_mw) == (LightSourceKind.ARC, "Xe", 300)
    assert inst.detectors[0].type is DetectorType.CCD
    assert inst.filters[1].type is FilterType.BAND_PASS
    assert inst.filters[1].transmittance == pytest.approx(0.8)
    ch = md.channels[0]
    assert ch.light_source_id == laser.id and ch.light_source_attenuation == pytest.approx(0.8)
    assert ch.excitation_filter_ids == ("Filter:3",) and ch.emission_filter_ids == ("Filter:2",)


def test_lsid_ids_and_photodetectors(samples: Path) -> None:
    """tubhiswt: LSID ids, a PMT and a photodiode, oil objective in PlanApo correction."""
    md = from_ome(read_ome_xml(samples / "ome-types_testdata" / "tubhiswt.ome.xml"), 0)
    inst = md.acquisition.instrument
    assert inst is not None
    assert [d.type for d in inst.detectors] == [DetectorType.PMT, DetectorType.PHOTODIODE]
    assert md.channels[1].detector_id == inst.detectors[1].id
    obj = md.acquisition.objective
    assert obj is not None and obj.immersion is Immersion.OIL and obj.lens_na == 1.4
    assert obj.correction is Correction.PLAN_APO


def test_positions_in_reference_frame_units_are_dropped(samples: Path) -> None:
    """seq0000xy01c1 (Nikon) gives plane positions in 'reference frame': not a length."""
    md = from_ome(read_ome_xml(samples / "ome-types_testdata" / "seq0000xy01c1.ome.xml"), 0)
    assert md.acquisition.stage is None
    assert md.physical_size[0] == pytest.approx(0.644888)
    assert md.channels[0].emission_wavelength_nm == 525.0


@pytest.mark.parametrize(
    "rel",
    ["ome-types_testdata/OverViewScan2-aics.ome.xml", "ome-model_samples_2016-06/ROI.ome.xml"],
)
def test_enrich_reads_stored_xml_without_its_annotations(samples: Path, rel: str) -> None:
    """enrich() drops StructuredAnnotations and ROIs before parsing (speed): the model it
    builds is the one the full document gives."""
    from quantscope.metadata import enrich

    path = samples / rel
    full = from_ome(read_ome_xml(path), 0)
    chans = tuple(c.model_copy(update={"detector_id": None}) for c in full.channels)
    bare = Image(
        id="x", name="x", shape=(1, max(1, len(chans)), 1, 1, 1), dtype="uint8", channels=chans
    )
    got = enrich(bare, path.read_text(encoding="utf-8"))
    assert got.acquisition.instrument == full.acquisition.instrument
    assert [c.detector_id for c in got.channels] == [c.detector_id for c in full.channels]
    with pytest.raises(CorruptFile, match="stored OME-XML cannot be parsed"):
        enrich(bare, "<OME><Image")
