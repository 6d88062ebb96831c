"""``set_metadata`` (``quantscope set``): pixel sizes, channel names and wavelengths corrected
after ingest, in the catalog and in the stored OME-Zarr together (issue 12, item 1)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zarr
from ome_types import from_xml

from quantscope.catalog import Repository, _edit
from quantscope.catalog._edit import EDIT_KEY, parse_edits, select_images, set_metadata
from quantscope.errors import InvalidInput, NotFound, QuantscopeError
from quantscope.ingestion import ingest, verify

FLY = "cellprofiler_examples/ExampleFly/images/01_POS002_D.TIF"  # 150 dpi: no pixel size
OME_TIFF = "vendor_formats/ome_tiff/aicsimageio_s_1_t_1_c_1_z_1.ome.tiff"  # 1.0833 µm
DV = "vendor_formats/dv/mrc_toxo.dv"  # 2 channels, 17 z planes


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    root = tmp_path_factory.mktemp("edit") / "repo"
    with Repository.init(root) as repo:
        report = ingest(
            repo, [shared_data / FLY, shared_data / OME_TIFF, shared_data / DV], qc=False
        )
        assert report.ok and len(report.added) == 3
    return root


@pytest.fixture
def repo(ingested: Path, tmp_path: Path) -> Iterator[Repository]:
    dest = tmp_path / "repo"
    shutil.copytree(ingested, dest)
    with Repository.open(dest) as r:
        yield r


def _by_source(repo: Repository) -> dict[str, Any]:
    return {Path(i.sources[0].path).name: i for i in repo.images.all()}


def _group(repo: Repository, img: Any) -> dict[str, Any]:
    return json.loads((repo.root / img.store_path / "zarr.json").read_text())["attributes"]["ome"]


def _scales(repo: Repository, img: Any) -> list[list[float]]:
    ms = _group(repo, img)["multiscales"][0]
    return [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]


def _ome(repo: Repository, img: Any) -> Any:
    text = (repo.root / img.store_path / "OME" / "METADATA.ome.xml").read_text()
    return from_xml(text, validate=True)  # still valid against the OME schema


def _snapshot(repo: Repository) -> tuple[Any, ...]:
    """Everything `set` may change: catalog rows, manifest, annotations and file bytes."""
    files = {
        rel: hashlib.sha256((repo.root / rel).read_bytes()).hexdigest()
        for _, rel, _, _ in repo.images.stored_files()
        if rel.endswith(("zarr.json", ".xml")) and "/0/" not in rel and "/1/" not in rel
    }
    images = [i.model_dump() for i in repo.images.all()]
    anns = [
        a.model_dump() for i in repo.images.all() for a in repo.annotations.all("image", [i.id])
    ]
    return images, repo.images.stored_files(), anns, files


def test_pixel_size_set_on_an_uncalibrated_tiff(repo: Repository) -> None:
    fly = _by_source(repo)["01_POS002_D.TIF"]
    assert fly.physical_size_x_um is None
    report = set_metadata(repo, fly.id[:6], ["pixel_size_um=0.65"], by="tester")
    assert report.images == [fly.id]
    assert {(c.field, c.old, c.new) for c in report.changes} == {
        ("physical_size_x_um", None, 0.65),
        ("physical_size_y_um", None, 0.65),
    }
    img = repo.images.get(fly.id)
    assert (img.physical_size_x_um, img.physical_size_y_um) == (0.65, 0.65)
    # OME-Zarr: every level's scale (level n is 2**n pixels), and the axis units
    scales = _scales(repo, img)
    assert len(scales) == img.levels >= 2
    for level, scale in enumerate(scales):
        assert scale[3:] == pytest.approx([0.65 * 2**level] * 2)
        assert scale[2] == 1.0
    axes = _group(repo, img)["multiscales"][0]["axes"]
    assert [a.get("unit") for a in axes[2:]] == [None, "micrometer", "micrometer"]
    px = _ome(repo, img).images[0].pixels
    assert px.physical_size_x == pytest.approx(0.65) and px.physical_size_y == pytest.approx(0.65)
    # the manifest follows the rewritten files: verify passes
    assert verify(repo) == []
    # ome-zarr-models reads the group and its scale
    from ome_zarr_models.v05.image import Image as NgffImage

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = NgffImage.from_zarr(zarr.open_group(str(repo.root / img.store_path), mode="r"))
    ds0 = model.ome_attributes.multiscales[0].datasets[0]
    assert list(ds0.coordinateTransformations[0].scale)[3:] == pytest.approx([0.65, 0.65])


def test_audit_record_says_old_new_who_when(repo: Repository) -> None:
    fly = _by_source(repo)["01_POS002_D.TIF"]
    set_metadata(repo, fly.id, ["pixel_size_x_um=0.5"], by="alice")
    set_metadata(repo, fly.id, ["pixel_size_x_um=0.6"], by="bob")
    anns = repo.annotations.all("image", [fly.id], EDIT_KEY)
    records = sorted((json.loads(a.value or "") for a in anns), key=lambda r: r["at"])
    assert [(r["old"], r["new"], r["by"]) for r in records] == [
        (None, 0.5, "alice"),
        (0.5, 0.6, "bob"),
    ]
    assert all(r["field"] == "physical_size_x_um" and r["at"] for r in records)
    # setting the same value again is not a change and records nothing
    assert set_metadata(repo, fly.id, ["pixel_size_x_um=0.6"]).changes == []
    assert len(repo.annotations.all("image", [fly.id], EDIT_KEY)) == 2


def test_channels_by_index_and_name_on_dv(repo: Repository) -> None:
    dv = _by_source(repo)["mrc_toxo.dv"]
    before = [c.name for c in dv.channels]
    report = set_metadata(
        repo,
        dv.id,
        [
            "channel[0].name=GFP",
            f'channel["{before[1]}"].name=mCherry',  # DV channels are named "525", "632"
            f"channel[{before[1]}].emission_nm=610",  # digits out of index range: the name
            "channel[0].excitation_nm=0.488um",
        ],
    )
    assert len(report.changes) >= 3
    img = repo.images.get(dv.id)
    assert [c.name for c in img.channels] == ["GFP", "mCherry"]
    assert img.channels[1].emission_wavelength_nm == 610
    assert img.channels[0].excitation_wavelength_nm == pytest.approx(488)
    labels = [c["label"] for c in _group(repo, img)["omero"]["channels"]]
    assert labels == ["GFP", "mCherry"]
    chans = _ome(repo, img).images[0].pixels.channels
    assert [c.name for c in chans] == ["GFP", "mCherry"]
    assert chans[1].emission_wavelength == 610 and chans[0].excitation_wavelength == 488
    assert verify(repo) == []
    # the query language sees the new names
    assert repo.query.find_ids('channel.name == "mCherry"') == [dv.id]


def test_pixel_size_cleared_and_query_selection(repo: Repository) -> None:
    ome = _by_source(repo)["aicsimageio_s_1_t_1_c_1_z_1.ome.tiff"]
    assert ome.physical_size_x_um == pytest.approx(1.0833, rel=1e-3)
    report = set_metadata(repo, 'name like "%s_1_t_1%"', ["pixel_size_um=none"])
    assert report.images == [ome.id]
    img = repo.images.get(ome.id)
    assert img.physical_size_x_um is None and img.physical_size_y_um is None
    assert _scales(repo, img)[0][3:] == [1.0, 1.0]
    axes = _group(repo, img)["multiscales"][0]["axes"]
    assert all("unit" not in a for a in axes[2:])
    px = _ome(repo, img).images[0].pixels
    assert px.physical_size_x is None
    assert verify(repo) == []


@pytest.mark.parametrize(
    ("selection", "assignments", "error", "match"),
    [
        ("FLY", ["colour=red"], InvalidInput, "not a key"),
        ("FLY", ["pixel_size_um=0"], InvalidInput, "positive"),
        ("FLY", ["pixel_size_um=-1"], InvalidInput, "positive"),
        ("FLY", ["pixel_size_um=nan"], InvalidInput, "not a length"),
        ("FLY", ["pixel_size_um=1e999"], InvalidInput, "positive"),
        ("FLY", ["pixel_size_um=3 inch"], InvalidInput, "unit"),
        ("FLY", ["pixel_size_um=0.65", "channel[3].name=X"], InvalidInput, "no channel 3"),
        ("DV", ["channel[DAPI].emission_nm=461"], InvalidInput, "no channel named 'DAPI'"),
        ("DV", ["channel[0].name=A", "channel[1].name=A"], InvalidInput, "unique"),
        ("DV", ["channel[0].name= "], InvalidInput, "empty"),
        ("DV", ["channel[0].colour=red"], InvalidInput, "unknown channel field"),
        ("DV", ["pixel_size_um=1", "pixel_size_x_um=2"], InvalidInput, "both set"),
        ("DV", [], InvalidInput, "nothing to set"),
        ("", ["pixel_size_um=1"], InvalidInput, "empty selection"),
        ('name == "nothing"', ["pixel_size_um=1"], NotFound, "matches no image"),
        ("plate:nope", ["pixel_size_um=1"], NotFound, "matches no image"),
        ("ffffff", ["pixel_size_um=1"], NotFound, "no image"),
    ],
)
def test_bad_input_changes_nothing(
    repo: Repository, selection: str, assignments: list[str], error: type, match: str
) -> None:
    ids = {k: v.id for k, v in _by_source(repo).items()}
    selection = {"FLY": ids["01_POS002_D.TIF"], "DV": ids["mrc_toxo.dv"]}.get(selection, selection)
    before = _snapshot(repo)
    with pytest.raises(error, match=match) as info:
        set_metadata(repo, selection, assignments)
    assert isinstance(info.value, QuantscopeError)
    assert _snapshot(repo) == before


def test_all_or_nothing_across_images(repo: Repository) -> None:
    """One image of the selection lacks the channel: no image is changed."""
    before = _snapshot(repo)
    with pytest.raises(InvalidInput, match="no channel 1"):
        set_metadata(
            repo, [i.id for i in repo.images.all()], ["pixel_size_z_um=2", "channel[1].name=B"]
        )
    assert _snapshot(repo) == before


def test_a_failed_file_write_rolls_everything_back(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    dv = _by_source(repo)["mrc_toxo.dv"]
    before = _snapshot(repo)
    real = _edit.atomic_write
    calls: list[Path] = []

    def flaky(path: Path, data: bytes, **kw: Any) -> None:
        calls.append(path)
        if len(calls) == 2:  # the second file of the edit fails (disk full, say)
            raise OSError(28, "No space left on device")
        real(path, data, **kw)

    monkeypatch.setattr(_edit, "atomic_write", flaky)
    with pytest.raises(OSError):
        set_metadata(repo, dv.id, ["pixel_size_um=0.2", "channel[0].name=GFP"])
    monkeypatch.undo()
    assert _snapshot(repo) == before
    assert verify(repo) == []


def test_parse_edits_units_and_syntax() -> None:
    edits = parse_edits(
        [
            "pixel_size_um=650nm",
            "pixel_size_z_um=0.002 mm",
            "channel[ DAPI ].emission_wavelength_nm=461",
        ]
    )
    values = {(e.field, e.channel): e.value for e in edits}
    assert values[("physical_size_x_um", None)] == pytest.approx(0.65)
    assert values[("physical_size_y_um", None)] == pytest.approx(0.65)
    assert values[("physical_size_z_um", None)] == pytest.approx(2.0)
    assert values[("emission_wavelength_nm", "DAPI")] == 461
    assert parse_edits(["channel[12].name=x"])[0].channel == 12
    assert parse_edits(["channel['12'].name=x"])[0].channel == "12"
    with pytest.raises(InvalidInput, match="KEY=VALUE"):
        parse_edits(["pixel_size_um"])
    assert not math.isnan(parse_edits(["pixel_size_um=1"])[0].value or 0)


def test_select_images_forms(repo: Repository) -> None:
    ids = {k: v.id for k, v in _by_source(repo).items()}
    fly = ids["01_POS002_D.TIF"]
    assert select_images(repo, fly) == [fly]
    assert select_images(repo, f"image:{fly[:8]}") == [fly]
    repo.annotations.add_to_dataset("pilot", [fly, ids["mrc_toxo.dv"]])
    assert sorted(select_images(repo, "dataset:pilot")) == sorted([fly, ids["mrc_toxo.dv"]])
    assert select_images(repo, "size.z > 1") == [ids["mrc_toxo.dv"]]


def test_a_second_writer_is_refused_and_changes_nothing(repo: Repository) -> None:
    """`set` while another process writes (an ingest, a run) holds the repository's lock."""
    import subprocess
    import sys

    from quantscope.errors import ConcurrentAccess

    before = _snapshot(repo)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from quantscope.catalog import Repository; "
            "r = Repository.open(sys.argv[1]); "
            "cm = r.write_lock(); cm.__enter__(); print('held', flush=True); time.sleep(60)",
            str(repo.root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ConcurrentAccess, match="another quantscope process"):
            set_metadata(repo, "name like '%'", ["pixel_size_um=0.5"])
    finally:
        holder.kill()
        holder.wait()
    assert _snapshot(repo) == before
