"""What a step's cache key covers, and what a run reuses (issue 12, items 4, 5 and the run's
pixel-size override of item 1).

- the pixel size actually used (pipeline ``pixel_size_um`` for images without one, the run's
  override): changing it recomputes the segmentation (before: "computed 0");
- the tool's code identity: a changed tool source with the same version recomputes;
- a registered output that is damaged is computed again, not reused; one that a computed step
  reads back must match its checksum;
- a tool whose sizes are in µm fails, saying what to do, where no pixel size is known.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from _analysis_support import fixture_repo, pipeline_text
from quantscope.analysis import (
    labels_digest,
    parse_pipeline,
    read_labels,
    register_tool,
    run_pipeline,
    unregister_tool,
)
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput

# ExampleHuman's DNA channel, nuclei as in pipelines/example_human.yaml
NUCLEI = """\
name: eh-nuclei
%(px)s
channels:
  DNA: [DNA, d0, 0]
steps:
  - id: nuclei
    tool: segment-nuclei
    inputs: {image: DNA}
    parameters:
      threshold_method: li
      smoothing_sigma_um: 1.0
      min_diameter_um: 8.0
      max_diameter_um: 80.0
      exclude_border: true
    outputs: {labels: Nuclei}
"""


def _nuclei(px: float | None = None) -> str:
    return NUCLEI % {"px": f"pixel_size_um: {px}" if px is not None else ""}


@pytest.fixture(scope="module")
def example_human_template(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quantscope.ingestion import ingest

    images = data_root / "cellprofiler_examples" / "ExampleHuman" / "images"
    root = tmp_path_factory.mktemp("eh") / "repo"
    with Repository.init(root) as repo:
        added = ingest(repo, [images], pattern="{plate}_{well}f{field0}d{channel}", qc=False).added
        assert len(added) == 1
        # the files record no pixel size (no calibration in µm): that is the point here
        assert added[0].physical_size_x_um is None
    return root


@pytest.fixture
def example_human(example_human_template: Path, tmp_path: Path) -> Iterator[Repository]:
    import shutil

    shutil.copytree(example_human_template, tmp_path / "repo")
    with Repository.open(tmp_path / "repo") as repo:
        yield repo


def _labels_of(repo: Repository, run_id: str) -> np.ndarray:
    (art,) = [a for a in repo.runs.artifacts(run_id) if a.kind == "labels"]
    return read_labels(repo.root, art.path)


# ------------------------------------------------------------------------ pixel size (item 5)
def test_changing_the_pipelines_pixel_size_recomputes_the_segmentation(
    example_human: Repository,
) -> None:
    first = run_pipeline(example_human, parse_pipeline(_nuclei(1.0)))
    assert first.ok and first.computed == 1
    same = run_pipeline(example_human, parse_pipeline(_nuclei(1.0)))
    assert (same.computed, same.reused) == (0, 1)
    # 2 µm per pixel: the 8 µm minimum diameter is 4 px, the smoothing half as wide
    other = run_pipeline(example_human, parse_pipeline(_nuclei(2.0)))
    assert other.ok and (other.computed, other.reused) == (1, 0)
    a, b = _labels_of(example_human, first.run_id), _labels_of(example_human, other.run_id)
    assert labels_digest(a) != labels_digest(b)


def test_a_run_can_override_the_pixel_size_and_records_it(example_human: Repository) -> None:
    spec = parse_pipeline(_nuclei(1.0))
    base = run_pipeline(example_human, spec)
    over = run_pipeline(example_human, spec, pixel_size_um=0.65)
    assert over.ok and over.computed == 1
    # the override wins over the pipeline's value (and over an image's own)
    run = example_human.runs.get(over.run_id)
    assert run.spec["pixel_size_um_override"] == 0.65
    (art,) = [a for a in example_human.runs.artifacts(over.run_id) if a.kind == "labels"]
    (setting,) = [u for u in example_human.runs.artifact_inputs(art.key) if u.kind == "setting"]
    assert setting.role == "pixel_size_um"
    assert json.loads(setting.ref) == {"pixel_size_um": 0.65, "source": "override"}
    (base_art,) = [a for a in example_human.runs.artifacts(base.run_id) if a.kind == "labels"]
    (base_setting,) = [
        u for u in example_human.runs.artifact_inputs(base_art.key) if u.kind == "setting"
    ]
    assert json.loads(base_setting.ref) == {"pixel_size_um": 1.0, "source": "pipeline"}
    # the same override again: reused
    again = run_pipeline(example_human, spec, pixel_size_um=0.65)
    assert (again.computed, again.reused) == (0, 1)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "0.65"])
def test_a_bad_pixel_size_override_is_refused(example_human: Repository, bad: object) -> None:
    with pytest.raises(InvalidInput, match="pixel size"):
        run_pipeline(example_human, parse_pipeline(_nuclei()), pixel_size_um=bad)  # type: ignore[arg-type]


def test_without_any_pixel_size_a_tool_with_sizes_in_um_fails_saying_what_to_do(
    example_human: Repository,
) -> None:
    """Before: segment-nuclei silently assumed 0.65 µm for an image without a pixel size."""
    report = run_pipeline(example_human, parse_pipeline(_nuclei()))
    assert not report.ok and report.failed == 1
    (f,) = report.failures
    assert f.error_type == "InvalidInput"
    assert "has no pixel size" in f.message
    assert "quantscope set REPO" in f.message and "pixel_size_um=" in f.message
    assert "--pixel-size-um" in f.message
    assert example_human.runs.artifacts(report.run_id) == []
    # the override makes it run
    assert run_pipeline(example_human, parse_pipeline(_nuclei()), pixel_size_um=1.0).ok


# --------------------------------------------------------------------- tool code (item 5)
TOOL_SOURCE = """
from typing import ClassVar
import numpy as np
from quantscope.analysis import BaseTool, Port


