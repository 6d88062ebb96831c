"""Annotations, tags and ontology terms on images, plates and datasets; the full metadata model
through the catalog; sidecars applied to a repository — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from quantscope.catalog import ImageRegistration, Repository
from quantscope.errors import InvalidInput, NotFound
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
    PlatePosition,
    SourceFile,
    StagePosition,
)


def _image(i: int, folder: Path, plate: bool = True) -> Image:
    return Image(
        id=f"{i:x}" * 16,
        name=f"img{i}",
        shape=(1, 1, 1, 8, 8),
        dtype="uint16",
        significant_bits=12,
        description="a test image",
        channels=(
            Channel(
                index=0,
                name="DAPI",
                illumination_type="Epifluorescence",
                contrast_method="Fluorescence",
                acquisition_mode="SpinningDiskConfocal",
                pinhole_size_um=50.0,
                light_source_id="LightSource:0",
                light_source_attenuation=0.5,
                detector_id="Detector:0",
                detector_gain=2.0,
                detector_binning="2x2",
                detector_read_out_rate_mhz=200.0,
            ),
        ),
        acquisition=Acquisition(
            acquired_at=datetime(2024, 3, 1, tzinfo=UTC),
            instrument=Instrument(
                manufacturer="Nikon",
                light_sources=(
                    LightSource(id="LightSource:0", kind="Laser", wavelength_nm=405.0, power_mw=20),
                ),
                detectors=(Detector(id="Detector:0", model="ORCA", type="CMOS"),),
            ),
            objective=Objective(
                lens_na=1.3,
                immersion="Oil",
                correction="PlanApo",
                working_distance_um=200.0,
                calibrated_magnification=39.8,
            ),
            objective_settings=ObjectiveSettings(medium="Oil", refractive_index=1.518),
            environment=ImagingEnvironment(temperature_c=37.0, co2_percent=5.0),
            stage=StagePosition(x_um=100.0, y_um=-5.0, label="pos 1"),
        ),
        position=PlatePosition(plate="P1", row=0, column=i) if plate else None,
        sources=(
            SourceFile(
                path=str(folder / f"img{i}.tif"), size=1, sha256=f"{i:064x}", reader="tifffile"
            ),
        ),
        store_path=f"images/{i}.ome.zarr",
    )


@pytest.fixture
def repo(tmp_path: Path, catalog_url: str | None) -> Repository:
    r = Repository.init(tmp_path / "repo", catalog_url)
    folder = tmp_path / "data"
    r.images.register_many([ImageRegistration(_image(i, folder), {}, []) for i in range(3)])
    r.images.register(ImageRegistration(_image(3, tmp_path / "elsewhere", plate=False), {}, []))
    return r


def _id(i: int) -> str:
    return f"{i:x}" * 16


def test_full_metadata_round_trips_through_the_catalog(repo: Repository) -> None:
    got = repo.images.get(_id(0))
    want = _image(0, Path("/unused"))
    assert got.significant_bits == 12 and got.description == "a test image"
    acq = got.acquisition
    assert acq.objective == Objective(
        lens_na=1.3, immersion="Oil", correction="PlanApo", working_distance_um=200.0,
        calibrated_magnification=39.8,
    )  # fmt: skip
    assert acq.objective_settings == want.acquisition.objective_settings
    assert acq.environment == want.acquisition.environment
    assert acq.stage == want.acquisition.stage
    ch = got.channels[0]
    for field in (
        "illumination_type",
        "contrast_method",
        "acquisition_mode",
        "pinhole_size_um",
        "light_source_attenuation",
        "detector_gain",
        "detector_binning",
        "detector_read_out_rate_mhz",
    ):
        assert getattr(ch, field) == getattr(want.channels[0], field), field
    # the light source's wavelength is recorded on the channel row
    assert ch.light_source_wavelength_nm == 405.0
    import sqlalchemy as sa

    from quantscope.catalog import _schema as S

    with repo.engine.connect() as conn:
        row = conn.execute(sa.select(S.channels).where(S.channels.c.image_id == _id(0))).one()
    assert (row.light_source_kind, row.light_source_power_mw) == ("Laser", 20.0)
    assert (row.detector_type, row.detector_model) == ("CMOS", "ORCA")


def test_tags_on_images_plates_and_datasets(repo: Repository) -> None:
    assert (
        repo.annotations.tag([_id(0), _id(1)[:6], "plate:P1", "dataset:screen-1"], ["control"]) == 4
    )
    assert repo.annotations.tag([_id(0)], ["control", "pilot"]) == 1  # "control" was there already
    assert repo.annotations.tags(_id(0)) == ["control", "pilot"]
    assert repo.annotations.tags("plate:P1") == ["control"]
    assert repo.annotations.tags("dataset:screen-1") == ["control"]
    assert repo.annotations.untag([_id(0)], ["control"]) == 1
    assert repo.annotations.tags(_id(0)) == ["pilot"]
    with pytest.raises(NotFound, match="no plate named 'P9'"):
        repo.annotations.tag(["plate:P9"], ["x"])
    with pytest.raises(NotFound, match="no image"):
        repo.annotations.tag(["ffffeeee"], ["x"])
    with pytest.raises(InvalidInput, match="no tag"):
        repo.annotations.tag([_id(0)], [" "])
    with pytest.raises(InvalidInput, match="no target"):
        repo.annotations.tag([], ["x"])


def test_values_are_checked_and_single_valued_keys_replaced(repo: Repository) -> None:
    assert repo.annotations.set([_id(0)], "biosample.organism", "Homo sapiens") == 1
    repo.annotations.set([_id(0)], "biosample.organism", "NCBITaxon:10090")
    [org] = repo.annotations.all("image", [_id(0)], "biosample.organism")
    assert (org.value, org.curie, org.source) == ("Mus musculus", "NCBITaxon:10090", "user")
    repo.annotations.set([_id(0)], "biosample.treatment.duration", "90 min")
    [d] = repo.annotations.all("image", [_id(0)], "biosample.treatment.duration")
    assert (d.num_value, d.unit, d.value) == (5400.0, "s", "90 min")
    repo.annotations.set([_id(0)], "study.authors", "Ada Lovelace")
    repo.annotations.set([_id(0)], "study.authors", "Alan Turing")  # multi-valued: added
    assert [a.value for a in repo.annotations.all("image", [_id(0)], "study.authors")] == [
        "Ada Lovelace",
        "Alan Turing",
    ]
    with pytest.raises(InvalidInput, match=r"did you mean 'biosample\.organism'"):
        repo.annotations.set([_id(0)], "biosample.organsim", "x")
    with pytest.raises(InvalidInput, match="unit 'parsec'"):
        repo.annotations.set([_id(0)], "biosample.treatment.duration", "3 parsec")
    assert repo.annotations.remove([_id(0)], "study.authors") == 2
    assert repo.annotations.all("image", [_id(0)], "study.authors") == []


def test_annotate_in_bulk_checks_targets(repo: Repository) -> None:
    anns = [Annotation(target_id=_id(i), key="custom.batch", value=f"b{i % 2}") for i in range(3)]
    assert repo.annotations.add(anns) == 3
    assert repo.annotations.add(anns) == 0  # custom keys are multi-valued: nothing new
    by_image = repo.annotations.of_images([_id(0), _id(1), _id(3)])
    assert set(by_image) == {_id(0), _id(1)}
    with pytest.raises(NotFound, match="no image 'nope'"):
        repo.annotations.add([Annotation(target_id="nope", key="tag", value="x")])
    assert repo.annotations.all(key="custom.batch")[0].value == "b0"


def test_apply_sidecar_to_the_images_of_its_folder(repo: Repository, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    sidecar = folder / "quantscope.yaml"
    sidecar.write_text(
        "biosample:\n  organism: Homo sapiens\ntags: [pilot]\n"
        "images:\n  - {well: A02, tags: [control]}\n  - {well: H12, tag: x}\n"
    )
    rep = repo.annotations.apply_sidecar(sidecar)
    assert rep.images == 3  # not the image whose file lies elsewhere
    assert rep.notes == ["quantscope.yaml:6: no image matches well='H12'"]
    assert repo.annotations.tags(_id(1)) == ["control", "pilot"]
    assert repo.annotations.tags(_id(3)) == []
    # a corrected sidecar replaces what the first version wrote
    sidecar.write_text("biosample:\n  organism: Mus musculus\n")
    repo.annotations.apply_sidecar(sidecar)
    assert repo.annotations.tags(_id(1)) == []
    [org] = repo.annotations.all("image", [_id(1)], "biosample.organism")
    assert org.curie == "NCBITaxon:10090"
    rep = repo.annotations.apply_sidecar(sidecar, all_images=True)
    assert rep.images == 4


def test_apply_sidecars_reports_a_bad_sidecar_without_raising(
    repo: Repository, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "quantscope.yaml").write_text("study:\n  titel: x\n")
    [out] = repo.annotations.apply_sidecars([folder])
    assert out.error
    assert out.message.startswith("invalid sidecar: quantscope.yaml:2: unknown key 'study.titel'")
    assert repo.annotations.all() == []
