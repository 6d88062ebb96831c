"""Every OME-Zarr quantscope writes is valid NGFF 0.5 and reads back in other tools.

Checked three ways: the official NGFF 0.5 JSON schemas (strict variants) from
``../shared/data/ngff_spec_conformance``, `ome_zarr_models` (pydantic models of the spec, which
also check the arrays against the metadata), and real readers: ome-zarr-py (what napari and
viewers use, including the HCS plate view) and bioio-ome-zarr / `bioio.BioImage`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from quantscope.io import (
    ChannelDisplay,
    ImageSpec,
    SourceImage,
    WriteResult,
    open_sources,
    pyramid_shapes,
    write_image,
    write_plate_groups,
)
from quantscope.model import well_name

# ---------------------------------------------------------------- NGFF JSON schema checker
# jsonschema is not a dependency, so this is the small subset of JSON Schema 2020-12 the NGFF
# 0.5 schemas use. `test_schema_checker_agrees_with_official_suites` runs the spec's own
# conformance suites through it, so a check that passes here is one the spec would pass.

_SCHEMA_ID = "https://ngff.openmicroscopy.org/0.5/schemas/"
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return name == "number" or float(value).is_integer()
    return isinstance(value, _TYPES[name])


def _unique(items: list[Any]) -> bool:
    keys = [json.dumps(i, sort_keys=True) for i in items]
    return len(set(keys)) == len(keys)


class NgffSchemas:
    def __init__(self, folder: Path) -> None:
        self.docs = {
            _SCHEMA_ID + p.name: json.loads(p.read_text()) for p in folder.glob("*.schema")
        }

    def errors(self, name: str, data: Any) -> list[str]:
        root = self.docs[_SCHEMA_ID + name]
        out: list[str] = []
        self._check(root, root, data, "$", out)
        return out

    def _resolve(self, ref: str, root: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        doc_id, _, pointer = ref.partition("#")
        doc = self.docs[doc_id] if doc_id else root
        node: Any = doc
        for part in [p for p in pointer.split("/") if p]:
            node = node[part]
        return node, doc

    def _ok(self, schema: dict[str, Any], root: dict[str, Any], data: Any) -> bool:
        errs: list[str] = []
        self._check(schema, root, data, "", errs)
        return not errs

    def _check(self, s: Any, root: dict[str, Any], d: Any, at: str, out: list[str]) -> None:
        if "$ref" in s:
            target, doc = self._resolve(s["$ref"], root)
            self._check(target, doc, d, at, out)
        if "type" in s and not _is_type(d, s["type"]):
            out.append(f"{at}: not a {s['type']}")
            return
        if "enum" in s and d not in s["enum"]:
            out.append(f"{at}: {d!r} not one of {s['enum']}")
        if "pattern" in s and isinstance(d, str) and not re.search(s["pattern"], d):
            out.append(f"{at}: {d!r} does not match {s['pattern']}")
        if isinstance(d, (int, float)) and not isinstance(d, bool):
            if "minimum" in s and d < s["minimum"]:
                out.append(f"{at}: {d} < {s['minimum']}")
            if "maximum" in s and d > s["maximum"]:
                out.append(f"{at}: {d} > {s['maximum']}")
            if "exclusiveMinimum" in s and d <= s["exclusiveMinimum"]:
                out.append(f"{at}: {d} <= {s['exclusiveMinimum']}")
        if isinstance(d, dict):
            out.extend(f"{at}: missing {k!r}" for k in s.get("required", []) if k not in d)
            for k, sub in s.get("properties", {}).items():
                if k in d:
                    self._check(sub, root, d[k], f"{at}.{k}", out)
        if isinstance(d, list):
            if len(d) < s.get("minItems", 0) or len(d) > s.get("maxItems", len(d)):
                out.append(f"{at}: {len(d)} items")
            if s.get("uniqueItems") and not _unique(d):
                out.append(f"{at}: items not unique")
            if "items" in s:
                for i, item in enumerate(d):
                    self._check(s["items"], root, item, f"{at}[{i}]", out)
            if "contains" in s:
                n = sum(self._ok(s["contains"], root, item) for item in d)
                if n < s.get("minContains", 1) or n > s.get("maxContains", n):
                    out.append(f"{at}: {n} items match 'contains'")
        for sub in s.get("allOf", []):
            self._check(sub, root, d, at, out)
        if "anyOf" in s and not any(self._ok(sub, root, d) for sub in s["anyOf"]):
            out.append(f"{at}: matches none of anyOf")
        if "oneOf" in s and sum(self._ok(sub, root, d) for sub in s["oneOf"]) != 1:
            out.append(f"{at}: does not match exactly one of oneOf")
        if "not" in s and self._ok(s["not"], root, d):
            out.append(f"{at}: matches 'not'")


def plate_rule_errors(attrs: Any) -> list[str]:
    """The plate rule JSON Schema cannot express: a well's path is "<row name>/<column name>"
    of its rowIndex and columnIndex."""
    try:
        plate = attrs["ome"]["plate"]
        rows, cols = plate["rows"], plate["columns"]
        return [
            f"well {w['path']!r} is not row {w['rowIndex']} / column {w['columnIndex']}"
            for w in plate["wells"]
            if w["path"] != f"{rows[w['rowIndex']]['name']}/{cols[w['columnIndex']]['name']}"
        ]
    except (KeyError, IndexError, TypeError) as e:
        return [f"plate layout unreadable: {e!r}"]


@pytest.fixture(scope="module")
def schemas(shared_data: Path) -> NgffSchemas:
    return NgffSchemas(shared_data / "ngff_spec_conformance" / "0.5" / "schemas")


SUITES = ["image", "strict_image", "plate", "strict_plate", "well", "strict_well"]


@pytest.mark.parametrize("suite", SUITES)
def test_schema_checker_agrees_with_official_suites(
    shared_data: Path, schemas: NgffSchemas, suite: str
) -> None:
    doc = json.loads(
        (
            shared_data / "ngff_spec_conformance" / "0.5" / "tests" / f"{suite}_suite.json"
        ).read_text()
    )
    schema = doc["schema"]["id"].split("/")[-1]
    assert any(t["valid"] for t in doc["tests"])
    for case in doc["tests"]:
        errors = schemas.errors(schema, case["data"])
        if "plate" in suite and not errors:
            errors = plate_rule_errors(case["data"])
        assert (not errors) == case["valid"], (case.get("formerly"), errors)


# ------------------------------------------------------------------------------ helpers


def attrs_of(path: Path) -> dict[str, Any]:
    return json.loads((path / "zarr.json").read_text())["attributes"]


@contextmanager
def strict_warnings() -> Iterator[None]:
    """Every warning is an error: our plates carry ``plate.version`` (which ome-zarr-models
    asks for even in NGFF 0.5, see test_plate_version_warning_comes_from_the_validator)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def validate_image(path: Path, schemas: NgffSchemas) -> Any:
    from ome_zarr_models.v05.image import Image

    assert schemas.errors("strict_image.schema", attrs_of(path)) == []
    with strict_warnings():
        model = Image.from_zarr(zarr.open_group(str(path), mode="r"))
    ms = model.ome_attributes.multiscales
    assert len(ms) == 1
    axis_names = [a.name for a in ms[0].axes]
    assert axis_names == ["t", "c", "z", "y", "x"]
    for ds in ms[0].datasets:  # Zarr v3 dimension_names must match the NGFF axes
        meta = json.loads((path / ds.path / "zarr.json").read_text())
        assert meta["dimension_names"] == axis_names
    return model


