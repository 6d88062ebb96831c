"""Datasets on SQLite and PostgreSQL: membership (image annotation ``dataset = NAME``), the
annotations of a dataset applying to its images in queries and ``find`` columns, listing,
removal, unknown ids (nothing changed), and the order of ``Repository.images.all()``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from _postgres import fresh_database
from _query_data import IMAGES, build, image_id
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput, NotFound

NAMES = {image_id(n): n for n in IMAGES}


def _build(
    backend: str, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory
) -> Iterator[Repository]:
    """The query test catalog on ``backend`` (a fresh PostgreSQL database, dropped after)."""
    with ExitStack() as stack:
        url = None
        if backend == "postgresql":
            server = request.getfixturevalue("pg_server")
            url = stack.enter_context(fresh_database(server, "qs_d"))
        r = build(tmp.mktemp("d") / "repo", url)
        yield r
        r.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def repo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Repository]:
    """The query catalog with datasets: screen-7 = {a, c, e} (two plates and a loose image),
    pilot = {b}, empty = {} (annotated only)."""
    for r in _build(request.param, request, tmp_path_factory):
        assert (
            r.annotations.add_to_dataset("screen-7", [image_id("a")], where='name == "img_e.tif"')
            == 2
        )
        assert r.annotations.add_to_dataset("screen-7", [image_id("c")[:8]]) == 1  # a prefix
        assert r.annotations.add_to_dataset("screen-7", [image_id("a")]) == 0  # already in
        assert r.annotations.add_to_dataset("pilot", where='well == "B02"') == 1
        r.annotations.tag(["dataset:screen-7"], ["curated"])
        r.annotations.set(["dataset:screen-7"], "study.title", "Dataset study")
        r.annotations.set(["dataset:pilot"], "biosample.organism", "Danio rerio")
        r.annotations.tag(["dataset:empty"], ["orphan"])
        yield r


def found(repo: Repository, query: str) -> str:
    return "".join(sorted(NAMES[i] for i in repo.query.find_ids(query)))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('dataset == "screen-7"', "ace"),
        ('dataset == "pilot"', "b"),
        ('dataset in ("screen-7", "pilot")', "abce"),
        ('dataset like "screen%"', "ace"),
        ('dataset == "nope"', ""),
        ("exists dataset", "abce"),
        ("dataset == null", "d"),
        ('not dataset == "screen-7"', "bd"),
        # dataset annotations apply to the members, next to image and plate annotations
        ('tag == "curated"', "ace"),
        ('tag == "control"', "ac"),
        ('tag == "orphan"', ""),  # a dataset without images
        ('study.title == "Dataset study"', "ace"),
        ('study.title == "Screen A"', "ab"),
        ("exists study.title", "abce"),
        ("study.title == null", "d"),
        ('biosample.organism == "Danio rerio"', "b"),
        ('biosample.organism like "%o%"', "bcd"),
        ('tag == "curated" and plate == "P1"', "a"),
        ('dataset == "screen-7" and channel.name == "GFP"', "ac"),
    ],
)
def test_dataset_queries(repo: Repository, query: str, expected: str) -> None:
    assert found(repo, query) == expected


@pytest.mark.parametrize(
    "query",
    [
        'dataset == "screen-7"',
        "not exists dataset",
        'tag == "curated"',
        'study.title == "Dataset study"',
        "exists study.title",
        'biosample.organism in ("Danio rerio", "Homo sapiens")',
        'tag == "curated" or tag == "treated"',
    ],
)
def test_both_plans_give_the_same_images(repo: Repository, query: str) -> None:
    """Anchored on an indexed equality (correlated EXISTS) or not (IN lists): same images."""
    alone = set(found(repo, query))
    for anchor, members in (
        ('well in ("A01", "B02", "A02")', set("abcd")),
        ('plate in ("P1", "P2")', set("abcd")),
        ('plate == "P1"', set("ab")),
        (f'id == "{image_id("e")}"', set("e")),
    ):
        assert set(found(repo, f"{anchor} and ({query})")) == alone & members, anchor


def test_datasets_listing_and_find_columns(repo: Repository) -> None:
    ds = {d.name: d for d in repo.annotations.datasets()}
    assert sorted(ds) == ["empty", "pilot", "screen-7"]
    assert (ds["screen-7"].images, ds["pilot"].images, ds["empty"].images) == (3, 1, 0)
    assert {(a.key, a.value) for a in ds["screen-7"].annotations} == {
        ("tag", "curated"),
        ("study.title", "Dataset study"),
    }
    df = repo.query.find('dataset == "screen-7"', columns=["name", "dataset", "tag", "study.title"])
    rows = {r["name"]: r for r in df.to_dict("records")}
    assert rows["img_a.tif"]["tag"] == "batch1, control, curated"
    assert rows["img_a.tif"]["study.title"] == "Dataset study, Screen A"
    assert rows["img_e.tif"]["dataset"] == "screen-7"
    assert rows["img_e.tif"]["study.title"] == "Dataset study"
    fields = {f["name"]: f for f in repo.query.fields()}
    assert fields["dataset"]["kind"] == "annotation"
    assert fields["dataset"]["examples"] == ["pilot", "screen-7"]
    assert [f["name"] for f in repo.query.fields()].count("dataset") == 1


def test_effective_annotations(repo: Repository) -> None:
    imgs = repo.images.all([image_id("a"), image_id("d"), image_id("e")])
    eff = repo.annotations.effective(imgs)
    keys = {i: {(x.target_kind, x.key, x.value) for x in v} for i, v in eff.items()}
    assert ("dataset", "study.title", "Dataset study") in keys[image_id("a")]
    assert ("plate", "study.title", "Screen A") in keys[image_id("a")]
    assert ("image", "dataset", "screen-7") in keys[image_id("e")]
    assert ("dataset", "tag", "curated") in keys[image_id("e")]
    assert keys[image_id("d")] == {("plate", "biosample.organism", "Homo sapiens")}


def test_unknown_ids_change_nothing(repo: Repository) -> None:
    before = {d.name: d.images for d in repo.annotations.datasets()}
    with pytest.raises(NotFound, match=r"no image 'f{8}'.*nothing was changed"):
        repo.annotations.add_to_dataset("new", [image_id("b"), "ffffffff"])
    with pytest.raises(NotFound, match="no image"):
        repo.annotations.remove_from_dataset("screen-7", [image_id("a"), "ffffffff"])
    assert {d.name: d.images for d in repo.annotations.datasets()} == before
    with pytest.raises(NotFound, match="no dataset named 'screen7'; did you mean 'screen-7'"):
        repo.annotations.remove_from_dataset("screen7", [image_id("a")])
    with pytest.raises(InvalidInput, match="no image given"):
        repo.annotations.add_to_dataset("x")
    with pytest.raises(InvalidInput, match="needs a name"):
        repo.annotations.add_to_dataset("  ", [image_id("a")])
    with pytest.raises(InvalidInput, match="invalid query"):
        repo.annotations.add_to_dataset("x", where="plate ==")
    with pytest.raises(InvalidInput, match="goes on images only"):
        repo.annotations.set(["dataset:pilot"], "dataset", "other")
    assert {d.name: d.images for d in repo.annotations.datasets()} == before


def test_remove_and_delete(repo: Repository) -> None:
    assert repo.annotations.add_to_dataset("tmp", where="exists plate") == 4
    assert repo.annotations.remove_from_dataset("tmp", [image_id("a")], where='plate == "P2"') == 3
    assert found(repo, 'dataset == "tmp"') == "b"
    repo.annotations.tag(["dataset:tmp"], ["gone"])
    assert found(repo, 'tag == "gone"') == "b"
    assert repo.annotations.remove_from_dataset("tmp", everything=True) == 1
    assert "tmp" not in {d.name for d in repo.annotations.datasets()}
    assert found(repo, 'tag == "gone"') == ""
    with pytest.raises(InvalidInput, match="no image given"):
        repo.annotations.remove_from_dataset("screen-7")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_images_without_plate_come_last(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Same order on both backends, and the same as ``find``: plates first, then the rest."""
    for r in _build(backend, request, tmp_path_factory):
        order = [NAMES[i.id] for i in r.images.all()]
        assert order == ["a", "b", "c", "d", "e"]
        assert [NAMES[i] for i in r.query.find_ids("")] == order
        assert [NAMES[i.id] for i in r.images.all([image_id("e"), image_id("c")])] == ["c", "e"]


