"""Provenance: the lineage of any output goes back to the source files with their SHA-256, and
a run is a W3C PROV-JSON document (used, wasGeneratedBy, wasAssociatedWith)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from _analysis_support import (
    fixture_repo,
    install_test_tools,
    pipeline_text,
    remove_test_tools,
)
from quantscope.analysis import parse_pipeline, run_pipeline
from quantscope.catalog import Repository
from quantscope.errors import NotFound
from quantscope.provenance import lineage, run_document

WITH_ILLUMINATION = """\
name: illum
channels: {DNA: [DAPI, 0]}
steps:
  - id: illum
    tool: illumination-correction
    inputs: {image: DNA}
    parameters: {mode: estimate, degree: 2}
    outputs: {image: DNA_corr}
  - id: seg
    tool: test-threshold
    inputs: {image: DNA_corr}
    outputs: {labels: Nuclei}
  - id: measure
    tool: test-area
    inputs: {labels: Nuclei, images: [DNA_corr]}
    outputs: {table: Nuclei_features}
"""


@pytest.fixture(autouse=True)
def _tools() -> Iterator[None]:
    install_test_tools()
    yield
    remove_test_tools()


@pytest.fixture
def synth_repo(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[Repository]:
    yield from fixture_repo(tmp_path_factory, tmp_path)


def _source_files(node: dict, out: list[dict]) -> list[dict]:
    for u in node.get("used", []):
        if u["kind"] == "channel":
            out.extend(u["image"]["sources"])
        elif u["kind"] == "artifact":
            _source_files(u["artifact"], out)
        elif u["kind"] == "derived":
            _source_files(u, out)
    return out


def test_lineage_of_a_table_goes_through_labels_and_channels_to_source_files(
    synth_repo: Repository,
) -> None:
    report = run_pipeline(synth_repo, parse_pipeline(pipeline_text(scale=3.0)))
    table = next(a for a in synth_repo.run_artifacts(report.run_id) if a["kind"] == "table")
    img = synth_repo.image(table["image_id"])
    for ref in (
        table["key"],
        table["key"][:10],
        table["path"],
        str(synth_repo.root / table["path"]),
    ):
        doc = lineage(synth_repo, ref)
        assert doc["key"] == table["key"] and doc["sha256"] == table["sha256"]
    assert doc["tool"] == "test-area" and doc["parameters"] == {"scale": 3.0}
    g = doc["generated_by"]
    assert (
        g["id"] == report.run_id and g["pipeline"] == "test" and g["spec_hash"] == report.spec_hash
    )
    assert g["software"]["quantscope"] and g["user"] and g["host"]
    roles = {u["role"]: u for u in doc["used"]}
    assert set(roles) == {"labels", "images[DNA]"}
    labels = roles["labels"]["artifact"]
    assert labels["tool"] == "test-threshold" and labels["kind"] == "labels"
    channel = labels["used"][0]
    assert channel["kind"] == "channel" and channel["channel_name"] == "DAPI"
    assert channel["image"]["id"] == img.id and channel["image"]["well"] == img.position.well
    sources = _source_files(doc, [])
    assert {s["sha256"] for s in sources} == {s.sha256 for s in img.sources}
    assert all(Path(s["path"]).name.endswith(".ome.tif") for s in sources)


def test_lineage_through_an_in_memory_step(synth_repo: Repository) -> None:
    report = run_pipeline(synth_repo, parse_pipeline(WITH_ILLUMINATION))
    labels = next(a for a in synth_repo.run_artifacts(report.run_id) if a["kind"] == "labels")
    doc = lineage(synth_repo, labels["path"])
    (used,) = doc["used"]
    assert used["kind"] == "derived" and used["tool"] == "illumination-correction"
    assert used["parameters"]["mode"] == "estimate" and used["parameters"]["degree"] == 2
    assert used["used"][0]["kind"] == "channel"
    assert _source_files(doc, [])


def test_lineage_of_a_consolidated_run_table(synth_repo: Repository) -> None:
    report = run_pipeline(synth_repo, parse_pipeline(pipeline_text()))
    doc = lineage(synth_repo, report.tables["Nuclei_features"])
    assert doc["table"] == report.tables["Nuclei_features"]
    assert doc["run"]["id"] == report.run_id and len(doc["parts"]) == 3
    # a reused part names the run that made it
    again = run_pipeline(synth_repo, parse_pipeline(pipeline_text()))
    doc2 = lineage(synth_repo, again.tables["Nuclei_features"])
    assert {p["generated_by"]["id"] for p in doc2["parts"]} == {report.run_id}


def test_unknown_references(synth_repo: Repository) -> None:
    with pytest.raises(NotFound, match="no registered analysis artifact 'abcdef12'"):
        lineage(synth_repo, "abcdef12")
    with pytest.raises(NotFound, match="no registered analysis artifact"):
        lineage(synth_repo, "tables/nope/x.parquet")


def test_run_document_is_prov_json(synth_repo: Repository) -> None:
    first = run_pipeline(synth_repo, parse_pipeline(pipeline_text()))
    doc = run_document(synth_repo, first.run_id)
    json.dumps(doc)  # serializable
    run_id = f"qs:run/{first.run_id}"
    assert doc["activity"][run_id]["prov:type"] == "qs:PipelineRun"
    agents = doc["agent"]
    assert any(a["prov:type"] == "prov:SoftwareAgent" for a in agents.values())
    assert any(a["prov:type"] == "prov:Person" for a in agents.values())
    assoc = [r for r in doc["wasAssociatedWith"].values() if r["prov:activity"] == run_id]
    assert {r["prov:agent"].split("/")[0] for r in assoc} == {"qs:software", "qs:user"}
    arts = {k: v for k, v in doc["entity"].items() if k.startswith("qs:artifact/")}
    assert len(arts) == 6
    gen = {r["prov:entity"]: r["prov:activity"] for r in doc["wasGeneratedBy"].values()}
    assert set(gen) == set(arts)
    steps = {a for a in gen.values()}
    assert all(doc["activity"][s]["prov:type"] == "qs:ToolRun" for s in steps)
    used = [r for r in doc["used"].values() if r["prov:activity"] in steps]
    assert any(r["prov:entity"].startswith("qs:image/") for r in used)
    sources = [e for e in doc["entity"].values() if e["prov:type"] == "qs:SourceFile"]
    assert len(sources) == 6 and all(len(e["qs:sha256"]) == 64 for e in sources)  # 3 x 2 files
    # a second run reuses everything: its document says it used the earlier artifacts
    second = run_pipeline(synth_repo, parse_pipeline(pipeline_text()))
    doc2 = run_document(synth_repo, second.run_id)
    assert "wasGeneratedBy" not in doc2
    used2 = {r["prov:entity"] for r in doc2["used"].values()}
    assert set(arts) <= used2
