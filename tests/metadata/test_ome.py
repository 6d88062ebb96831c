"""OME metadata onto the model (`from_ome`), unit conversion, OME-XML out (`image_to_ome_xml`)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ome_types import from_xml
from ome_types.model import UnitsLength, UnitsTime

from quantscope.io import open_sources
from quantscope.metadata import (
    ImageMetadata,
    from_ome,
    image_to_ome_xml,
    length_um,
    time_s,
    wavelength_nm,
)
from quantscope.model import (
    Acquisition,
    Channel,
    Image,
    Instrument,
    Objective,
    PlatePosition,
)


def vendor_metadata(path: Path, scene: int = 0) -> ImageMetadata:
    with open_sources(path) as sources:
        s = sources[scene]
        ome = s.ome()
        assert ome is not None, f"{path.name}: the reader gave no OME metadata"
        return from_ome(ome, s.ome_image_index)


def ome_sample(shared_data: Path, rel: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ome-types notes the ID fixes it makes in old samples
        return from_xml(shared_data / "ome_xml_metadata" / rel)


# ------------------------------------------------------------------------- vendor files


def test_czi_metadata(vendor_dir: Path) -> None:
    md = vendor_metadata(vendor_dir / "czi" / "aicsimageio_s_1_t_1_c_1_z_1.czi")
    obj = md.acquisition.objective
    assert obj is not None
    assert obj.lens_na == pytest.approx(0.8)
    assert obj.nominal_magnification == pytest.approx(20.0)
    assert obj.immersion == "Air"
    assert obj.model == "Plan-Apochromat 20x/0.8 M27"
    assert [c.name for c in md.channels] == ["Bright"]
    x, y, z = md.physical_size
    assert x == pytest.approx(1.0833333, rel=1e-5) and y == pytest.approx(1.0833333, rel=1e-5)
    assert z is None
    assert md.acquisition.acquired_at is not None
    assert md.acquisition.acquired_at.date().isoformat() == "2019-06-27"


def test_ome_tiff_metadata_matches_czi(vendor_dir: Path) -> None:
    md = vendor_metadata(vendor_dir / "ome_tiff" / "aicsimageio_s_1_t_1_c_1_z_1.ome.tiff")
    czi = vendor_metadata(vendor_dir / "czi" / "aicsimageio_s_1_t_1_c_1_z_1.czi")
    assert md.name == "s_1_t_1_c_1_z_1.czi #1"
    assert md.acquisition.objective is not None and czi.acquisition.objective is not None
    for field in ("lens_na", "nominal_magnification", "immersion", "model"):
        assert getattr(md.acquisition.objective, field) == getattr(czi.acquisition.objective, field)
    assert md.acquisition.instrument is not None
    assert md.acquisition.instrument.microscope_type == "Inverted"
    assert [c.name for c in md.channels] == [c.name for c in czi.channels] == ["Bright"]
    assert md.channels[0].fluor == "TL Brightfield"
    assert md.channels[0].exposure_time_s == pytest.approx(10.0)  # as the file says, in s
    assert md.physical_size[0] == pytest.approx(czi.physical_size[0], rel=1e-9)


def test_nd2_metadata(vendor_dir: Path) -> None:
    md = vendor_metadata(vendor_dir / "nd2" / "pims_cluster.nd2")
    assert [c.name for c in md.channels] == ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"]
    assert [c.excitation_wavelength_nm for c in md.channels] == [488.0, 561.0]
    assert [c.emission_wavelength_nm for c in md.channels] == [
        525.0,
        700.0,
    ]  # exact, no 700.0000001
    assert [c.index for c in md.channels] == [0, 1]
    x, y, z = md.physical_size
    assert x == pytest.approx(0.1678, rel=1e-3) and y == pytest.approx(0.1678, rel=1e-3)
    assert z == pytest.approx(0.5)
    obj = md.acquisition.objective
    assert obj is not None and obj.lens_na == pytest.approx(0.95)
    assert obj.nominal_magnification == pytest.approx(60.0)
    assert all(c.exposure_time_s is not None and 0 < c.exposure_time_s < 10 for c in md.channels)


def test_from_ome_without_metadata() -> None:
    assert from_ome(None) == ImageMetadata()


def test_from_ome_index_out_of_range(shared_data: Path) -> None:
    ome = ome_sample(shared_data, "ome-types_testdata/MMStack.ome.xml")
    assert from_ome(ome, len(ome.images)) == ImageMetadata()
    assert from_ome(ome, 1).name != from_ome(ome, 0).name


# ---------------------------------------------------------------------- OME-XML samples


def test_ms_units_are_converted(shared_data: Path) -> None:
    """Micro-Manager writes exposure and time increment in ms."""
    md = from_ome(ome_sample(shared_data, "ome-types_testdata/MMStack.ome.xml"), 0)
    assert md.acquisition.time_increment_s == pytest.approx(0.001)
    assert all(c.exposure_time_s == pytest.approx(0.001) for c in md.channels)
    assert md.physical_size == (2.0, 2.0, 1.75)


def test_alternate_units_equal_default_units(shared_data: Path) -> None:
    """The OME sample pair describes one instrument in pm/mm and in nm/µm."""
    base = "ome-model_samples_2016-06/instrument-units-"
    alt = from_ome(ome_sample(shared_data, base + "alternate.ome.xml"), 0)
    default = from_ome(ome_sample(shared_data, base + "default.ome.xml"), 0)
    assert alt.channels[0].excitation_wavelength_nm == pytest.approx(610.5)
    assert alt.channels[0].emission_wavelength_nm == pytest.approx(488.6)
    assert alt == default


def test_plate_positions_from_hcs_sample(shared_data: Path) -> None:
    ome = ome_sample(
        shared_data, "ome-model_samples_2016-06/one-screen-one-plate-four-wells.ome.xml"
    )
    positions = [from_ome(ome, i).position for i in range(len(ome.images))]
    assert all(p is not None for p in positions)
    got = [(p.row, p.column, p.field) for p in positions if p is not None]
    # site = 1 + position of the WellSample within its well (OME's Index is plate-wide)
    assert got == [
        (1, 1, 1),
        (1, 1, 2),
        (1, 2, 1),
        (1, 2, 2),
        (2, 1, 1),
        (2, 1, 2),
        (2, 1, 3),
        (2, 1, 4),
        (2, 1, 5),
        (2, 2, 1),
        (2, 2, 2),
    ]
    assert {p.plate for p in positions if p is not None} == {"Plate:1"}  # no name: the ID


def _plate_ome(wells: dict[tuple[int, int], list[int]]) -> Any:
    """An OME with one image per WellSample; ``wells`` maps (row, column) to sample indices."""
    from ome_types import OME
    from ome_types import model as m

    images, ome_wells, n = [], [], 0
    for w, ((row, col), indices) in enumerate(wells.items()):
        samples = []
        for index in indices:
            images.append(
                m.Image(
                    id=f"Image:{n}",
                    pixels=m.Pixels(
                        id=f"Pixels:{n}",
                        dimension_order="XYZCT",
                        type="uint8",
                        size_x=1,
                        size_y=1,
                        size_z=1,
                        size_c=1,
                        size_t=1,
                        metadata_only=m.MetadataOnly(),
                    ),
                )
            )
            samples.append(
                m.WellSample(
                    id=f"WellSample:{n}", index=index, image_ref=m.ImageRef(id=f"Image:{n}")
                )
            )
            n += 1
        ome_wells.append(m.Well(id=f"Well:{w}", row=row, column=col, well_samples=samples))
    return OME(images=images, plates=[m.Plate(id="Plate:0", name="P", wells=ome_wells)])


def _fields(ome: Any) -> list[tuple[int, int, int]]:
    out = []
    for i in range(len(ome.images)):
        p = from_ome(ome, i).position
        assert p is not None and p.plate == "P"
        out.append((p.row, p.column, p.field))
    return out


def test_field_of_a_single_sample_file_is_its_index() -> None:
    """A file describing one field (quantscope's OME-XML, per-field OME-TIFFs) has nothing to
    rank against: @Index carries the field."""
    assert _fields(_plate_ome({(1, 2): [3]})) == [(1, 2, 4)]  # 0-based @Index 3 is site 4


def test_field_from_indices_that_repeat_across_wells() -> None:
    # indices 0, 2 and 0 are not plate-unique, so they are per-well field numbers
    assert _fields(_plate_ome({(0, 0): [0, 2], (0, 1): [0]})) == [(0, 0, 1), (0, 0, 3), (0, 1, 1)]


def test_field_from_plate_wide_indices_is_the_position_in_the_well() -> None:
    assert _fields(_plate_ome({(0, 0): [4, 9], (0, 1): [5]})) == [(0, 0, 1), (0, 0, 2), (0, 1, 1)]


# ------------------------------------------------------------------------- unit helpers


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (500, "nm", 0.5),
        (0.5, "mm", 500.0),
        (2, "µm", 2.0),
        (2, None, 2.0),  # OME's default length unit is µm
        (2, "um", 2.0),
        (2, "\u03bcm", 2.0),  # Greek mu
        (1.5, UnitsLength.NANOMETER, 0.0015),
        (3, "cm", 30_000.0),
        (1, "in", 25_400.0),
        (72, "pt", 25_400.0),
        (5000, "Å", 0.5),
        ("0.25", "µm", 0.25),
    ],
)
def test_length_um(value: Any, unit: Any, expected: float) -> None:
    assert length_um(value, unit) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (3, "pixel"),
        (3, UnitsLength.PIXEL),
        (3, "reference frame"),
        (3, "furlong"),
        (None, "nm"),
        ("abc", "µm"),
        (float("nan"), "µm"),
        (float("inf"), "µm"),
    ],
)
def test_length_um_drops_what_is_not_a_length(value: Any, unit: Any) -> None:
    assert length_um(value, unit) is None


def test_length_um_knows_every_ome_length_unit() -> None:
    for unit in UnitsLength:
        got = length_um(1, unit)
        if unit in (UnitsLength.PIXEL, UnitsLength.REFERENCEFRAME):
            assert got is None
        else:
            assert got is not None and got > 0, unit
    assert length_um(1, "pc") == pytest.approx(3.0857e22, rel=1e-4)  # parsec, not pica
    assert length_um(1, "ly") == pytest.approx(9.4607e21, rel=1e-4)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (250, "ms", 0.25),
        (2, "min", 120.0),
        (1, "h", 3600.0),
        (3, None, 3.0),  # OME's default time unit is s
        (5, UnitsTime.MILLISECOND, 0.005),
        (7, "µs", 7e-6),
        (7, "us", 7e-6),
        (1, "d", 86_400.0),
    ],
)
def test_time_s(value: Any, unit: Any, expected: float) -> None:
    assert time_s(value, unit) == pytest.approx(expected, rel=1e-12)


def test_time_s_knows_every_ome_time_unit() -> None:
    for unit in UnitsTime:
        got = time_s(1, unit)
        assert got is not None and got > 0, unit
    assert time_s(1, "fortnight") is None
    assert time_s(None, "s") is None


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (488, None, 488.0),  # OME's default wavelength unit is nm
        (488, "nm", 488.0),
        (0.488, "µm", 488.0),
        (488600, "pm", 488.6),
        (4880, "Å", 488.0),
        (700, UnitsLength.NANOMETER, 700.0),
    ],
)
def test_wavelength_nm(value: Any, unit: Any, expected: float) -> None:
    assert wavelength_nm(value, unit) == pytest.approx(expected, rel=1e-12)


@given(st.integers(min_value=200, max_value=2000))
def test_wavelength_in_nm_is_exact(nm: int) -> None:
    assert wavelength_nm(nm, "nm") == float(nm)
    assert wavelength_nm(nm) == float(nm)
    assert wavelength_nm(nm, "pixel") is None


# ------------------------------------------------------------------------- OME-XML out


def full_image() -> Image:
    return Image(
        id="img-1",
        name="B03 field 2",
        shape=(2, 2, 3, 40, 50),
        dtype="uint16",
        physical_size_x_um=0.325,
        physical_size_y_um=0.33,
        physical_size_z_um=1.5,
        channels=(
            Channel(
                index=0,
                name="DAPI",
                color="0000FF",
                excitation_wavelength_nm=405.0,
                emission_wavelength_nm=450.0,
                fluor="DAPI",
            ),
            Channel(
                index=1,
                name="GFP",
                color="00FF00",
                excitation_wavelength_nm=488.0,
                emission_wavelength_nm=525.0,
            ),
        ),
        acquisition=Acquisition(
            acquired_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            instrument=Instrument(manufacturer="Nikon", model="Ti2", microscope_type="Inverted"),
            objective=Objective(
                model="Plan Apo 20x", nominal_magnification=20.0, lens_na=0.75, immersion="Air"
            ),
            time_increment_s=30.0,
        ),
        position=PlatePosition(plate="P1", row=1, column=2, field=2),
    )


def test_ome_xml_validates_and_round_trips() -> None:
    image = full_image()
    xml = image_to_ome_xml(image)
    ome = from_xml(xml, validate=True)  # against the OME 2016-06 XSD
    px = ome.images[0].pixels
    assert (px.size_t, px.size_c, px.size_z, px.size_y, px.size_x) == image.shape
    assert px.type.value == "uint16"
    assert px.metadata_only is not None

    md = from_ome(ome, 0)
    assert md.name == image.name
    assert [c.name for c in md.channels] == ["DAPI", "GFP"]
    assert [c.color for c in md.channels] == ["0000FF", "00FF00"]
    assert [c.excitation_wavelength_nm for c in md.channels] == [405.0, 488.0]
    assert [c.emission_wavelength_nm for c in md.channels] == [450.0, 525.0]
    assert md.channels[0].fluor == "DAPI"
    assert md.physical_size == (0.325, 0.33, 1.5)
    # instrument, objective (NA 0.75), dt, date; the objective gets the id OME requires
    assert md.acquisition.objective is not None and md.acquisition.objective.id == "Objective:0"
    assert md.acquisition == image.acquisition.model_copy(
        update={"objective": md.acquisition.objective}
    )
    assert md.acquisition.objective.model_copy(update={"id": None}) == image.acquisition.objective
    assert md.position == image.position  # plate, row, column and field 2
    assert md.position is not None and md.position.well == "B03"


def test_ome_xml_of_a_minimal_image() -> None:
    image = Image(id="x", name="bare", shape=(1, 1, 1, 8, 9), dtype="float32")
    ome = from_xml(image_to_ome_xml(image), validate=True)
    px = ome.images[0].pixels
    assert px.type.value == "float"
    assert px.physical_size_x is None and px.channels == []
    assert ome.plates == [] and ome.instruments == []
    md = from_ome(ome, 0)
    assert md.physical_size == (None, None, None) and md.position is None


def test_ome_xml_drops_values_outside_ome_vocabulary() -> None:
    image = full_image().model_copy(
        update={
            "acquisition": Acquisition(
                instrument=Instrument(microscope_type="Spinning disk"),
                objective=Objective(lens_na=1.4, immersion="Oil"),
            )
        }
    )
    ome = from_xml(image_to_ome_xml(image), validate=True)  # still valid OME
    inst = ome.instruments[0]
    assert inst.microscope is not None and inst.microscope.type is None
    assert inst.objectives[0].immersion.value == "Oil"
    assert inst.objectives[0].lens_na == pytest.approx(1.4)


def test_immersion_outside_ome_vocabulary_is_rejected() -> None:
    with pytest.raises(ValueError, match="Oil"):
        Objective(lens_na=1.4, immersion="Honey")
    assert Objective(immersion="water dipping").immersion == "WaterDipping"


@pytest.mark.parametrize(
    ("dtype", "ome_type"),
    [
        ("uint8", "uint8"),
        ("int16", "int16"),
        ("uint32", "uint32"),
        ("float64", "double"),
        ("bool", "bit"),
    ],
)
def test_ome_xml_pixel_types(dtype: str, ome_type: str) -> None:
    image = Image(id="x", name="t", shape=(1, 1, 1, 4, 4), dtype=dtype)
    assert from_xml(image_to_ome_xml(image)).images[0].pixels.type.value == ome_type
