"""The repository handle and its namespaced parts (issue 13 point 4).

``Repository`` keeps creating, opening, migrating, locking, its identity and its summary; what
it reads and writes lives in parts (``repo.images``, ``repo.quality``, ``repo.annotations``,
``repo.query``, ``repo.runs``, ``repo.bench``). A method of the old one-object handle answers
with where it moved.
"""

from __future__ import annotations

import pytest

from quantscope.catalog import (
    IlluminationProfileRecord,
    ImageRegistration,
    PlateField,
    PlateInfo,
    Repository,
)
from quantscope.catalog._access_records import AccessRecords
from quantscope.catalog._annotations import AnnotationRecords
from quantscope.catalog._bench import BenchmarkRecords
from quantscope.catalog._find import QueryMethods
from quantscope.catalog._images import ImageRecords
from quantscope.catalog._moved import CALLED_PARTS, MOVED, moved_hint
from quantscope.catalog._part import Part
from quantscope.catalog._quality import QualityRecords
from quantscope.catalog._runs import RunRecords
from quantscope.model import Image, PlatePosition

PARTS = {
    "images": ImageRecords,
    "quality": QualityRecords,
    "annotations": AnnotationRecords,
    "query": QueryMethods,
    "runs": RunRecords,
    "bench": BenchmarkRecords,
    "access": AccessRecords,
}
# what the handle itself still does: create/open/migrate/lock/identity/settings and summary
HANDLE = {"init", "open", "migrate", "analyze", "close", "write_lock", "summary"}


def _public_methods(cls: type) -> set[str]:
    return {
        n
        for n, v in vars(cls).items()
        if not n.startswith("_") and (callable(v) or isinstance(v, classmethod | staticmethod))
    }


def test_the_handle_keeps_only_its_own_methods() -> None:
    assert _public_methods(Repository) == HANDLE
    assert Repository.__mro__ == (Repository, object)  # no mixins any more


def test_each_part_is_an_attribute_of_the_handle(repo: Repository) -> None:
    for name, cls in PARTS.items():
        part = getattr(repo, name)
        assert type(part) is cls and isinstance(part, Part)
        assert part.engine is repo.engine and part.root == repo.root
        assert repr(part) == f"<{cls.__name__} of {repo.root}>"


def test_every_moved_method_exists_where_the_table_says() -> None:
    for old, (part, new) in MOVED.items():
        cls = PARTS[part]
        assert callable(getattr(cls, new, None)), f"{old} -> repo.{part}.{new} is missing"
        assert not hasattr(Repository, old), f"Repository.{old} is still there"
    for cls_name, (attr, instead) in CALLED_PARTS.items():
        assert PARTS[attr].__name__ == cls_name
        assert callable(PARTS[attr].all)  # type: ignore[attr-defined]
        assert instead.startswith(f"repo.{attr}.all(")


def test_an_old_method_name_says_where_it_moved(repo: Repository) -> None:
    with pytest.raises(AttributeError, match=r"quality_metrics.*repo\.quality\.metrics\(\)"):
        repo.quality_metrics()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=r"repo\.runs\.artifacts\(\)"):
        _ = repo.run_artifacts  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=r"no attribute 'nonsense'$"):
        _ = repo.nonsense  # type: ignore[attr-defined]
    assert moved_hint("nonsense") is None


@pytest.mark.parametrize(
    ("part", "instead"),
    [("images", r"repo\.images\.all\(ids\)"), ("runs", r"repo\.runs\.all\(\)")],
)
def test_calling_a_part_like_the_old_method_says_what_to_call(
    repo: Repository, part: str, instead: str
) -> None:
    with pytest.raises(TypeError, match=f"repo.{part} is a part of the repository.*{instead}"):
        getattr(repo, part)()


def test_the_parts_work_on_a_fresh_repository(repo: Repository) -> None:
    assert repo.images.all() == []
    assert repo.query.find_ids("") == []
    assert repo.quality.status() == {}
    assert repo.annotations.datasets() == []
    assert repo.runs.all() == []
    assert repo.bench.sets() == []
    assert repo.summary()["images"] == 0


def _plate_image(i: int, row: int, site: int) -> Image:
    return Image(
        id=f"{i:016x}",
        name=f"img{i}",
        shape=(1, 1, 1, 8, 8),
        dtype="uint8",
        position=PlatePosition(plate="P", row=row, column=0, field=site),
        store_path=f"plates/P.ome.zarr/{'AB'[row]}/1/{site - 1}",
        levels=1,
        bytes_stored=1,
    )


def test_plates_are_typed_records(repo: Repository) -> None:
    regs = [(1, 1, 2), (2, 0, 1), (3, 1, 1)]
    repo.images.register_many([ImageRegistration(_plate_image(*r), {}, []) for r in regs])
    (plate,) = repo.images.plates()
    assert isinstance(plate, PlateInfo)
    assert plate.name == "P" and plate.store_path == "plates/P.ome.zarr"
    assert plate.fields == (
        PlateField(row=0, column=0, field=1, image_id=f"{2:016x}", folder="0"),
        PlateField(row=1, column=0, field=1, image_id=f"{3:016x}", folder="0"),
        PlateField(row=1, column=0, field=2, image_id=f"{1:016x}", folder="1"),
    )
    row, column, field, image_id, folder = plate.fields[0]  # still unpacks as a row
    assert (row, column, field, image_id, folder) == (0, 0, 1, f"{2:016x}", "0")
    with pytest.raises(AttributeError):
        plate.name = "Q"  # type: ignore[misc]


def test_illumination_profiles_are_typed_records(repo: Repository) -> None:
    repo.images.register_many([ImageRegistration(_plate_image(1, 0, 1), {}, [])])
    repo.quality.set_illumination_profile("P", 1, "GFP", "profiles/P/1.ome.zarr", 4, "b" * 64)
    repo.quality.set_illumination_profile("P", 0, "DAPI", "profiles/P/0.ome.zarr", 4, "a" * 64)
    first, second = repo.quality.illumination_profiles()  # by plate, then channel
    assert isinstance(first, IlluminationProfileRecord)
    assert (first.plate, first.channel, first.channel_name) == ("P", 0, "DAPI")
    assert (second.channel, second.store_path, second.n_images) == (1, "profiles/P/1.ome.zarr", 4)
    assert first.to_dict() == {
        "plate": "P",
        "channel": 0,
        "channel_name": "DAPI",
        "store_path": "profiles/P/0.ome.zarr",
        "n_images": 4,
        "sha256": "a" * 64,
    }
    with pytest.raises(AttributeError):
        first.sha256 = "c" * 64  # type: ignore[misc]
