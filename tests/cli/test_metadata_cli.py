"""``quantscope annotate``, ``tag`` and ``metadata check/export/keys/schema`` on a repository
ingested from real vendor files with a sidecar."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ome_types import from_xml
from typer.testing import Result

CZI = "czi/aicsimageio_s_1_t_1_c_1_z_1.czi"
OME_TIFF = "ome_tiff/aicsimageio_s_1_t_1_c_1_z_1.ome.tiff"
SIDECAR = """\
study:
  title: Brightfield test images of the aicsimageio project
  license: CC-BY-4.0
biosample:
  organism: Homo sapiens
  cell_line: U2OS
tags: [pilot]
images:
  - file: "*.czi"
    tags: [czi]
"""


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory, vendor_dir: Path, cli: Callable[..., Result]
) -> Path:
    """A repository ingested (without QC) from a folder with the CZI, its OME-TIFF copy and a
    quantscope.yaml: returns its path."""
    base = tmp_path_factory.mktemp("meta")
    data = base / "data"
    data.mkdir()
    for rel in (CZI, OME_TIFF):
        shutil.copy(vendor_dir / rel, data)
    (data / "quantscope.yaml").write_text(SIDECAR)
    assert cli("init", base / "repo").exit_code == 0
    result = cli("ingest", base / "repo", data, "--no-qc")
    assert result.exit_code == 0, result.output
    assert "sidecar applied: 11 annotations on 2 images" in result.output
    return base / "repo"


@pytest.fixture
def repo(ingested: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested repository (tests may change it)."""
    dest = tmp_path / "repo"
    shutil.copytree(ingested, dest)
    return dest


def _ids(cli: Callable[..., Result], repo: Path) -> dict[str, str]:
    """{source suffix: image id}."""
    rows = json.loads(cli("ls", repo, "--json").stdout)
    return {Path(r["source"]).suffix: r["id"] for r in rows}


def test_sidecar_picked_up_at_ingest(ingested: Path, cli: Callable[..., Result]) -> None:
    ids = _ids(cli, ingested)
    result = cli("tag", ingested, ids[".czi"], "--json")
    assert result.exit_code == 0, result.output
    anns = {(a["key"], a["value"]): a for a in json.loads(result.stdout)["annotations"]}
    assert anns[("biosample.organism", "Homo sapiens")]["curie"] == "NCBITaxon:9606"
    assert anns[("biosample.cell_line", "U2OS")]["curie"] == "CVCL_0042"
    assert {v for k, v in anns if k == "tag"} == {"pilot", "czi"}
    tiff = json.loads(cli("tag", ingested, ids[".tiff"], "--json").stdout)["annotations"]
    assert {a["value"] for a in tiff if a["key"] == "tag"} == {"pilot"}


def test_tag_add_remove_and_values(repo: Path, cli: Callable[..., Result]) -> None:
    ids = _ids(cli, repo)
    czi = ids[".czi"]
    result = cli(
        "tag", repo, czi[:6], "--add", "control",
        "--remove", "pilot", "biosample.treatment.duration=24 h", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["tags_added"], out["tags_removed"], out["values_set"]) == (1, 1, 1)
    keys = {(a["key"], a["value"]) for a in out["annotations"]}
    assert ("tag", "control") in keys and ("tag", "pilot") not in keys
    dur = next(a for a in out["annotations"] if a["key"] == "biosample.treatment.duration")
    assert (dur["num_value"], dur["unit"]) == (86400.0, "s")
    result = cli("tag", repo, czi, "--unset", "biosample.treatment.duration")
    assert result.exit_code == 0 and "1 values removed" in result.stdout
    result = cli("tag", repo, "dataset:screen", "--add", "public")
    assert result.exit_code == 0 and "dataset:screen" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["biosample.organsim=Homo sapiens"], "did you mean 'biosample.organism'"),
        (["biosample.treatment.duration=24 parsecs"], "unit 'parsecs'"),
        (["--add", "x", "plate:P9"], "no plate named 'P9'"),
    ],
)
def test_tag_errors_are_one_line(
    repo: Path, cli: Callable[..., Result], args: list[str], message: str
) -> None:
    czi = _ids(cli, repo)[".czi"]
    result = cli("tag", repo, czi, *args)
    assert result.exit_code == 1
    assert message in str(result.exception)