def read_with_ome_zarr(path: Path) -> Any:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    location = parse_url(str(path))
    assert location is not None, f"ome-zarr-py does not see an OME-Zarr at {path}"
    nodes = list(Reader(location)())
    assert nodes, f"ome-zarr-py found no image at {path}"
    return nodes[0]


def write_source(s: SourceImage, dest: Path) -> WriteResult:
    spec = ImageSpec(
        shape=s.shape,
        dtype=s.dtype.name,
        name=s.scene_name,
        physical_size=s.physical_size,
        channels=tuple(ChannelDisplay(n) for n in s.channel_names),
    )
    return write_image(dest, s.read_rows, spec)


def read_all(s: SourceImage) -> np.ndarray:
    out = np.empty(s.shape, dtype=s.dtype)
    for t in range(s.shape[0]):
        for c in range(s.shape[1]):
            for z in range(s.shape[2]):
                out[t, c, z] = s.read_plane(t, c, z)
    return out


def check_readers(
    path: Path,
    source: np.ndarray,
    size: tuple[float | None, float | None, float | None],
    channels: list[str],
) -> None:
    """ome-zarr-py and bioio both give the source pixels, the sizes and the channel names."""
    import bioio
    import bioio_ome_zarr

    node = read_with_ome_zarr(path)
    assert len(node.data) == len(pyramid_shapes(source.shape))
    np.testing.assert_array_equal(np.asarray(node.data[0]), source)
    assert node.metadata["channel_names"] == channels
    scale0 = node.metadata["coordinateTransformations"][0][0]["scale"]
    x, y, z = size
    for got, want in zip(scale0[2:], (z, y, x), strict=True):
        assert got == pytest.approx(want if want is not None else 1.0, rel=1e-9)

    for image in (
        bioio_ome_zarr.Reader(str(path)),
        bioio.BioImage(str(path), reader=bioio_ome_zarr.Reader),
    ):
        data = np.asarray(image.get_image_data("TCZYX"))
        assert data.dtype == source.dtype
        np.testing.assert_array_equal(data, source)
        pps = image.physical_pixel_sizes
        for got, want in zip((pps.X, pps.Y, pps.Z), size, strict=True):
            if want is not None:
                assert got == pytest.approx(want, rel=1e-9)
        assert list(image.channel_names) == channels