class Code(BaseTool):
    name: ClassVar[str] = "test-code"
    version: ClassVar[str] = "1.0"
    inputs: ClassVar[tuple] = (Port("image", "image"),)
    outputs: ClassVar[tuple] = (Port("labels", "labels"),)
    pixel_size: ClassVar[str] = "unused"

    def run(self, inputs, params, ctx):
        img = np.asarray(inputs["image"], dtype=np.float32)
        return {"labels": (img > np.percentile(img, PCT)).astype(np.int32)}
"""

CODE_PIPELINE = """\
name: code
channels:
  DNA: [DAPI, 0]
steps:
  - id: seg
    tool: test-code
    inputs: {image: DNA}
    outputs: {labels: Mask}
"""


def _load_tool(folder: Path, pct: int) -> object:
    import os

    f = folder / "qs_test_code_tool.py"
    f.write_text(textwrap.dedent(TOOL_SOURCE).replace("PCT", str(pct)))
    st = f.stat()  # a distinct modification time, as an edit has
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + pct * 1_000_000_000))
    sys.modules.pop("qs_test_code_tool", None)
    importlib.invalidate_caches()
    module = importlib.import_module("qs_test_code_tool")
    return module.Code()


def test_a_tool_whose_code_changed_is_recomputed_even_at_the_same_version(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    monkeypatch.syspath_prepend(str(code_dir))
    gen = fixture_repo(tmp_path_factory, tmp_path)
    repo = next(gen)
    try:
        register_tool(_load_tool(code_dir, 50), replace=True)  # type: ignore[arg-type]
        first = run_pipeline(repo, parse_pipeline(CODE_PIPELINE))
        assert first.ok and first.computed == 3
        assert run_pipeline(repo, parse_pipeline(CODE_PIPELINE)).computed == 0
        register_tool(_load_tool(code_dir, 90), replace=True)  # type: ignore[arg-type]
        changed = run_pipeline(repo, parse_pipeline(CODE_PIPELINE))
        assert changed.ok and (changed.computed, changed.reused) == (3, 0)
    finally:
        unregister_tool("test-code")
        sys.modules.pop("qs_test_code_tool", None)
        gen.close()


def test_tool_identity_names_package_version_and_source() -> None:
    from quantscope.analysis import get_tool
    from quantscope.analysis._tool import tool_identity

    ident = tool_identity(get_tool("segment-nuclei"))
    assert ident["distribution"] == "quantscope" and ident["distribution_version"]
    assert ident["code_sha256"] and len(ident["code_sha256"]) == 64
    # the algorithm module is part of it: a tool in the same wrapper module but another
    # algorithm module (measure) differs
    assert tool_identity(get_tool("measure"))["code_sha256"] != ident["code_sha256"]


# ------------------------------------------------------------- damaged outputs (item 4)
@pytest.mark.usefixtures("analysis_tools")
def test_a_registered_label_image_without_level_metadata_is_computed_again(
    analysis_repo: Repository,
) -> None:
    """What the race left (a label image without ``0/zarr.json``) was reused by re-runs."""
    first = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    art = next(a for a in analysis_repo.runs.artifacts(first.run_id) if a.kind == "labels")
    (analysis_repo.root / art.path / "0" / "zarr.json").unlink()
    again = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    assert again.ok and (again.computed, again.reused) == (1, 5)
    assert labels_digest(read_labels(analysis_repo.root, art.path)) == art.sha256


@pytest.mark.usefixtures("analysis_tools")
def test_a_damaged_output_read_back_by_a_computed_step_is_computed_again(
    analysis_repo: Repository,
) -> None:
    first = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    art = next(a for a in analysis_repo.runs.artifacts(first.run_id) if a.kind == "labels")
    level0 = analysis_repo.root / art.path / "0"
    chunk = next(p for p in level0.rglob("*") if p.is_file() and p.name != "zarr.json")
    # another label image's chunk, same shape and codecs: it decodes, to other values
    other = next(
        a
        for a in analysis_repo.runs.artifacts(first.run_id)
        if a.kind == "labels" and a.key != art.key
    )
    rel = chunk.relative_to(level0)
    chunk.write_bytes((analysis_repo.root / other.path / "0" / rel).read_bytes())
    # a new measurement parameter: measure is computed and reads the segmentation back
    again = run_pipeline(analysis_repo, parse_pipeline(pipeline_text(scale=2.0)))
    assert again.ok, again.failures
    assert (again.computed, again.reused) == (4, 2)  # 3 measures + the damaged segmentation
    assert labels_digest(read_labels(analysis_repo.root, art.path)) == art.sha256


@pytest.mark.usefixtures("analysis_tools")
def test_an_output_that_cannot_be_read_back_fails_its_step_and_is_not_registered(
    analysis_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantscope.analysis import _outputs

    monkeypatch.setattr(_outputs, "_readback_problem", lambda *a: "level 0 has no zarr.json")
    report = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()), jobs=2)
    assert not report.ok and report.failed == 3 and report.skipped == 3
    assert {f.error_type for f in report.failures if f.status == "failed"} == {"IntegrityError"}
    assert all("cannot be read back" in f.message for f in report.failures if f.status == "failed")
    assert analysis_repo.runs.artifacts(report.run_id) == []


@pytest.mark.usefixtures("analysis_tools")
def test_leftovers_in_an_images_labels_group_are_removed_at_the_start_of_a_run(
    analysis_repo: Repository,
) -> None:
    img = analysis_repo.images.all()[0]
    group = analysis_repo.root / img.store_path / "labels"
    group.mkdir(exist_ok=True)
    leftover = group / ".Nuclei-0123.tmp-deadbeef"
    (leftover / "0").mkdir(parents=True)
    report = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    assert report.ok and not leftover.exists()
    assert str(leftover.relative_to(analysis_repo.root)) in report.cleaned