def test_annotate_from_csv(repo: Path, tmp_path: Path, cli: Callable[..., Result]) -> None:
    csv = tmp_path / "later" / "quantscope.csv"
    csv.parent.mkdir()
    csv.write_text(
        "file,biosample.treatment.compound,biosample.treatment.concentration [nM],tags\n"
        "*.czi,nocodazole,100,treated\n"
        "*.ome.tiff,DMSO,0,vehicle\n"
        "missing.tif,DMSO,0,\n"
    )
    result = cli("annotate", repo, "--from", csv, "--all", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["images"] == 2
    assert out["notes"] == ["quantscope.csv:4: no image matches file='missing.tif'"]
    ids = _ids(cli, repo)
    anns = json.loads(cli("tag", repo, ids[".czi"], "--json").stdout)["annotations"]
    conc = next(a for a in anns if a["key"] == "biosample.treatment.concentration")
    assert (conc["value"], conc["num_value"], conc["unit"]) == ("100 nM", 0.1, "µM")
    # without --all, only images whose files lie in the sidecar's folder: none here
    result = cli("annotate", repo, "--from", csv)
    assert result.exit_code == 0
    assert "0 annotations written on 0 images" in result.stdout


def test_annotate_rejects_an_invalid_sidecar(
    repo: Path, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    bad = tmp_path / "quantscope.yaml"
    bad.write_text("biosample:\n  organism: Homo sapiens\n  treatment:\n    durration: 2 h\n")
    result = cli("annotate", repo, "--from", bad, "--all")
    assert result.exit_code == 1
    msg = str(result.exception)
    assert "quantscope.yaml:4: unknown key 'biosample.treatment.durration'" in msg
    assert "did you mean 'biosample.treatment.duration'" in msg


def test_metadata_check(ingested: Path, cli: Callable[..., Result]) -> None:
    result = cli("metadata", "check", ingested, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["tier"] == 1 and len(out["images"]) == 2
    by_source = {i["name"]: i for i in out["images"]}
    assert len(by_source) == 1  # both files hold the same image name
    czi = next(i for i in out["images"] if i["id"] == _ids(cli, ingested)[".czi"])
    missing = {m["id"] for m in czi["nbo"]["missing"]}
    # what the CZI and sidecar carry counts as present
    assert "Objective.LensNA" not in missing and "Sample.Organism" not in missing
    assert "LightSource" not in missing  # a Filament, kept in the stored OME-XML
    assert "AcquisitionSoftware.Name" in missing
    assert 0 < czi["nbo"]["score"] < 1
    assert "Study.Description" in {m["id"] for m in czi["rembi"]["missing"]}
    agg = out["aggregate"]["nbo"]
    assert agg["images"] == 2 and agg["complete"] == 0
    text = cli("metadata", "check", ingested)
    assert text.exit_code == 0
    assert "NBO tier 1: 0/2 images complete" in text.stdout


def test_require_tier_gates(ingested: Path, cli: Callable[..., Result]) -> None:
    result = cli("metadata", "check", ingested, "--require-tier", "1")
    assert result.exit_code == 1
    assert "2 of 2 images fall short of NBO tier 1" in result.output
    result = cli("metadata", "check", ingested, "--require-tier", "2", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["passed"] is False
    assert cli("metadata", "check", ingested, "--tier", "3").exit_code == 2


def test_export_formats(ingested: Path, tmp_path: Path, cli: Callable[..., Result]) -> None:
    czi = _ids(cli, ingested)[".czi"]
    out = tmp_path / "x.ome.xml"
    result = cli("metadata", "export", ingested, czi, "--format", "ome-xml", "--out", out)
    assert result.exit_code == 0, result.output
    ome = from_xml(out, validate=True)
    obj = ome.instruments[0].objectives[0]
    assert obj.lens_na == pytest.approx(0.8)
    assert ome.instruments[0].detectors[0].model == "HDCamC11440-22C"
    assert ome.images[0].pixels.physical_size_x == pytest.approx(1.0833333)
    sa = ome.structured_annotations
    assert (
        sa is not None and sa.map_annotations[0].value["biosample.cell_line"] == "U2OS [CVCL_0042]"
    )
    js = json.loads(cli("metadata", "export", ingested, czi, "--format", "json").stdout)
    assert js["image"]["acquisition"]["objective"]["working_distance_um"] == 610.0
    assert js["image"]["channels"][0]["detector_binning"] == "4x4"
    ld = json.loads(cli("metadata", "export", ingested, czi, "--format", "jsonld").stdout)
    assert ld["rembi:biosample"]["rembi:organism"]["schema:termCode"] == "NCBITaxon:9606"
    bad = cli("metadata", "export", ingested, czi, "--format", "xlsx")
    assert bad.exit_code == 2 and "--format" in bad.output
    missing = cli("metadata", "export", ingested, "ffffffffffff")
    assert missing.exit_code == 1 and "no image with id" in str(missing.exception)


def test_keys_and_schema(cli: Callable[..., Result], tmp_path: Path) -> None:
    result = cli("metadata", "keys", "--json")
    assert result.exit_code == 0
    keys = {k["key"]: k for k in json.loads(result.stdout)}
    assert keys["biosample.treatment.concentration"]["type"] == "quantity (concentration)"
    assert "specimen.stain.*.target" in keys
    out = tmp_path / "schema.json"
    assert cli("metadata", "schema", "--out", out).exit_code == 0
    assert json.loads(out.read_text())["$schema"].startswith("https://json-schema.org/")


def test_csv_sidecar_by_plate_well_at_ingest(
    tmp_path: Path, shared_data: Path, cli: Callable[..., Result]
) -> None:
    """ImageXpress files of BBBC039 land on plate IXMtest; a quantscope.csv beside them
    annotates wells (and one field of a well)."""
    data = tmp_path / "plate"
    data.mkdir()
    images = sorted((shared_data / "bbbc039_nuclei_subset" / "images").glob("IXMtest_[AB]02_*"))
    assert len(images) == 2
    for f in images:
        shutil.copy(f, data)
    (data / "quantscope.csv").write_text(
        "plate,well,field,biosample.treatment.compound,biosample.experimental_status,tag\n"
        "IXMtest,A02,,DMSO,control,vehicle\n"
        "IXMtest,B02,9,nocodazole,test,\n"
        "IXMtest,C07,,taxol,test,\n"
    )
    assert cli("init", tmp_path / "repo").exit_code == 0
    result = cli("ingest", tmp_path / "repo", data, "--no-qc")
    assert result.exit_code == 0, result.output
    assert "quantscope.csv:4: no image matches plate='IXMtest', well='C07'" in result.output
    rows = {r["well"]: r["id"] for r in json.loads(cli("ls", tmp_path / "repo", "--json").stdout)}
    for well, compound, status in (("A02", "DMSO", "control"), ("B02", "nocodazole", "test")):
        out = json.loads(cli("tag", tmp_path / "repo", rows[well], "--json").stdout)
        got = {a["key"]: a["value"] for a in out["annotations"]}
        assert got["biosample.treatment.compound"] == compound
        assert got["biosample.experimental_status"] == status


def test_channel_settings_are_queryable_after_ingest(ingested: Path) -> None:
    import sqlalchemy as sa

    from quantscope.catalog import Repository
    from quantscope.catalog import _schema as S

    with Repository.open(ingested) as r, r.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                S.channels.c.illumination_type,
                S.channels.c.acquisition_mode,
                S.channels.c.detector_binning,
                S.images.c.significant_bits,
            ).join(S.images, S.images.c.id == S.channels.c.image_id)
        ).all()
    assert rows and all(
        tuple(row) == ("Transmitted", "SpinningDiskConfocal", "4x4", 16) for row in rows
    )


def test_dataset_commands(repo: Path, tmp_path: Path, cli: Callable[..., Result]) -> None:
    """Membership, dataset annotations applying to members (find, check, export), ls, rm."""
    ids = _ids(cli, repo)
    czi, tif = ids[".czi"], ids[".tiff"]
    result = cli("dataset", "add", repo, "screen-7", czi[:8], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"dataset": "screen-7", "added": 1, "images": 1}
    # an unknown id: one-line error, nothing changed
    bad = cli("dataset", "add", repo, "screen-7", tif, "ffffffffffff")
    assert bad.exit_code == 1 and "no image 'ffffffffffff'" in str(bad.exception)
    assert cli("dataset", "add", repo, "screen-7").exit_code == 1  # no image given
    desc = "Dataset-level description of screen seven"
    result = cli("tag", repo, "dataset:screen-7", f"study.description={desc}", "--add", "curated")
    assert result.exit_code == 0, result.output
    [ds] = json.loads(cli("dataset", "ls", repo, "--json").stdout)
    assert (ds["name"], ds["images"]) == ("screen-7", 1)
    assert {(a["key"], a["value"]) for a in ds["annotations"]} == {
        ("tag", "curated"),
        ("study.description", desc),
    }
    assert "screen-7" in cli("dataset", "ls", repo).stdout
    found = cli("find", repo, 'tag == "curated"', "--format", "ids")
    assert found.stdout.split() == [czi]
    found = cli("find", repo, 'dataset == "screen-7"', "--format", "ids")
    assert found.stdout.split() == [czi]
    assert "dataset" in {f["name"] for f in json.loads(cli("fields", repo, "--json").stdout)}
    # REMBI fields given at dataset level count for its members only
    out = json.loads(cli("metadata", "check", repo, "--json").stdout)
    rembi = {i["id"]: {m["id"] for m in i["rembi"]["missing"]} for i in out["images"]}
    assert "Study.Description" not in rembi[czi]
    assert "Study.Description" in rembi[tif]
    js = cli("metadata", "export", repo, czi, "--format", "jsonld")
    assert js.exit_code == 0 and desc in js.stdout
    assert desc not in cli("metadata", "export", repo, tif, "--format", "jsonld").stdout
    # a query adds the rest; rm takes images out; --all deletes the dataset
    result = cli("dataset", "add", repo, "screen-7", "--where", 'name like "%"', "--json")
    assert json.loads(result.stdout)["images"] == 2
    result = cli("dataset", "rm", repo, "screen-7", czi, "--json")
    assert json.loads(result.stdout) == {"dataset": "screen-7", "removed": 1, "images": 1}
    assert cli("find", repo, 'tag == "curated"', "--format", "ids").stdout.split() == [tif]
    gone = cli("dataset", "rm", repo, "screen7", "--all")
    assert gone.exit_code == 1 and "did you mean 'screen-7'" in str(gone.exception)
    assert cli("dataset", "rm", repo, "screen-7", "--all").exit_code == 0
    assert json.loads(cli("dataset", "ls", repo, "--json").stdout) == []


def test_sidecar_dataset_key(repo: Path, tmp_path: Path, cli: Callable[..., Result]) -> None:
    """``dataset: NAME`` in a sidecar puts the images it applies to into that dataset."""
    sc = tmp_path / "quantscope.yaml"
    sc.write_text(
        'datasets: [screen-7, pilot]\nimages:\n  - file: "*.czi"\n    dataset: czi-only\n'
    )
    result = cli("annotate", repo, "--from", sc, "--all")
    assert result.exit_code == 0, result.output
    ds = {d["name"]: d["images"] for d in json.loads(cli("dataset", "ls", repo, "--json").stdout)}
    assert ds == {"czi-only": 1, "pilot": 2, "screen-7": 2}
    czi = _ids(cli, repo)[".czi"]
    found = cli("find", repo, 'dataset == "czi-only"', "--format", "ids")
    assert found.stdout.split() == [czi]


def test_export_names_the_datasets(repo: Path, tmp_path: Path, cli: Callable[..., Result]) -> None:
    """OME-XML: a valid Dataset element per dataset with an ImageRef; JSON-LD: schema:isPartOf;
    the dataset's annotations are exported with the image's."""
    czi = _ids(cli, repo)[".czi"]
    for name in ("screen 7/b", "pilot"):
        assert cli("dataset", "add", repo, name, czi).exit_code == 0
    assert cli("tag", repo, "dataset:pilot", "--add", "from-dataset").exit_code == 0
    out = tmp_path / "x.ome.xml"
    result = cli("metadata", "export", repo, czi, "--format", "ome-xml", "--out", out)
    assert result.exit_code == 0, result.output
    ome = from_xml(out, validate=True)
    assert [(d.name, [r.id for r in d.image_refs]) for d in ome.datasets] == [
        ("pilot", [ome.images[0].id]),
        ("screen 7/b", [ome.images[0].id]),
    ]
    sa = ome.structured_annotations
    assert sa is not None and "from-dataset" in {t.value for t in sa.tag_annotations}
    assert sa.map_annotations[0].value["study.license"] == "CC-BY-4.0"
    assert 'K="dataset"' not in out.read_text()  # structural, not a key-value pair
    ld = json.loads(cli("metadata", "export", repo, czi, "--format", "jsonld").stdout)
    assert ld["schema:isPartOf"] == [
        {"@type": "schema:Dataset", "@id": "urn:quantscope:dataset:pilot", "schema:name": "pilot"},
        {
            "@type": "schema:Dataset",
            "@id": "urn:quantscope:dataset:screen%207%2Fb",
            "schema:name": "screen 7/b",
        },
    ]
    assert "from-dataset" in ld["schema:keywords"]
    assert "rembi:custom" not in ld


def test_set_pixel_size_and_channel_then_verify(repo: Path, cli: Callable[..., Result]) -> None:
    """`quantscope set` corrects metadata after ingest; the catalog, the OME-Zarr and the
    manifest agree, so `verify` passes and `show` prints the new values."""
    tif = _ids(cli, repo)[".tiff"]
    result = cli("set", repo, tif[:6], "pixel_size_um=0.5", "channel[0].name=Brightfield", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["images"] == [tif]
    assert {(c["field"], c["new"]) for c in out["changes"]} >= {
        ("physical_size_x_um", 0.5),
        ("name", "Brightfield"),
    }
    shown = json.loads(cli("show", repo, tif, "--json").stdout)
    assert shown["pixel_size_um"][:2] == [0.5, 0.5]
    assert shown["channels"][0]["name"] == "Brightfield"
    assert cli("verify", repo).exit_code == 0
    # the query language selects, and a change that is already there changes nothing
    again = cli("set", repo, 'channel.name == "Brightfield"', "pixel_size_um=0.5")
    assert again.exit_code == 0 and "0 values changed on 0 of 1 selected image" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pixel_size_um=0"], "positive"),
        (["wavelength=3"], "not a key"),
        (["channel[4].name=X"], "no channel 4"),
    ],
)
def test_set_refuses_bad_input_in_one_line(
    repo: Path, cli: Callable[..., Result], qs: Callable[..., Any], args: list[str], message: str
) -> None:
    tif = _ids(cli, repo)[".tiff"]
    result = qs("set", repo, tif, *args)  # the console script: one line on stderr, exit 1
    assert result.code == 1
    assert message in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert cli("verify", repo).exit_code == 0
