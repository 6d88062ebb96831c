"""Sidecars: REMBI keys checked (did-you-mean), values typed and unit-converted, errors with
file, line and field; images matched by folder, file name and plate/well."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantscope.errors import InvalidInput, NotFound
from quantscope.metadata import (
    annotation_keys,
    find_sidecars,
    key_spec,
    load_sidecar,
    parse_quantity,
    parse_sidecar_text,
    parse_value,
)
from quantscope.model import Image, PlatePosition, SourceFile

FULL = """\
study:
  title: Nuclear size under nocodazole in U2OS cells
  authors: [Ada Lovelace, Alan Turing]
  license: cc-by-4.0
  release_date: 2024-05-01
biosample:
  organism: Homo sapiens
  cell_line: {label: U2OS, curie: CVCL_0042}
  treatment: {compound: nocodazole, concentration: 100 nM, duration: 24 h}
  live: no
specimen:
  fixation: 4% PFA, 15 min
  stain:
    DAPI: {target: DNA, fluorophore: DAPI}
tags: [pilot]
images:
  - well: a1
    biosample.experimental_status: control
    tags: [control]
  - file: "*_B02_*"
    biosample.treatment.concentration: 1 uM
"""


def values(sc: object, key: str) -> list[object]:
    return [e.value for e in sc.entries if e.key == key]  # type: ignore[attr-defined]


def test_full_yaml_sidecar() -> None:
    sc = parse_sidecar_text(FULL, "/data/plate1/quantscope.yaml")
    [org] = values(sc, "biosample.organism")
    assert (org.value, org.curie) == ("Homo sapiens", "NCBITaxon:9606")  # filled in
    [line] = values(sc, "biosample.cell_line")
    assert (line.value, line.curie) == ("U2OS", "CVCL_0042")
    conc = values(sc, "biosample.treatment.concentration")
    assert [(c.num_value, c.unit) for c in conc] == [(pytest.approx(0.1), "µM"), (1.0, "µM")]
    [dur] = values(sc, "biosample.treatment.duration")
    assert (dur.value, dur.num_value, dur.unit) == ("24 h", 86400.0, "s")
    assert [a.value for a in values(sc, "study.authors")] == ["Ada Lovelace", "Alan Turing"]
    assert values(sc, "study.license")[0].value == "CC-BY-4.0"  # canonical spelling
    assert values(sc, "study.release_date")[0].value == "2024-05-01"
    assert values(sc, "biosample.live")[0].value == "false"
    assert values(sc, "specimen.stain.DAPI.target")[0].value == "DNA"
    assert sorted(v.value for v in values(sc, "tag")) == ["control", "pilot"]
    control = next(e for e in sc.entries if e.key == "biosample.experimental_status")
    assert control.selector is not None and control.selector.well == "A01"
    assert control.line == 18


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "study:\n  titel: x\n",
            r"quantscope.yaml:2: unknown key 'study.titel'; did you mean 'study.title'",
        ),
        (
            "specimen:\n  stain:\n    DAPI: {targte: DNA}\n",
            r"quantscope.yaml:3: unknown key 'specimen.stain.DAPI.targte'; did you mean "
            r"'specimen.stain.DAPI.target'",
        ),
        (
            "biosample:\n  treatment:\n    concentration: 100 parsecs\n",
            r"quantscope.yaml:3: field 'biosample.treatment.concentration': unit 'parsecs' is "
            r"not a unit of concentration",
        ),
        (
            "biosample:\n  treatment:\n    duration: 24\n",
            r"quantscope.yaml:3: field 'biosample.treatment.duration': 24 has no unit",
        ),
        (
            "biosample:\n  organism: {label: Homo sapiens, curie: 'NCBITaxon:human'}\n",
            r"quantscope.yaml:2: field 'biosample.organism': 'NCBITaxon:human' is not a valid term",
        ),
        ("study:\n  license: WTFPL\n", r"field 'study.license': 'WTFPL' is not one of"),
        ("study:\n  title: [a, b]\n", r"field 'study.title': takes one value, got a list of 2"),
        ("study:\n  release_date: May 2024\n", r"'May 2024' is not a date \(YYYY-MM-DD\)"),
        ("biosample:\n  live: maybe\n", r"'maybe' is not true/false"),
        ("study: [a\n", r"quantscope.yaml:\d+: not valid YAML"),
        ("- a\n- b\n", r"quantscope.yaml:1: a YAML sidecar is a mapping of keys"),
        ("images:\n  - {tags: [x]}\n", r"an entry needs a selector: file, plate, well or field"),
        ("images:\n  - {well: Q, tag: x}\n", r"'Q' is not a well name"),
        ("images:\n  - {field: 0, tag: x}\n", r"is not a field number"),
    ],
)
def test_yaml_errors_name_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected) as info:
        parse_sidecar_text(text, "/data/quantscope.yaml")
    assert str(info.value).startswith("/data/quantscope.yaml: invalid sidecar: ")


def test_all_errors_are_reported_at_once() -> None:
    text = "study:\n  titel: x\nbiosample:\n  organsim: y\n  live: maybe\n"
    with pytest.raises(InvalidInput) as info:
        parse_sidecar_text(text, "quantscope.yaml")
    msg = str(info.value)
    assert "quantscope.yaml:2:" in msg and "quantscope.yaml:4:" in msg and ":5:" in msg
    assert "did you mean 'biosample.organism'" in msg


def test_csv_sidecar_with_units_in_the_header() -> None:
    text = (
        "file,well,biosample.treatment.concentration [nM],biosample.treatment.compound,tags\n"
        "img_A01.tif,,50,DMSO,control;vehicle\n"
        ",B02,1000,nocodazole,\n"
    )
    sc = parse_sidecar_text(text, "quantscope.csv")
    conc = values(sc, "biosample.treatment.concentration")
    assert [(c.value, c.num_value) for c in conc] == [("50 nM", 0.05), ("1000 nM", 1.0)]
    assert [v.value for v in values(sc, "tag")] == ["control", "vehicle"]
    assert [e.line for e in sc.entries if e.key == "biosample.treatment.compound"] == [2, 3]
    sel = [e.selector for e in sc.entries if e.key == "biosample.treatment.compound"]
    assert sel[0] is not None and sel[0].file == "img_A01.tif"
    assert sel[1] is not None and sel[1].well == "B02"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("well,biosample.organsim\nA01,x\n", r"quantscope.csv:1: unknown key 'biosample.organsim'"),
        ("biosample.organism\nHomo sapiens\n", r"no selector column"),
        (
            "well,biosample.treatment.duration\nA01,3 fortnights\n",
            r"quantscope.csv:2: field 'biosample.treatment.duration': unit 'fortnights'",
        ),
        ("well,tag\nA01,x,y\n", r"quantscope.csv:2: 3 cells but 2 columns"),
        ("", r"quantscope.csv:1: the CSV file is empty"),
    ],
)
def test_csv_errors(text: str, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected):
        parse_sidecar_text(text, "quantscope.csv")


def test_load_sidecar_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_sidecar(tmp_path / "quantscope.yaml")
    bad = tmp_path / "quantscope.yaml"
    bad.write_bytes(b"study:\n  title: \xff\xfe\n")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        load_sidecar(bad)
    other = tmp_path / "meta.json"
    other.write_text("{}")
    with pytest.raises(InvalidInput, match=r"\.yaml, \.yml or \.csv"):
        load_sidecar(other)


def _image(name: str, path: Path, pos: PlatePosition | None = None) -> Image:
    sha = (name.encode().hex() * 64)[:64]
    return Image(
        id=name,
        name=name,
        shape=(1, 1, 1, 2, 2),
        dtype="uint8",
        position=pos,
        sources=(SourceFile(path=str(path), size=1, sha256=sha, reader="test"),),
    )


def test_matching_by_folder_file_and_well(tmp_path: Path) -> None:
    sc = parse_sidecar_text(FULL, tmp_path / "plate1" / "quantscope.yaml")
    a01 = _image(
        "a01", tmp_path / "plate1" / "x_A01_s1.tif", PlatePosition(plate="P", row=0, column=0)
    )
    b02 = _image(
        "b02",
        tmp_path / "plate1" / "sub" / "x_B02_s1.tif",
        PlatePosition(plate="P", row=1, column=1),
    )
    outside = _image("out", tmp_path / "other" / "y.tif")
    anns, notes = sc.annotations_for([a01, b02, outside])
    by = {(a.target_id, a.key): a for a in anns if a.key != "tag"}
    assert {t for t, _ in by} == {"a01", "b02"}  # not the image outside the folder
    assert ("a01", "biosample.experimental_status") in by
    assert ("b02", "biosample.experimental_status") not in by
    # the entry for B02 overrides the folder-wide concentration of that image only
    assert by[("b02", "biosample.treatment.concentration")].num_value == 1.0
    assert by[("a01", "biosample.treatment.concentration")].num_value == pytest.approx(0.1)
    tags = sorted((a.target_id, a.value) for a in anns if a.key == "tag")
    assert tags == [("a01", "control"), ("a01", "pilot"), ("b02", "pilot")]
    assert all(a.source == "sidecar:quantscope.yaml" for a in anns)
    assert notes == []
    anns_all, _ = sc.annotations_for([outside], all_in_scope=True)
    assert {a.target_id for a in anns_all} == {"out"}


def test_entries_matching_nothing_become_notes(tmp_path: Path) -> None:
    sc = parse_sidecar_text("images:\n  - {well: H12, tag: x}\n", tmp_path / "quantscope.yaml")
    anns, notes = sc.annotations_for([_image("a", tmp_path / "a.tif")])
    assert anns == []
    assert notes == ["quantscope.yaml:2: no image matches well='H12'"]


def test_find_sidecars(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a" / "quantscope.yaml").write_text("tags: [x]\n")
    (tmp_path / "a" / "b" / "quantscope.csv").write_text("well,tag\nA01,x\n")
    (tmp_path / ".hidden" / "quantscope.yaml").write_text("tags: [x]\n")
    (tmp_path / "a" / "img.tif").write_bytes(b"")
    found = find_sidecars([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a/quantscope.yaml",
        "a/b/quantscope.csv",
    ]
    assert find_sidecars([tmp_path / "a" / "img.tif"]) == [tmp_path / "a" / "quantscope.yaml"]


def test_key_list_is_data_and_covers_rembi_modules() -> None:
    keys = annotation_keys()
    modules = {k.rembi for k in keys}
    assert {
        "study",
        "biosample",
        "specimen",
        "image_acquisition",
        "image_data",
        "analysis",
    } <= modules
    for k in keys:
        assert re.fullmatch(r"[a-z_]+(\.[a-z_*]+)*", k.key), k.key
        assert k.type in {
            "text",
            "int",
            "number",
            "bool",
            "date",
            "url",
            "term",
            "quantity",
            "choice",
        }
        assert k.jsonld, k.key
    spec = key_spec("custom.anything.goes")
    assert spec is not None and spec.type == "text"
    assert key_spec("nonsense.key") is None


@pytest.mark.parametrize(
    ("text", "dimension", "expected"),
    [
        ("100 nM", "concentration", (0.1, "µM")),
        ("5 mM", "concentration", (5000.0, "µM")),
        ("10 ug/mL", "concentration", (10.0, "µg/mL")),
        ("0.1 %", "concentration", (0.1, "%")),
        ("90 min", "time", (5400.0, "s")),
        ("2 d", "time", (172800.0, "s")),
        ("1.5e2 ms", "time", (0.15, "s")),
    ],
)
def test_quantities_are_converted(text: str, dimension: str, expected: tuple[float, str]) -> None:
    value, unit = parse_quantity(text, dimension)
    assert (value, unit) == (pytest.approx(expected[0]), expected[1])


def test_terms_in_several_spellings() -> None:
    assert parse_value("biosample.organism", "NCBITaxon:10090").value == "Mus musculus"
    v = parse_value("biosample.cell_line", "HeLa (CVCL_0030)")
    assert (v.value, v.curie) == ("HeLa", "CVCL_0030")
    v = parse_value("biosample.cell_line", "cellosaurus:CVCL_0042")
    assert v.curie == "CVCL_0042" and v.value == "U2OS"
    v = parse_value("biosample.organism", "Unknownia exotica")
    assert (v.value, v.curie) == ("Unknownia exotica", None)  # allowed; completeness flags it
    with pytest.raises(ValueError, match="not a valid term id"):
        parse_value("biosample.cell_line", "CVCL_1")


@given(
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([("nM", 1e-3), ("uM", 1.0), ("µM", 1.0), ("mM", 1e3), ("M", 1e6)]),
)
def test_concentration_in_any_unit_is_micromolar(value: float, unit: tuple[str, float]) -> None:
    """A value written inline ("5 nM") or with the unit in a CSV header gives the same µM."""
    name, factor = unit
    inline = parse_value("biosample.treatment.concentration", f"{value!r} {name}")
    header = parse_value("biosample.treatment.concentration", repr(value), name)
    assert inline.unit == header.unit == "µM"
    assert inline.num_value == header.num_value == pytest.approx(value * factor, rel=1e-12)


_SAMPLE_VALUES = {
    "study.title": st.text("abcdef XYZ", min_size=1).map(str.strip).filter(bool),
    "study.license": st.sampled_from(["CC0-1.0", "cc-by-4.0", "MIT"]),
    "study.authors": st.lists(st.sampled_from(["Ada Lovelace", "Alan Turing"]), min_size=1),
    "biosample.organism": st.sampled_from(["Homo sapiens", "NCBITaxon:10090", "Danio rerio"]),
    "biosample.cell_line": st.sampled_from(["HeLa", "CVCL_0042", "U2OS (CVCL_0042)"]),
    "biosample.live": st.booleans(),
    "biosample.treatment.duration": st.sampled_from(["24 h", "30 min", "2 d"]),
    "biosample.treatment.concentration": st.sampled_from(["100 nM", "5 ug/mL", "0.1 %"]),
    "specimen.stain.DAPI.target": st.just("DNA"),
    "image_data.contrast_inversion": st.booleans(),
}


@given(st.dictionaries(st.sampled_from(sorted(_SAMPLE_VALUES)), st.none(), min_size=1).flatmap(
    lambda keys: st.fixed_dictionaries({k: _SAMPLE_VALUES[k] for k in keys})
))  # fmt: skip
def test_nested_yaml_equals_the_flat_keys(flat: dict[str, object]) -> None:
    """Writing keys nested (study: {title: ...}) or dotted gives the same checked values."""
    import yaml

    nested: dict[str, object] = {}
    for key, value in flat.items():
        node = nested
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})  # type: ignore[assignment]
        node[last] = value  # type: ignore[index]
    a = parse_sidecar_text(yaml.safe_dump(nested), "quantscope.yaml")
    b = parse_sidecar_text(yaml.safe_dump(flat), "quantscope.yaml")
    pairs = [
        (k, parse_value(k, v))
        for k, vs in flat.items()
        for v in (vs if isinstance(vs, list) else [vs])
    ]
    expected = sorted(pairs, key=repr)
    for sc in (a, b):
        assert sorted(((e.key, e.value) for e in sc.entries), key=repr) == expected
