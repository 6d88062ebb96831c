"""Provenance: the lineage of any output goes back to the source files with their SHA-256, and
a run is a W3C PROV-JSON document (used, wasGeneratedBy, wasAssociatedWith) that the ``prov``
package reads without a warning, naming the package and version of every tool (plugins
included); ``quantscope provenance REPO RUN`` describes a run as the README shows."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from _analysis_support import (
    pipeline_text,
)
from quantscope.analysis import _registry, parse_pipeline, run_pipeline, unregister_tool
from quantscope.catalog import Repository
from quantscope.errors import NotFound
from quantscope.provenance import lineage, run_document, run_lineage

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


pytestmark = pytest.mark.usefixtures("analysis_tools")


def _type(record: dict[str, Any]) -> str:
    """The ``prov:type`` of a PROV-JSON record (a qualified name)."""
    t = record["prov:type"]
    assert t["type"] == "prov:QUALIFIED_NAME", t
    return str(t["$"])


def _nulls(value: Any, where: str = "") -> list[str]:
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _nulls(v, f"{where}/{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _nulls(v, f"{where}[{i}]")]
    return []


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
    analysis_repo: Repository,
) -> None:
    report = run_pipeline(analysis_repo, parse_pipeline(pipeline_text(scale=3.0)))
    table = next(a for a in analysis_repo.runs.artifacts(report.run_id) if a.kind == "table")
    img = analysis_repo.images.get(table.image_id)
    for ref in (
        table.key,
        table.key[:10],
        table.path,
        str(analysis_repo.root / table.path),
    ):
        doc = lineage(analysis_repo, ref)
        assert doc["key"] == table.key and doc["sha256"] == table.sha256
    assert doc["tool"] == "test-area" and doc["parameters"] == {"scale": 3.0}
    g = doc["generated_by"]
    assert (
        g["id"] == report.run_id and g["pipeline"] == "test" and g["spec_hash"] == report.spec_hash
    )
    assert g["software"]["quantscope"] and g["user"] and g["host"]
    roles = {u["role"]: u for u in doc["used"]}
    settings = {r for r, u in roles.items() if u["kind"] == "setting"}  # the pixel size used
    assert set(roles) - settings == {"labels", "images[DNA]"}
    labels = roles["labels"]["artifact"]
    assert labels["tool"] == "test-threshold" and labels["kind"] == "labels"
    channel = labels["used"][0]
    assert channel["kind"] == "channel" and channel["channel_name"] == "DAPI"
    assert channel["image"]["id"] == img.id and channel["image"]["well"] == img.position.well
    sources = _source_files(doc, [])
    assert {s["sha256"] for s in sources} == {s.sha256 for s in img.sources}
    assert all(Path(s["path"]).name.endswith(".ome.tif") for s in sources)


def test_lineage_through_an_in_memory_step(analysis_repo: Repository) -> None:
    report = run_pipeline(analysis_repo, parse_pipeline(WITH_ILLUMINATION))
    labels = next(a for a in analysis_repo.runs.artifacts(report.run_id) if a.kind == "labels")
    doc = lineage(analysis_repo, labels.path)
    (used,) = [u for u in doc["used"] if u["kind"] != "setting"]  # besides the pixel size
    assert used["kind"] == "derived" and used["tool"] == "illumination-correction"
    assert used["parameters"]["mode"] == "estimate" and used["parameters"]["degree"] == 2
    assert used["used"][0]["kind"] == "channel"
    assert _source_files(doc, [])


def test_lineage_of_a_consolidated_run_table(analysis_repo: Repository) -> None:
    report = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    doc = lineage(analysis_repo, report.tables["Nuclei_features"])
    assert doc["table"] == report.tables["Nuclei_features"]
    assert doc["run"]["id"] == report.run_id and len(doc["parts"]) == 3
    # a reused part names the run that made it
    again = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    doc2 = lineage(analysis_repo, again.tables["Nuclei_features"])
    assert {p["generated_by"]["id"] for p in doc2["parts"]} == {report.run_id}


def test_unknown_references(analysis_repo: Repository) -> None:
    with pytest.raises(NotFound, match="no registered analysis artifact or run 'abcdef12'"):
        lineage(analysis_repo, "abcdef12")
    with pytest.raises(NotFound, match="no registered analysis artifact"):
        lineage(analysis_repo, "tables/nope/x.parquet")


def test_run_document_is_prov_json(analysis_repo: Repository) -> None:
    first = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    doc = run_document(analysis_repo, first.run_id)
    json.dumps(doc)  # serializable
    run_id = f"qs:run/{first.run_id}"
    assert _type(doc["activity"][run_id]) == "qs:PipelineRun"
    agents = doc["agent"]
    assert any(_type(a) == "prov:SoftwareAgent" for a in agents.values())
    assert any(_type(a) == "prov:Person" for a in agents.values())
    assoc = [r for r in doc["wasAssociatedWith"].values() if r["prov:activity"] == run_id]
    assert {r["prov:agent"].split("/")[0] for r in assoc} == {"qs:software", "qs:user", "qs:tool"}
    arts = {k: v for k, v in doc["entity"].items() if k.startswith("qs:artifact/")}
    assert len(arts) == 6
    gen = {r["prov:entity"]: r["prov:activity"] for r in doc["wasGeneratedBy"].values()}
    assert set(gen) == set(arts)
    steps = {a for a in gen.values()}
    assert all(_type(doc["activity"][s]) == "qs:ToolRun" for s in steps)
    used = [r for r in doc["used"].values() if r["prov:activity"] in steps]
    assert any(r["prov:entity"].startswith("qs:image/") for r in used)
    sources = [e for e in doc["entity"].values() if _type(e) == "qs:SourceFile"]
    assert len(sources) == 6 and all(len(e["qs:sha256"]) == 64 for e in sources)  # 3 x 2 files
    # a second run reuses everything: its document says it used the earlier artifacts
    second = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    doc2 = run_document(analysis_repo, second.run_id)
    assert "wasGeneratedBy" not in doc2
    used2 = {r["prov:entity"] for r in doc2["used"].values()}
    assert set(arts) <= used2


def test_run_document_passes_prov_validation(analysis_repo: Repository) -> None:
    """prov 3.2.3 warns about every null attribute (ProvFutureRejectionWarning: "prov 3.3.0
    will reject this"): the document has none, and prov reads it back without a warning."""
    from prov.model import ProvDocument

    first = run_pipeline(
        analysis_repo, parse_pipeline(WITH_ILLUMINATION)
    )  # no spec path, no --where
    second = run_pipeline(analysis_repo, parse_pipeline(WITH_ILLUMINATION))  # all reused
    for run_id in (first.run_id, second.run_id, "latest"):
        doc = run_document(analysis_repo, run_id)
        assert _nulls(doc) == []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            prov = ProvDocument.deserialize(content=json.dumps(doc), format="json")
        assert prov.get_provn()  # and it serializes as PROV-N
        records = {str(r.identifier) for r in prov.get_records() if r.identifier is not None}
        assert f"qs:run/{second.run_id if run_id != first.run_id else first.run_id}" in records
    assert prov.valid_qualified_name("qs:PipelineRun") is not None


def _install_plugin(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real (if tiny) installed distribution, qs-test-plugin 1.2.3, declaring test-threshold
    as a quantscope.tools entry point."""
    dist = root / "qs_test_plugin-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: qs-test-plugin\nVersion: 1.2.3\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[quantscope.tools]\ntest-threshold = _analysis_support:ThresholdSegment\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(_registry, "_cache", None)  # rediscovered now, forgotten after the test
    unregister_tool("test-threshold")  # the in-process registration would take precedence
    entry = _registry.installed_tools(refresh=True)["test-threshold"]
    assert entry.distribution == "qs-test-plugin 1.2.3"


def test_provenance_names_the_package_and_version_of_a_plugin_tool(
    analysis_repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(tmp_path / "site", monkeypatch)
    report = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    doc = run_document(analysis_repo, report.run_id)
    tools = {a["qs:tool"]: a for a in doc["agent"].values() if "qs:tool" in a}
    assert tools["test-threshold"]["qs:package"] == "qs-test-plugin"
    assert tools["test-threshold"]["qs:package_version"] == "1.2.3"
    assert tools["test-threshold"]["qs:version"] == "0.1"
    assert tools["test-area"]["qs:package"] == "in process"  # register_tool: no package
    assert "qs:package_version" not in tools["test-area"]
    # every computed step is associated with its tool's agent
    seg_agent = next(k for k, a in doc["agent"].items() if a.get("qs:tool") == "test-threshold")
    seg_steps = {k for k, a in doc["activity"].items() if a.get("qs:tool") == "test-threshold"}
    assoc = {(r["prov:activity"], r["prov:agent"]) for r in doc["wasAssociatedWith"].values()}
    assert len(seg_steps) == 3 and all((s, seg_agent) in assoc for s in seg_steps)
    steps = {s["id"]: s for s in run_lineage(analysis_repo, report.run_id)["steps"]}
    assert (steps["seg"]["package"], steps["seg"]["package_version"]) == ("qs-test-plugin", "1.2.3")
    assert steps["seg"]["versions"] == ["0.1"] and steps["seg"]["counts"] == {"computed": 3}


def test_provenance_of_a_run_from_the_command_line(
    analysis_repo: Repository, cli: Callable[..., Result], tmp_path: Path
) -> None:
    """``quantscope provenance REPO RUN_OR_OUTPUT [--json | --prov]`` (README): a run id, a
    prefix of it or ``latest`` describes the run."""
    first = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    again = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    root = analysis_repo.root
    for ref in (first.run_id, first.run_id[:6]):
        res = cli("provenance", root, ref)
        assert res.exit_code == 0, res.output
        out = res.stdout
        assert f"run {first.run_id} of pipeline test" in out
        assert "seg: test-threshold 0.1, from in process (min_area=4); images: computed 3" in out
        assert "3 images read" in out and out.count("source file ") == 6
        assert f"table Nuclei_features: tables/{first.run_id}/Nuclei_features.parquet" in out
    images = {i.id for i in analysis_repo.images.all()}
    assert all(f"[{i}]" in out for i in images)  # ids in brackets are text, not console markup
    res = cli("provenance", root, "latest", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["run"]["id"] == again.run_id
    assert [s["id"] for s in doc["steps"]] == ["seg", "measure"]
    assert doc["steps"][0]["counts"] == {"reused": 3}
    outputs = {o["output"]: o for o in doc["outputs"]}
    assert outputs["Nuclei_features"]["generated_by"] == [first.run_id]
    assert {i["id"] for i in doc["images"]} == images
    assert all(len(s["sha256"]) == 64 for i in doc["images"] for s in i["sources"])
    res = cli("provenance", root, "latest", "--prov")
    assert res.exit_code == 0 and f"qs:run/{again.run_id}" in json.loads(res.stdout)["activity"]
    res = cli("provenance", root, "0123abcd")  # (the console script prints it in one line)
    assert isinstance(res.exception, NotFound)
    assert "no registered analysis artifact or run '0123abcd'" in str(res.exception)