# ------------------------------------------------------------------------------- images

SYNTHETIC = [
    ((1, 2, 3, 1031, 517), "uint16", (0.5, 0.5, 2.0), None),
    ((2, 1, 1, 1, 700), "float32", (None, None, None), None),
    ((3, 1, 4, 600, 650), "uint8", (0.1625, 0.1625, 1.0), 30.0),
    ((1, 3, 1, 64, 48), "int16", (2.0, 3.0, None), None),
]


@pytest.mark.parametrize(("shape", "dtype", "size", "dt"), SYNTHETIC, ids=[s[1] for s in SYNTHETIC])
def test_written_image_is_valid_and_readable(
    tmp_path: Path,
    schemas: NgffSchemas,
    shape: tuple[int, int, int, int, int],
    dtype: str,
    size: tuple[float | None, float | None, float | None],
    dt: float | None,
) -> None:
    rng = np.random.default_rng(7)
    a = (rng.random(shape) * 200).astype(dtype)
    names = [f"ch{i}" for i in range(shape[1])]
    spec = ImageSpec(
        shape=shape,
        dtype=dtype,
        name="synthetic",
        physical_size=size,
        time_increment_s=dt,
        channels=tuple(ChannelDisplay(n, "FF00FF") for n in names),
    )
    dest = tmp_path / "img.ome.zarr"
    write_image(dest, lambda t, c, z, y0, y1: a[t, c, z, y0:y1], spec, ome_xml="<OME/>")

    model = validate_image(dest, schemas)
    ms = model.ome_attributes.multiscales[0]
    assert ms.name == "synthetic"
    assert len(ms.datasets) == len(pyramid_shapes(shape))
    units = {ax.name: ax.unit for ax in ms.axes}
    assert units["t"] == ("second" if dt else None)
    assert units["x"] == ("micrometer" if any(v is not None for v in size) else None)
    scale_t = ms.datasets[0].coordinateTransformations[0].scale[0]
    assert scale_t == (dt or 1.0)
    # the OME-XML sidecar group is valid too (bioformats2raw "OME" group)
    assert schemas.errors("ome.schema", attrs_of(dest / "OME")) == []
    check_readers(dest, a, size, names)


VENDOR = [
    ("nd2/pims_cluster.nd2", 0),
    ("czi/aicsimageio_s_1_t_1_c_1_z_1.czi", 0),
    ("dv/mrc_toxo.dv", 0),
    # the xzy scene (frames are (z, x)); the xzt scene (y == 1) is left out only because its
    # 5120 one-row planes become 5120 chunk files, which takes ~15 s to write and read back
    ("lif/readlif_xz-example.lif", 1),
]


