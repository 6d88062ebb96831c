"""The metadata model of issue 3: OME vocabularies, instrument components, annotations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from quantscope.model import (
    AcquisitionMode,
    Annotation,
    Binning,
    Channel,
    ContrastMethod,
    Correction,
    Detector,
    IlluminationType,
    ImagingEnvironment,
    Immersion,
    Instrument,
    LightSource,
    LightSourceKind,
    Objective,
)


@pytest.mark.parametrize(
    ("enum", "text", "member"),
    [
        (Immersion, "oil", Immersion.OIL),
        (Immersion, "Water dipping", Immersion.WATER_DIPPING),
        (Immersion, "dry", Immersion.AIR),
        (Correction, "Plan Apochromat", Correction.PLAN_APO),
        (Correction, "plan-fluor", Correction.PLAN_FLUOR),
        (AcquisitionMode, "confocal", AcquisitionMode.LASER_SCANNING_CONFOCAL),
        (AcquisitionMode, "spinning disk", AcquisitionMode.SPINNING_DISK_CONFOCAL),
        (AcquisitionMode, "light sheet", AcquisitionMode.SPIM),
        (ContrastMethod, "phase contrast", ContrastMethod.PHASE),
        (IlluminationType, "EPI", IlluminationType.EPIFLUORESCENCE),
        (Binning, "2x2", Binning.B2X2),
    ],
)
def test_vocabularies_parse_common_spellings(enum: type, text: str, member: object) -> None:
    assert enum.parse(text) is member  # type: ignore[attr-defined]
    assert enum(text) is member


def test_vocabulary_values_are_ome_strings() -> None:
    assert Immersion.WATER_DIPPING == "WaterDipping"
    assert Immersion.parse("Honey") is None and Immersion.parse(None) is None
    assert Objective(immersion="oil", correction="planapo").model_dump(mode="json") == {
        **Objective().model_dump(mode="json"),
        "immersion": "Oil",
        "correction": "PlanApo",
    }
    with pytest.raises(ValidationError, match="immersion"):
        Objective(immersion="Honey")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lens_na": 0},
        {"lens_na": 2.5},
        {"working_distance_um": -1},
        {"nominal_magnification": 0},
    ],
)
def test_objective_ranges(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Objective(**kwargs)


def test_channel_ranges() -> None:
    with pytest.raises(ValidationError):
        Channel(index=0, name="x", light_source_attenuation=1.5)
    with pytest.raises(ValidationError):
        Channel(index=0, name="x", excitation_wavelength_nm=0)
    with pytest.raises(ValidationError):
        ImagingEnvironment(humidity_percent=120)


def test_instrument_lookups() -> None:
    inst = Instrument(
        light_sources=(LightSource(id="LightSource:0", kind="laser", wavelength_nm=488),),
        detectors=(Detector(id="Detector:0", type="sCMOS"),),
    )
    assert inst.light_source("LightSource:0") is inst.light_sources[0]
    assert inst.light_sources[0].kind is LightSourceKind.LASER
    assert inst.detector("Detector:0") is not None and inst.detector("Detector:0").type == "CMOS"
    assert inst.detector(None) is None and inst.light_source("nope") is None


def test_annotation_validation() -> None:
    a = Annotation(target_id="abc", key="biosample.organism", value="Homo sapiens",
                   curie="NCBITaxon:9606")  # fmt: skip
    assert a.target_kind == "image" and not a.is_tag
    assert Annotation(target_id="abc", key="biosample.cell_line", curie="CVCL_0030").curie
    assert Annotation(target_id="P1", target_kind="plate", key="tag", value="control").is_tag
    with pytest.raises(ValidationError, match="dotted name"):
        Annotation(target_id="abc", key="bio sample", value="x")
    with pytest.raises(ValidationError, match="not a CURIE"):
        Annotation(target_id="abc", key="biosample.organism", value="x", curie="human")
    with pytest.raises(ValidationError, match="no value"):
        Annotation(target_id="abc", key="study.title")
    with pytest.raises(ValidationError, match="a tag needs a name"):
        Annotation(target_id="abc", key="tag", num_value=1.0)
    with pytest.raises(ValidationError):
        Annotation(target_id="abc", target_kind="well", key="tag", value="x")  # type: ignore[arg-type]
