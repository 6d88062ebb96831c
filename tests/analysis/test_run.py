"""The executor: incremental runs, parameter changes, failures and retries, outputs and the
catalog records, on a small synthetic plate with in-process test tools."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _analysis_support import (
    FAIL_LIST_ENV,
    pipeline_text,
)
from quantscope.analysis import (
    labels_digest,
    parse_pipeline,
    read_labels,
    read_table,
    run_pipeline,
)
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput

pytestmark = pytest.mark.usefixtures("analysis_tools")


def _run(repo: Repository, **kw: object) -> object:
    spec = parse_pipeline(pipeline_text(**kw))  # type: ignore[arg-type]
    return run_pipeline(repo, spec, jobs=2)


def test_first_run_computes_every_step_and_registers_outputs(analysis_repo: Repository) -> None:
    report = _run(analysis_repo)
    assert report.status == "completed" and report.ok
    assert (report.images, report.computed, report.reused) == (3, 6, 0)
    arts = analysis_repo.runs.artifacts(report.run_id)
    assert sorted(a.kind for a in arts) == ["labels"] * 3 + ["table"] * 3
    for a in arts:
        full = analysis_repo.root / a.path
        assert full.exists(), a.path
        if a.kind == "labels":
            labels = read_labels(analysis_repo.root, a.path)
            assert labels_digest(labels) == a.sha256
            assert a.n_objects == len(np.unique(labels)) - 1 > 0
            assert "/labels/Nuclei-" in a.path
        else:
            import hashlib

            assert hashlib.sha256(full.read_bytes()).hexdigest() == a.sha256
            assert a.path.startswith(f"tables/{report.run_id}/Nuclei_features/")
    run = analysis_repo.runs.get(report.run_id)
    assert run.status == "completed" and run.n_computed == 6
    assert run.software["numpy"] == np.__version__ and run.host and run.user_name
    assert run.ended_at >= run.started_at


def test_tables_have_one_row_per_object_with_image_metadata(analysis_repo: Repository) -> None:
    report = _run(analysis_repo)
    table = read_table(analysis_repo.root, report.tables["Nuclei_features"])
    images = {i.id: i for i in analysis_repo.images.all()}
    labels = {
        a.image_id: read_labels(analysis_repo.root, a.path)
        for a in analysis_repo.runs.artifacts(report.run_id)
        if a.kind == "labels"
    }
    assert list(table.columns[:5]) == ["image_id", "plate", "well", "field", "ObjectNumber"]
    assert len(table) == sum(len(np.unique(v)) - 1 for v in labels.values())
    for image_id, rows in table.groupby("image_id"):
        img = images[image_id]
        assert img.position is not None
        assert set(rows["plate"]) == {img.position.plate}
        assert set(rows["well"]) == {img.position.well}
        assert set(rows["field"]) == {img.position.field}
        assert sorted(rows["ObjectNumber"]) == sorted(np.unique(labels[image_id])[1:])
        # the centroid is that of the object's pixels
        first = rows.iloc[0]
        ys, xs = np.nonzero(labels[image_id] == first["ObjectNumber"])
        assert first["Location_Center_X"] == pytest.approx(xs.mean())
        assert first["Location_Center_Y"] == pytest.approx(ys.mean())
    assert "Intensity_MeanIntensity_DNA" in table.columns


def test_second_run_of_an_unchanged_pipeline_computes_nothing(analysis_repo: Repository) -> None:
    first = _run(analysis_repo)
    files = sorted(p for p in analysis_repo.root.rglob("*") if p.is_file() and "labels" in p.parts)
    assert files
    mtimes = [p.stat().st_mtime_ns for p in files]
    second = _run(analysis_repo)
    assert (second.computed, second.reused, second.failed) == (0, 6, 0)
    assert second.run_id != first.run_id
    # nothing rewritten: the label images are the same files
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    a = read_table(analysis_repo.root, first.tables["Nuclei_features"])
    b = read_table(analysis_repo.root, second.tables["Nuclei_features"])
    pd.testing.assert_frame_equal(a, b)
    steps = analysis_repo.runs.steps(second.run_id)
    assert {s.status for s in steps} == {"reused"} and len(steps) == 6


def test_measure_parameter_change_does_not_resegment(analysis_repo: Repository) -> None:
    first = _run(analysis_repo, scale=1.0)
    second = _run(analysis_repo, scale=2.0)
    assert (second.computed, second.reused) == (3, 3)
    status = {(s.step, s.status) for s in analysis_repo.runs.steps(second.run_id)}
    assert status == {("seg", "reused"), ("measure", "computed")}
    labels_before = {
        a.key for a in analysis_repo.runs.artifacts(first.run_id) if a.kind == "labels"
    }
    labels_after = {
        a.key for a in analysis_repo.runs.artifacts(second.run_id) if a.kind == "labels"
    }
    assert labels_before == labels_after
    a = read_table(analysis_repo.root, first.tables["Nuclei_features"])
    b = read_table(analysis_repo.root, second.tables["Nuclei_features"])
    np.testing.assert_allclose(b["AreaShape_Area"], 2 * a["AreaShape_Area"])
    # and going back to the first value reuses the first run's tables
    third = _run(analysis_repo, scale=1.0)
    assert third.computed == 0


def test_segmentation_parameter_change_recomputes_it_and_what_depends_on_it(
    analysis_repo: Repository,
) -> None:
    _run(analysis_repo, min_area=4)
    report = _run(analysis_repo, min_area=30)
    assert (report.computed, report.reused) == (6, 0)


def test_one_failing_image_does_not_stop_the_run_and_a_rerun_retries_only_it(
    analysis_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = analysis_repo.images.all()[1]
    monkeypatch.setenv(FAIL_LIST_ENV, bad.id)
    report = _run(analysis_repo)
    assert report.status == "partial" and not report.ok
    assert (report.computed, report.failed, report.skipped) == (4, 1, 1)
    by_step = {f.step: f for f in report.failures}
    assert by_step["seg"].image_id == bad.id and by_step["seg"].status == "failed"
    assert by_step["seg"].error_type == "RuntimeError"
    assert "deliberate test failure" in by_step["seg"].message
    assert by_step["measure"].status == "skipped" and "seg" in by_step["measure"].message
    failed = analysis_repo.runs.failed_steps(report.run_id)
    assert [(f.image_id, f.step) for f in failed] == [(bad.id, "seg")]
    assert "deliberate test failure" in failed[0].error
    assert analysis_repo.runs.get(report.run_id).status == "partial"
    # no output of the failed image is registered
    assert bad.id not in {a.image_id for a in analysis_repo.runs.artifacts(report.run_id)}

    monkeypatch.delenv(FAIL_LIST_ENV)
    retry = _run(analysis_repo)
    assert retry.ok and (retry.computed, retry.reused) == (2, 4)
    computed = {
        (s.image_id, s.step)
        for s in analysis_repo.runs.steps(retry.run_id)
        if s.status == "computed"
    }
    assert computed == {(bad.id, "seg"), (bad.id, "measure")}
    table = read_table(analysis_repo.root, retry.tables["Nuclei_features"])
    assert table["image_id"].nunique() == 3


def test_a_channel_missing_from_an_image_fails_that_image_with_the_reason(
    analysis_repo: Repository,
) -> None:
    text = pipeline_text().replace("DNA: [DAPI, 0]", "DNA: [Hoechst]")
    report = run_pipeline(analysis_repo, parse_pipeline(text))
    assert report.failed == 3 and report.skipped == 3 and report.computed == 0
    msg = next(f.message for f in report.failures if f.step == "seg")
    assert "no channel matches 'DNA'" in msg and "DAPI" in msg


def test_channels_are_found_by_name(analysis_repo: Repository) -> None:
    text = pipeline_text().replace("DNA: [DAPI, 0]", "DNA: [gfp]")
    report = run_pipeline(analysis_repo, parse_pipeline(text))
    assert report.ok
    img = analysis_repo.images.all()[0]
    art = next(a for a in analysis_repo.runs.artifacts(report.run_id) if a.kind == "labels")
    used = analysis_repo.runs.artifact_inputs(art.key)
    assert used[0].kind == "channel" and used[0].ref.endswith(":c1")
    assert [c.name for c in img.channels][1] == "GFP"


def test_image_selection_by_id_and_unknown_ids(analysis_repo: Repository) -> None:
    ids = [i.id for i in analysis_repo.images.all()]
    spec = parse_pipeline(pipeline_text())
    report = run_pipeline(analysis_repo, spec, image_ids=ids[:1])
    assert report.images == 1 and report.computed == 2
    with pytest.raises(InvalidInput, match="no image with id"):
        run_pipeline(analysis_repo, spec, image_ids=["nope"])


def test_where_selects_images_with_the_query_language(analysis_repo: Repository) -> None:
    if not hasattr(analysis_repo.query, "find_ids"):
        pytest.skip("the catalog query language is not in this tree")
    spec = parse_pipeline(pipeline_text())
    report = run_pipeline(analysis_repo, spec, where='well = "A02"')
    assert report.images == 1
    ran = {s.image_id for s in analysis_repo.runs.steps(report.run_id)}
    (img,) = analysis_repo.images.all(list(ran))
    assert img.position is not None and img.position.well == "A02"


def test_an_interrupted_run_is_marked_and_its_unregistered_files_removed(
    analysis_repo: Repository,
) -> None:
    from datetime import UTC, datetime

    analysis_repo.runs.start(
        {
            "id": "deadbeef" * 4,
            "pipeline_name": "test",
            "spec_json": "{}",
            "spec_hash": "0" * 64,
            "status": "running",
            "started_at": datetime.now(UTC),
            "host": "h",
            "user_name": "u",
            "scheduler": "s",
            "software_json": "{}",
        }
    )
    leftover = analysis_repo.root / "tables" / ("deadbeef" * 4) / "Nuclei_features" / "x.parquet"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    report = _run(analysis_repo)
    assert analysis_repo.runs.get("deadbeef").status == "interrupted"
    assert not leftover.exists() and report.cleaned == [
        str(leftover.relative_to(analysis_repo.root))
    ]


def test_jobs_must_be_positive(analysis_repo: Repository) -> None:
    with pytest.raises(InvalidInput, match="jobs"):
        run_pipeline(analysis_repo, parse_pipeline(pipeline_text()), jobs=0)


def test_an_empty_selection_is_an_error_and_records_no_run(
    tmp_path: Path, analysis_repo: Repository
) -> None:
    """Issue 12 item 10: a run over nothing used to be a 'completed' run of 0 images."""
    repo = Repository.init(tmp_path / "empty")
    with pytest.raises(InvalidInput, match="nothing to run: the repository has no images"):
        run_pipeline(repo, parse_pipeline(pipeline_text()))
    assert repo.runs.all() == []
    repo.close()
    with pytest.raises(InvalidInput, match="selects no image"):
        run_pipeline(analysis_repo, parse_pipeline(pipeline_text()), where='well = "Z99"')
    with pytest.raises(InvalidInput, match="no image was given"):
        run_pipeline(analysis_repo, parse_pipeline(pipeline_text()), image_ids=[])
    assert analysis_repo.runs.all() == []


def test_run_without_fail_env_leaves_env_clean() -> None:
    assert FAIL_LIST_ENV not in os.environ


ILLUMINATION = """\
name: illum
channels: {DNA: [DAPI, 0]}
steps:
  - id: illum
    tool: illumination-correction
    inputs: {image: DNA}
    parameters: {mode: %s}
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


