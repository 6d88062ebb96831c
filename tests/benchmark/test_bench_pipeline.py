"""Synthetic ground-truth sets (ingested images) and runs of a quantscope pipeline on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantscope.benchmark import add_set, add_synthetic_set, run_benchmark
from quantscope.benchmark._leaderboard import leaderboard, render_leaderboard_html
from quantscope.benchmark._pipeline import pipeline_predictions
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput

PIPELINE = """
name: seg
channels:
  DNA: [DAPI, 0]
steps:
  - id: nuclei
    tool: segment-nuclei
    inputs: {image: DNA}
    parameters: {threshold_correction: THRESH}
    outputs: {labels: Nuclei}
"""


@pytest.mark.slow
def test_synthetic_set_scored_with_a_pipeline(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r") as repo:
        s = add_synthetic_set(
            repo, "synth-easy", n_images=3, size=128, density=1.0, seed=3, qc=False
        )
        assert s.n_items == 3 and s.n_objects > 0
        assert all(i.image_id for i in s.items)
        syn = s.provenance["synthetic"]
        assert syn["options"]["size"] == 128 and syn["options"]["seed"] == 3
        assert s.license.startswith("CC0-1.0")
        # the same options regenerate the same ground truth
        again = add_synthetic_set(
            repo, "synth-again", n_images=3, size=128, density=1.0, seed=3, qc=False
        )
        assert [i.labels_sha256 for i in again.items] == [i.labels_sha256 for i in s.items]
        spec = tmp_path / "seg.yaml"  # the tool's defaults
        spec.write_text("\n".join(ln for ln in PIPELINE.splitlines() if "parameters" not in ln))
        runs = []
        for overrides in (None, {"nuclei.threshold_correction": 2.5}):
            pred = pipeline_predictions(repo, "synth-easy", spec, overrides=overrides)
            assert set(pred.labels) == {i.name for i in s.items} and not pred.failures
            run = run_benchmark(
                repo,
                "synth-easy",
                pred.labels,
                method=pred.method,
                tool=pred.tool,
                tool_version=pred.tool_version,
                parameters=pred.parameters,
                source_kind="pipeline",
                source=str(spec),
                analysis_run_id=pred.analysis_run_id,
            )
            runs.append(run)
        default, strict = runs
        assert default.method == "seg" and strict.method == "seg(threshold_correction=2.5)"
        assert default.source_kind == "pipeline" and default.analysis_run_id
        assert repo.runs.get(default.analysis_run_id).id == default.analysis_run_id
        assert strict.parameters["threshold_correction"] == 2.5
        assert default.parameters["threshold_correction"] != 2.5
        assert default.summary["mean"]["f1"]["value"] > 0.8  # easy synthetic nuclei
        board = leaderboard(repo, "synth-easy")
        assert {e.method for e in board.entries} == {"seg", "seg(threshold_correction=2.5)"}
        page = render_leaderboard_html(repo, board)
        assert page.count("<figure>") == 6  # 3 worst images of each of the 2 methods


def test_pipeline_needs_ingested_images(tmp_path: Path, bbbc039: Path) -> None:
    spec = tmp_path / "seg.yaml"
    spec.write_text(PIPELINE.replace("THRESH", "1.0"))
    with Repository.init(tmp_path / "r") as repo:
        add_set(repo, "refs", bbbc039 / "labels", bbbc039 / "images", ingest=False)
        with pytest.raises(InvalidInput, match=r"no repository image.*--predictions"):
            pipeline_predictions(repo, "refs", spec)
        with pytest.raises(InvalidInput, match=r"has no step 'segment' \(steps: nuclei\)"):
            pipeline_predictions(repo, "refs", spec, overrides={"segment.h_um": 1})
        with pytest.raises(InvalidInput, match=r"STEP\.PARAMETER=VALUE"):
            pipeline_predictions(repo, "refs", spec, overrides={"h_um": 1})
        with pytest.raises(InvalidInput, match="no label output 'Cells'"):
            pipeline_predictions(repo, "refs", spec, output="Cells")


def test_synthetic_options_are_checked(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r") as repo:
        with pytest.raises(InvalidInput, match="snr"):
            add_synthetic_set(repo, "bad", snr=-1)
        with pytest.raises(InvalidInput, match="objects"):
            add_synthetic_set(repo, "bad", objects="mitochondria")
        with pytest.raises(InvalidInput, match="n_images"):
            add_synthetic_set(repo, "bad", n_images=0)
        assert repo.bench.sets() == []
