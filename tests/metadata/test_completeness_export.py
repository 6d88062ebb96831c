"""Tier completeness (NBO tiers 1-2, REMBI) from the requirement lists, and the exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
from ome_types import from_xml

from quantscope.errors import InvalidInput
from quantscope.metadata import (
    ImageRecord,
    check_completeness,
    enrich,
    export_metadata,
    from_ome,
    image_record,
    image_to_jsonld,
    image_to_ome_xml,
    metadata_json_schema,
    ome_xml_with_annotations,
    requirements,
    summarize,
)
from quantscope.model import (
    Acquisition,
    Annotation,
    Channel,
    Detector,
    Image,
    ImagingEnvironment,
    Instrument,
    LightSource,
    Objective,
    ObjectiveSettings,
    SourceFile,
    StagePosition,
)


def a(key: str, value: str, curie: str | None = None) -> Annotation:
    return Annotation(target_id="img", key=key, value=value, curie=curie, source="test")


TIER1_ANNOTATIONS = [
    a("image_acquisition.software", "Micro-Manager 2.0"),
    a("biosample.organism", "Homo sapiens", "NCBITaxon:9606"),
    a("biosample.biological_entity", "U2OS cells"),
    a("biosample.live", "false"),
    a("specimen.labelling_method", "immunofluorescence"),
    a("specimen.cover_glass", "#1.5"),
]


def complete_image(**changes: object) -> Image:
    image = Image(
        id="img",
        name="well A01",
        shape=(1, 2, 1, 8, 8),
        dtype="uint16",
        physical_size_x_um=0.325,
        physical_size_y_um=0.325,
        significant_bits=12,
        channels=(
            Channel(
                index=0,
                name="DAPI",
                fluor="DAPI",
                illumination_type="Epifluorescence",
                contrast_method="Fluorescence",
                excitation_wavelength_nm=405.0,
                emission_wavelength_nm=450.0,
                detector_id="Detector:0",
                detector_gain=1.0,
                detector_binning="1x1",
            ),
            Channel(
                index=1,
                name="BF",
                illumination_type="Transmitted",
                contrast_method="Brightfield",
                detector_id="Detector:0",
                detector_gain=1.0,
            ),
        ),
        acquisition=Acquisition(
            acquired_at=datetime(2024, 3, 1, tzinfo=UTC),
            instrument=Instrument(
                manufacturer="Nikon",
                model="Ti2",
                microscope_type="Inverted",
                light_sources=(LightSource(id="LightSource:0", kind="Laser", power_mw=50.0),),
                detectors=(Detector(id="Detector:0", manufacturer="Hamamatsu", model="ORCA"),),
            ),
            objective=Objective(
                manufacturer="Nikon",
                model="Plan Apo 40x",
                nominal_magnification=40.0,
                lens_na=0.95,
                immersion="Air",
                correction="PlanApo",
            ),
            objective_settings=ObjectiveSettings(medium="Air"),
            environment=ImagingEnvironment(
                temperature_c=37.0, co2_percent=5.0, humidity_percent=90.0
            ),
        ),
    )
    return image.model_copy(update=changes)


def test_requirement_lists_are_data() -> None:
    tier1, tier2 = requirements("nbo", 1), requirements("nbo", 2)
    assert {r.id for r in tier1} < {r.id for r in tier2}  # tiers are cumulative
    assert all(r.tier == 1 for r in tier1)
    assert {"Objective.LensNA", "Channel.IlluminationType", "Sample.Organism"} <= {
        r.id for r in tier1
    }
    assert "Objective.WorkingDistance" in {r.id for r in tier2} - {r.id for r in tier1}
    rembi = requirements("rembi")
    assert {r.module for r in rembi} >= {"study", "biosample", "specimen", "image_acquisition"}
    text = resources.files("quantscope.metadata").joinpath("data/requirements.yaml").read_text()
    assert all(r.id in text for r in tier2 + rembi)
    with pytest.raises(ValueError, match="tier 3"):
        requirements("nbo", 3)
    with pytest.raises(ValueError, match="unknown standard"):
        requirements("mifa")


def test_a_complete_image_meets_tier_1() -> None:
    rep = check_completeness(complete_image(), TIER1_ANNOTATIONS, standard="nbo", tier=1)
    assert rep.missing == []
    assert rep.score == 1.0 and rep.complete
    # per-channel requirements count per channel; the fluorophore only for fluorescence
    assert "Channel.IlluminationType[BF]" in rep.met
    assert "Fluorophore.Name[DAPI]" in rep.met and "Fluorophore.Name[BF]" not in rep.met


def test_missing_fields_are_named_and_scored() -> None:
    image = complete_image()
    obj = image.acquisition.objective
    assert obj is not None
    acq = image.acquisition.model_copy(
        update={"objective": obj.model_copy(update={"lens_na": None}), "environment": None}
    )
    ch0 = image.channels[0].model_copy(update={"fluor": None})
    worse = image.model_copy(update={"acquisition": acq, "channels": (ch0, image.channels[1])})
    rep = check_completeness(worse, TIER1_ANNOTATIONS[1:], tier=1)
    missing = {i for i, _ in rep.missing}
    assert missing == {
        "Objective.LensNA",
        "ImagingEnvironment.Temperature",
        "ImagingEnvironment.CO2Percent",
        "ImagingEnvironment.Humidity",
        "Fluorophore.Name[DAPI]",
        "AcquisitionSoftware.Name",
    }
    assert dict(rep.missing)["Objective.LensNA"] == "objective.lens_na"
    assert rep.score == pytest.approx(len(rep.met) / (len(rep.met) + 6))


def test_tier_2_asks_for_more() -> None:
    rep = check_completeness(complete_image(), TIER1_ANNOTATIONS, tier=2)
    missing = {i for i, _ in rep.missing}
    assert "Objective.WorkingDistance" in missing and "StageLabel" in missing
    assert not any(i.startswith("Objective.LensNA") for i in missing)


def test_reader_made_channel_names_do_not_count() -> None:
    image = complete_image(channels=(Channel(index=0, name="C0"),))
    rep = check_completeness(image, [], tier=1)
    assert "Channel.Name[C0]" in {i for i, _ in rep.missing}


def test_rembi_needs_study_and_a_taxon() -> None:
    anns = [
        a("study.title", "Nuclear size under nocodazole in U2OS cells"),
        a("study.description", "Dose response of nuclear size"),
        a("study.authors", "Ada Lovelace"),
        a("study.license", "CC-BY-4.0"),
        a("study.release_date", "2024-05-01"),
        a("biosample.organism", "Homo sapiens"),  # no NCBI taxon
        a("biosample.biological_entity", "U2OS cells"),
        a("specimen.preparation", "fixed, stained"),
    ]
    rep = check_completeness(complete_image(), anns, standard="rembi")
    assert [i for i, _ in rep.missing] == [
        "Biosample.Organism.NCBITaxon",
        "ImageAcquisition.ImagingMethod",
    ]
    anns[5] = a("biosample.organism", "Homo sapiens", "NCBITaxon:9606")
    anns.append(a("image_acquisition.imaging_method", "widefield microscopy"))
    assert check_completeness(complete_image(), anns, standard="rembi").complete


def test_summary() -> None:
    reps = [
        check_completeness(complete_image(), TIER1_ANNOTATIONS),
        check_completeness(complete_image(), []),
    ]
    s = summarize(reps)
    assert s["images"] == 2 and s["complete"] == 1
    assert s["min_score"] < s["mean_score"] < 1
    assert {"id": "Sample.Organism", "images": 1} in s["missing"]
    assert summarize([])["images"] == 0


# -------------------------------------------------------------------------------- exports


def test_json_export_and_its_published_schema() -> None:
    schema = metadata_json_schema()
    published = json.loads(
        resources.files("quantscope.metadata")
        .joinpath("data/image-metadata.schema.json")
        .read_text("utf-8")
    )
    assert published == schema, "regenerate data/image-metadata.schema.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"image"}
    defs = schema["$defs"]
    assert "Sagittal" not in json.dumps(defs)
    assert defs["IlluminationType"]["enum"] == [
        "Transmitted", "Epifluorescence", "Oblique", "NonLinear", "Other"
    ]  # fmt: skip
    assert "objective" in defs["Acquisition"]["properties"]
    assert "working_distance_um" in defs["Objective"]["properties"]
    record = image_record(complete_image(), TIER1_ANNOTATIONS)
    # the record is what the schema describes: it parses back into the same model
    assert ImageRecord.model_validate(record).image == complete_image()
    assert record["image"]["acquisition"]["objective"]["lens_na"] == 0.95
    assert record["annotations"][1]["curie"] == "NCBITaxon:9606"
    bad = json.loads(json.dumps(record))
    bad["image"]["channels"][0]["illumination_type"] = "Candlelight"
    with pytest.raises(ValueError, match="illumination_type"):
        ImageRecord.model_validate(bad)
    assert json.loads(export_metadata(complete_image(), TIER1_ANNOTATIONS, "json")) == record


def test_ome_xml_export_with_annotations_validates() -> None:
    anns = [*TIER1_ANNOTATIONS, a("tag", "control")]
    xml = ome_xml_with_annotations(complete_image(), anns)
    ome = from_xml(xml, validate=True)
    sa = ome.structured_annotations
    assert sa is not None
    [m] = sa.map_annotations
    assert m.namespace == "rembi:1.5"
    assert m.value["biosample.organism"] == "Homo sapiens [NCBITaxon:9606]"
    assert [t.value for t in sa.tag_annotations] == ["control"]
    assert len(ome.images[0].annotation_refs) == 2
    assert (
        from_ome(ome, 0).acquisition
        == from_ome(from_xml(image_to_ome_xml(complete_image())), 0).acquisition
    )
    with pytest.raises(InvalidInput, match="unknown export format"):
        export_metadata(complete_image(), [], "xlsx")


def test_jsonld_export() -> None:
    anns = [
        *TIER1_ANNOTATIONS,
        a("tag", "control"),
        Annotation(
            target_id="img",
            key="biosample.treatment.concentration",
            value="100 nM",
            num_value=0.1,
            unit="µM",
        ),
        a("study.authors", "Ada Lovelace"),
        a("study.authors", "Alan Turing"),
    ]
    doc = image_to_jsonld(complete_image(), anns)
    assert doc["@context"]["schema"] == "https://schema.org/"
    assert doc["@type"] == "schema:ImageObject"
    org = doc["rembi:biosample"]["rembi:organism"]
    assert org["@id"] == "http://purl.obolibrary.org/obo/NCBITaxon_9606"
    assert org["schema:termCode"] == "NCBITaxon:9606"
    conc = doc["rembi:biosample"]["rembi:treatment.concentration"]
    assert conc["schema:value"] == 0.1 and conc["schema:unitText"] == "µM"
    assert doc["rembi:study"]["rembi:authors"] == ["Ada Lovelace", "Alan Turing"]
    assert doc["schema:keywords"] == ["control"]
    inst = doc["rembi:imageAcquisition"]["rembi:imagingInstrument"]
    assert inst["ome:Objective"]["ome:LensNA"] == 0.95
    assert doc["rembi:imageData"]["rembi:pixelSizeX"]["schema:value"] == 0.325
    assert json.loads(export_metadata(complete_image(), anns, "jsonld")) == doc


def test_enrich_restores_instrument_components(tmp_path: Path) -> None:
    """The catalog keeps per-channel columns; the stored OME-XML has the components."""
    full = complete_image(
        sources=(SourceFile(path="/x.tif", size=1, sha256="0" * 64, reader="t"),),
        acquisition=complete_image().acquisition.model_copy(
            update={"stage": StagePosition(x_um=1.0, y_um=2.0)}
        ),
    )
    xml = image_to_ome_xml(full)
    inst = full.acquisition.instrument
    assert inst is not None
    slim = full.model_copy(
        update={
            "acquisition": full.acquisition.model_copy(
                update={"instrument": Instrument(manufacturer="Nikon", model="Ti2")}
            ),
            "channels": tuple(c.model_copy(update={"detector_id": None}) for c in full.channels),
        }
    )
    back = enrich(slim, xml)
    assert back.acquisition.instrument is not None
    assert back.acquisition.instrument.detectors == inst.detectors
    assert back.acquisition.instrument.light_sources == inst.light_sources
    assert [c.detector_id for c in back.channels] == ["Detector:0", "Detector:0"]
    assert enrich(slim, None) is slim