def test_a_stored_illumination_profile_is_used_recorded_and_keyed(
    analysis_repo: Repository,
) -> None:
    from quantscope.qc import estimate_profiles, load_profile

    before = run_pipeline(analysis_repo, parse_pipeline(ILLUMINATION % "auto"))
    assert before.ok
    stored = run_pipeline(analysis_repo, parse_pipeline(ILLUMINATION % "stored"))
    assert stored.failed == 3  # no profile yet
    assert (
        "no stored illumination profile for plate 'synth', channel 0" in stored.failures[0].message
    )
    estimate_profiles(analysis_repo)
    # the profile is part of the key: the same 'auto' pipeline now recomputes everything
    after = run_pipeline(analysis_repo, parse_pipeline(ILLUMINATION % "auto"))
    assert after.ok and (after.computed, after.reused) == (9, 0)
    art = next(a for a in analysis_repo.runs.artifacts(after.run_id) if a.kind == "table")
    used = analysis_repo.runs.artifact_inputs(art.key)
    derived = next(u for u in used if u.role == "images[DNA_corr]")
    import json

    inner = json.loads(derived.ref)["used"]
    profile = next(u for u in inner if u["kind"] == "profile")
    row = next(p for p in analysis_repo.quality.illumination_profiles() if p.channel == 0)
    assert profile["ref"] == row.store_path and profile["sha256"] == row.sha256
    # intensities are those of the corrected image (raw / flat, as fractions of 65535)
    flat, _ = load_profile(analysis_repo, "synth", 0)
    table = read_table(analysis_repo.root, after.tables["Nuclei_features"])
    raw = read_table(analysis_repo.root, before.tables["Nuclei_features"])
    assert not np.allclose(
        table["Intensity_MeanIntensity_DNA_corr"].to_numpy()[: len(raw)],
        raw["Intensity_MeanIntensity_DNA_corr"].to_numpy()[: len(table)],
    )
    assert table["Intensity_MeanIntensity_DNA_corr"].max() < 1.0 and flat.mean() == pytest.approx(
        1, abs=0.01
    )
    again = run_pipeline(analysis_repo, parse_pipeline(ILLUMINATION % "auto"))
    assert again.computed == 0


