"""Pipeline specs: parsing, validation errors that name the file, line and step, the spec hash,
and the pipelines shipped in pipelines/."""

from __future__ import annotations

from pathlib import Path

import pytest

from _analysis_support import pipeline_text
from quantscope.analysis import load_pipeline, parse_pipeline
from quantscope.errors import InvalidInput, NotFound

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


pytestmark = pytest.mark.usefixtures("analysis_tools")


def test_a_valid_spec_resolves_steps_ports_and_defaults() -> None:
    p = parse_pipeline(pipeline_text(min_area=9))
    assert p.name == "test" and [s.id for s in p.steps] == ["seg", "measure"]
    seg, measure = p.steps
    assert seg.params.model_dump() == {"min_area": 9}
    assert measure.params.model_dump() == {"scale": 1.0}  # default filled in
    assert seg.outputs == {"labels": ("Nuclei", "labels")}
    assert [n for n, _ in measure.inputs["images"]] == ["DNA"]
    assert measure.inputs["labels"][0][1].step == "seg"
    assert seg.line == 5 and measure.line == 10
    assert p.channels == {"DNA": ("DAPI", 0)}
    assert seg.persisted() == ["labels"] and measure.persisted() == ["table"]


def test_the_hash_depends_on_what_is_computed_only() -> None:
    a = parse_pipeline(pipeline_text())
    assert parse_pipeline(pipeline_text()).hash == a.hash
    # comments, layout and explicit defaults change nothing
    same = (
        pipeline_text()
        .replace("name: test", "name: test  # a comment")
        .replace("{scale: 1.0}", "{}")
    )
    assert parse_pipeline(same).hash == a.hash
    assert parse_pipeline(pipeline_text(scale=2.0)).hash != a.hash
    assert parse_pipeline(pipeline_text(min_area=5)).hash != a.hash
    assert len(a.hash) == 64


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "tool: test-threshold",
            "tool: no-such-tool",
            r"<t>:6: step 'seg' \(no-such-tool\): no analysis tool named 'no-such-tool' is "
            r"installed \(installed: .*test-threshold",
        ),
        (
            "{min_area: 4}",
            "{min_area: -1}",
            r"<t>:8: step 'seg' .*parameter 'min_area': Input should be greater than or equal to 0",
        ),
        (
            "{min_area: 4}",
            "{min_aera: 4}",
            r"<t>:8: step 'seg' .*parameter 'min_aera': Extra inputs are not permitted "
            r"\(parameters of test-threshold: min_area\)",
        ),
        ("{min_area: 4}", "{min_area: many}", r"<t>:8: .*min_area.*valid integer"),
        (
            "inputs: {image: DNA}",
            "inputs: {image: RNA}",
            r"<t>:7: step 'seg' .*'RNA' is neither a channel nor an output of an earlier "
            r"step \(known: DNA\)",
        ),
        (
            "inputs: {image: DNA}",
            "inputs: {picture: DNA}",
            r"<t>:7: .*has no input 'picture' \(its inputs: image\)",
        ),
        (
            "inputs: {image: DNA}",
            "inputs: {}",
            r"<t>:5: step 'seg' .*input 'image' \(image\) is not bound",
        ),
        (
            "inputs: {labels: Nuclei, images: [DNA]}",
            "inputs: {labels: DNA}",
            r"<t>:12: step 'measure' .*input 'labels' takes labels, but 'DNA' is image",
        ),
        (
            "inputs: {image: DNA}",
            "inputs: {image: [DNA, DNA]}",
            r"<t>:7: .*takes one value, not a list",
        ),
        (
            "outputs: {labels: Nuclei}",
            "outputs: {labels: DNA}",
            r"<t>:9: .*output name 'DNA' is already used",
        ),
        ("outputs: {labels: Nuclei}", "outputs: {mask: Nuclei}", r"<t>:9: .*has no output 'mask'"),
        (
            "id: measure",
            "id: seg",
            r"<t>:10: step 'seg' \(test-area\): step id 'seg' is used twice",
        ),
        ("id: seg", "id: 1seg", r"<t>:5: step 1seg: steps.0.id: String should match pattern"),
        (
            "channels:",
            "chanels:",
            r"<t>:2: chanels: Extra inputs are not permitted \(allowed: name, description, "
            r"pixel_size_um, channels, steps\) \(and 1 more\)",
        ),
        ("  DNA: [DAPI, 0]", "  DNA: [DAPI, -1]", r"<t>:3: channel 'DNA': index -1 < 0"),
    ],
)
def test_invalid_specs_name_file_line_and_step(old: str, new: str, message: str) -> None:
    text = pipeline_text()
    assert old in text
    with pytest.raises(InvalidInput, match=message):
        parse_pipeline(text.replace(old, new, 1), source="<t>")


def test_a_tool_whose_outputs_are_consumed_before_they_exist_is_refused() -> None:
    text = pipeline_text()
    seg_block = text[text.index("  - id: seg") : text.index("  - id: measure")]
    measure_block = text[text.index("  - id: measure") :]
    swapped = text[: text.index("  - id: seg")] + measure_block + seg_block
    with pytest.raises(InvalidInput, match="'Nuclei' is neither a channel nor an output"):
        parse_pipeline(swapped, source="<t>")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nsteps: [\n", r"<t>:3: not valid YAML"),
        ("- a\n- b\n", r"a pipeline is a YAML mapping"),
        ("name: x\nchannels: {DNA: 0}\nsteps: []\n", r"<t>:3: steps: List should have at least 1"),
        ("name: x\nsteps: [{id: a, tool: test-threshold}]\n", r"<t>:1: channels: Field required"),
    ],
)
def test_malformed_documents(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_pipeline(text, source="<t>")


def test_load_pipeline_names_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="pipeline file not found"):
        load_pipeline(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInput, match=r"bad\.yaml: cannot be read"):
        load_pipeline(bad)
    good = tmp_path / "p.yaml"
    good.write_text(pipeline_text())
    p = load_pipeline(good)
    assert p.path == good.absolute()
    bad2 = tmp_path / "q.yaml"
    bad2.write_text(pipeline_text(min_area=-3))
    with pytest.raises(InvalidInput, match=r"q.yaml:8: step 'seg'"):
        load_pipeline(bad2)


def test_profile_ports_cannot_be_bound_by_hand() -> None:
    text = """\
name: x
channels: {DNA: 0}
steps:
  - id: illum
    tool: illumination-correction
    inputs: {image: DNA, profile: DNA}
"""
    with pytest.raises(InvalidInput, match=r"<t>:6: .*has no input 'profile'"):
        parse_pipeline(text, source="<t>")


@pytest.mark.parametrize("name", ["nuclei.yaml", "example_human.yaml"])
def test_shipped_pipelines_are_valid(name: str) -> None:
    p = load_pipeline(PIPELINES / name)
    assert p.steps and len(p.hash) == 64
    tools = [s.tool.name for s in p.steps]
    assert "measure" in tools


def test_nuclei_pipeline_is_illumination_segmentation_measurement_with_defaults() -> None:
    from quantscope.analysis._segment import NucleiParams

    p = load_pipeline(PIPELINES / "nuclei.yaml")
    assert [s.tool.name for s in p.steps] == [
        "illumination-correction",
        "segment-nuclei",
        "measure",
    ]
    assert p.steps[0].params.model_dump()["mode"] == "auto"
    assert p.steps[1].params == NucleiParams()