@pytest.mark.parametrize(("rel", "scene"), VENDOR, ids=[v[0].split("/")[0] for v in VENDOR])
def test_vendor_file_written_is_valid_and_readable(
    vendor_dir: Path, tmp_path: Path, schemas: NgffSchemas, rel: str, scene: int
) -> None:
    with open_sources(vendor_dir / rel) as sources:
        s = sources[scene]
        source = read_all(s)
        dest = tmp_path / "img.ome.zarr"
        write_source(s, dest)
        size, channels = s.physical_size, list(s.channel_names)
    validate_image(dest, schemas)
    check_readers(dest, source, size, channels)


# -------------------------------------------------------------------------------- plates

# (row, column, site, folder): A01 sites 1-2, B03 site 1, H12 sites 1 and 3 (folders 0, 1)
PLATE_FIELDS = [(0, 0, 1, "0"), (0, 0, 2, "1"), (1, 2, 1, "0"), (7, 11, 1, "0"), (7, 11, 3, "1")]
FIELD_SHAPE = (1, 2, 1, 40, 30)


def _field_path(root: Path, r: int, c: int, f: int) -> Path:
    name = well_name(r, c)
    return root / name[:-2] / name[-2:] / str(f)


@pytest.fixture
def plate(tmp_path: Path) -> tuple[Path, dict[tuple[int, int, int], np.ndarray]]:
    root = tmp_path / "P1.ome.zarr"
    arrays = {}
    rng = np.random.default_rng(11)
    for r, c, site, folder in PLATE_FIELDS:
        f = int(folder)
        a = rng.integers(1, 4000, size=FIELD_SHAPE, dtype=np.uint16)
        arrays[(r, c, f)] = a
        spec = ImageSpec(
            shape=FIELD_SHAPE,
            dtype="uint16",
            name=f"{well_name(r, c)} site {site}",
            physical_size=(0.65, 0.65, None),
            channels=(ChannelDisplay("DNA", "0000FF"), ChannelDisplay("Actin", "FF0000")),
        )
        write_image(
            _field_path(root, r, c, f), lambda t, ch, z, y0, y1, a=a: a[t, ch, z, y0:y1], spec
        )
    write_plate_groups(root, "P1", PLATE_FIELDS)
    return root, arrays


def test_plate_is_valid_hcs(
    plate: tuple[Path, dict[Any, np.ndarray]], schemas: NgffSchemas
) -> None:
    from ome_zarr_models.v05.hcs import HCS
    from ome_zarr_models.v05.well import Well

    root, arrays = plate
    assert schemas.errors("strict_plate.schema", attrs_of(root)) == []
    assert plate_rule_errors(attrs_of(root)) == []
    with strict_warnings():
        hcs = HCS.from_zarr(zarr.open_group(str(root), mode="r"))
    meta = hcs.ome_attributes.plate
    assert meta.name == "P1"
    assert [r.name for r in meta.rows] == list("ABCDEFGH")
    assert [c.name for c in meta.columns] == [f"{i:02d}" for i in range(1, 13)]
    assert sorted(w.path for w in meta.wells) == ["A/01", "B/03", "H/12"]
    assert meta.field_count == 2
    for w in meta.wells:  # rowIndex/columnIndex point at the right names
        row, col = w.path.split("/")
        assert meta.rows[w.rowIndex].name == row and meta.columns[w.columnIndex].name == col
    assert len(list(hcs.well_groups)) == 3

    assert meta.version == "0.5"
    expected = {"A/01": ["0", "1"], "B/03": ["0"], "H/12": ["0", "1"]}
    for path, fields in expected.items():
        assert schemas.errors("strict_well.schema", attrs_of(root / path)) == []
        with strict_warnings():
            well = Well.from_zarr(zarr.open_group(str(root / path), mode="r"))
        assert [im.path for im in well.ome_attributes.well.images] == fields
        for f in fields:
            validate_image(root / path / f, schemas)
    for (r, c, f), a in arrays.items():
        got = zarr.open_group(str(_field_path(root, r, c, f)), mode="r")["0"][...]
        np.testing.assert_array_equal(got, a)