def test_an_output_deleted_by_hand_is_computed_again(analysis_repo: Repository) -> None:
    import shutil

    first = _run(analysis_repo)
    labels = next(a for a in analysis_repo.runs.artifacts(first.run_id) if a.kind == "labels")
    shutil.rmtree(analysis_repo.root / labels.path)
    again = _run(analysis_repo)
    # the label image only: the measurements are keyed by the segmentation's key, not by the
    # bytes of its file, and stay valid
    assert again.ok and (again.computed, again.reused) == (1, 5)
    assert (analysis_repo.root / labels.path).is_dir()
    assert labels_digest(read_labels(analysis_repo.root, labels.path)) == labels.sha256
    assert analysis_repo.runs.artifact(labels.key).run_id == again.run_id


def test_a_second_writer_is_refused_while_a_run_holds_the_lock(analysis_repo: Repository) -> None:
    from quantscope.errors import ConcurrentAccess

    with analysis_repo.write_lock(), pytest.raises(ConcurrentAccess, match="another quantscope"):
        _run(analysis_repo)
    assert analysis_repo.runs.all() == []


def test_a_pipeline_with_an_unavailable_tool_is_refused_before_anything_runs(
    analysis_repo: Repository, tmp_path: Path
) -> None:
    from quantscope.analysis import ToolUnavailable

    weights = tmp_path / "model.pt"
    weights.write_bytes(b"x")
    text = f"""\
name: dl
channels: {{DNA: 0}}
steps:
  - id: seg
    tool: cellpose
    inputs: {{image: DNA}}
    parameters: {{weights: {weights}}}
"""
    spec = parse_pipeline(text)
    if spec.steps[0].tool.unavailable() is None:
        pytest.skip("cellpose is installed here")
    with pytest.raises(ToolUnavailable, match="step 'seg': tool 'cellpose' needs the Python"):
        run_pipeline(analysis_repo, spec)
    assert analysis_repo.runs.all() == []