def test_membership_through_tag_and_sidecar(repo: Repository, tmp_path: Path) -> None:
    """``dataset=NAME`` set like any key, or given in a sidecar, is membership too."""
    repo.annotations.set([image_id("d")], "dataset", "via-tag")
    assert found(repo, 'dataset == "via-tag"') == "d"
    sidecar = tmp_path / "quantscope.yaml"
    sidecar.write_text("images:\n  - well: A01\n    dataset: [via-sidecar, via-tag]\n")
    rep = repo.annotations.apply_sidecar(sidecar, all_images=True)
    assert rep.images == 2  # A01 on P1 and on P2 (c); e has no well
    assert found(repo, 'dataset == "via-sidecar"') == "ac"
    assert found(repo, 'dataset == "via-tag"') == "acd"
    sidecar.write_text(f"dataset: {'x' * 300}\n")
    with pytest.raises(InvalidInput, match=r"quantscope.yaml: dataset: .* 300 characters long"):
        repo.annotations.apply_sidecar(sidecar, all_images=True)
    assert found(repo, 'dataset == "via-sidecar"') == "ac"  # nothing changed
    for name in ("via-tag", "via-sidecar"):
        repo.annotations.remove_from_dataset(name, everything=True)
    assert {d.name for d in repo.annotations.datasets()} == {"empty", "pilot", "screen-7"}