def test_plate_reads_in_ome_zarr_viewer_layout(plate: tuple[Path, dict[Any, np.ndarray]]) -> None:
    """ome-zarr-py (napari's reader) tiles the first field of every well into one plate image:
    it takes the field paths of the first well for every well, so each well has folder 0."""
    root, arrays = plate
    node = read_with_ome_zarr(root)
    assert "plate" in node.metadata["metadata"]
    grid = np.asarray(node.data[0])
    h, w = FIELD_SHAPE[-2:]
    assert grid.shape == (*FIELD_SHAPE[:3], 8 * h, 12 * w)
    for (r, c, f), a in arrays.items():
        if f == 0:
            np.testing.assert_array_equal(grid[..., r * h : (r + 1) * h, c * w : (c + 1) * w], a)
    assert not grid[..., 0:h, w : 2 * w].any()  # A02 holds no image


def test_plate_field_reads_with_bioio(plate: tuple[Path, dict[Any, np.ndarray]]) -> None:
    import bioio
    import bioio_ome_zarr

    root, arrays = plate
    image = bioio.BioImage(str(_field_path(root, 7, 11, 1)), reader=bioio_ome_zarr.Reader)
    np.testing.assert_array_equal(image.get_image_data("TCZYX"), arrays[(7, 11, 1)])
    assert pytest.approx(0.65) == image.physical_pixel_sizes.X
    assert list(image.channel_names) == ["DNA", "Actin"]


def test_plate_groups_rewrite_is_idempotent_and_dedupes(
    plate: tuple[Path, dict[Any, np.ndarray]], schemas: NgffSchemas
) -> None:
    root, _ = plate
    before = {p: p.read_bytes() for p in root.rglob("zarr.json")}
    write_plate_groups(root, "P1", [*PLATE_FIELDS, (0, 0, 2, "1"), (1, 2, 1, "0")])  # repeated
    after = {p: p.read_bytes() for p in root.rglob("zarr.json")}
    assert after == before
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    assert attrs_of(root / "A" / "01")["ome"]["well"]["images"] == [{"path": "0"}, {"path": "1"}]
    assert attrs_of(root / "H" / "12")["quantscope"]["sites"] == {"0": 1, "1": 3}
    assert schemas.errors("strict_plate.schema", attrs_of(root)) == []


def test_plate_rows_beyond_z(tmp_path: Path, schemas: NgffSchemas) -> None:
    root = tmp_path / "big.ome.zarr"
    write_plate_groups(root, "1536", [(31, 47, 1, "0"), (26, 0, 1, "0")])  # AF48 and AA01
    plate_meta = attrs_of(root)["ome"]["plate"]
    assert len(plate_meta["rows"]) == 32 and plate_meta["rows"][-1]["name"] == "AF"
    assert plate_meta["rows"][26]["name"] == "AA"
    assert len(plate_meta["columns"]) == 48
    assert {w["path"] for w in plate_meta["wells"]} == {"AF/48", "AA/01"}
    assert schemas.errors("strict_plate.schema", attrs_of(root)) == []
    assert plate_rule_errors(attrs_of(root)) == []


def test_empty_plate_writes_nothing(tmp_path: Path) -> None:
    write_plate_groups(tmp_path / "none.ome.zarr", "empty", [])
    assert not (tmp_path / "none.ome.zarr").exists()


def test_plate_version_warning_comes_from_the_validator(shared_data: Path) -> None:
    """ome-zarr-models warns about a missing ``plate.version`` even on the NGFF 0.5 spec's own
    example; the warning is therefore ignored in `strict_warnings`, not a writer defect."""
    from ome_zarr_models.exceptions import ValidationWarning
    from ome_zarr_models.v05.hcs import HCSAttrs

    example = shared_data / "ngff_spec_conformance" / "0.5" / "examples" / "plate_strict"
    attrs = json.loads((example / "plate_6wells.json").read_text())["attributes"]
    assert "version" not in attrs["ome"]["plate"]
    with pytest.warns(ValidationWarning, match="'version' field not specified"):
        HCSAttrs.model_validate(attrs["ome"])