def test_a_tool_can_consume_a_table_and_reads_it_back_when_upstream_is_reused(
    analysis_repo: Repository,
) -> None:
    from typing import Any, ClassVar

    from pydantic import BaseModel, ConfigDict, Field

    from quantscope.analysis import BaseTool, Port, register_tool, unregister_tool

    class BigParams(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_area: float = Field(20.0, ge=0)

    class CountBig(BaseTool):
        name: ClassVar[str] = "test-count-big"
        version: ClassVar[str] = "0.1"
        inputs: ClassVar[tuple[Port, ...]] = (Port("table", "table"),)
        outputs: ClassVar[tuple[Port, ...]] = (Port("table", "table"),)
        Parameters: ClassVar[type[BaseModel] | None] = BigParams

        def run(self, inputs: Any, params: Any, ctx: Any) -> Any:
            t = inputs["table"]
            return {
                "table": pd.DataFrame(
                    {"big": [int((t["AreaShape_Area"] >= params.min_area).sum())]}
                )
            }

    register_tool(CountBig(), replace=True)
    try:
        text = pipeline_text() + (
            "  - id: count\n    tool: test-count-big\n    inputs: {table: Nuclei_features}\n"
            "    parameters: {min_area: %s}\n    outputs: {table: Big}\n"
        )
        first = run_pipeline(analysis_repo, parse_pipeline(text % 20))
        assert first.ok and first.computed == 9
        second = run_pipeline(analysis_repo, parse_pipeline(text % 50))
        assert (second.computed, second.reused) == (3, 6)  # the tables are read back
        features = read_table(analysis_repo.root, second.tables["Nuclei_features"])
        big = read_table(analysis_repo.root, second.tables["Big"]).set_index("image_id")["big"]
        expected = features[features["AreaShape_Area"] >= 50].groupby("image_id").size()
        assert big.to_dict() == expected.reindex(big.index, fill_value=0).to_dict()
        arts = [a for a in analysis_repo.runs.artifacts(second.run_id) if a.output == "Big"]
        used = [u for u in analysis_repo.runs.artifact_inputs(arts[0].key) if u.kind != "setting"]
        assert used[0].kind == "artifact" and used[0].role == "table"
    finally:
        unregister_tool("test-count-big")
