"""``repo.query.page``: one page of a query's ids, the total, and the ``only`` condition that
neither the page nor the total may count past (what a caller may see)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from _query_data import IMAGES, build, image_id
from quantscope.catalog import Repository
from quantscope.catalog import _schema as S
from quantscope.errors import InvalidInput

NAMES = {image_id(n): n for n in IMAGES}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    r = build(tmp_path_factory.mktemp("page") / "repo")
    yield r
    r.close()


def names(ids: list[str]) -> str:
    return "".join(NAMES[i] for i in ids)


def test_pages_follow_find_ids_order_and_count_everything(repo: Repository) -> None:
    every = repo.query.find_ids("")
    assert len(every) == len(IMAGES)
    got: list[str] = []
    for offset in range(0, len(every), 2):
        ids, total = repo.query.page("", limit=2, offset=offset)
        assert total == len(every) and len(ids) <= 2
        got += ids
    assert got == every
    ids, total = repo.query.page("", limit=10, offset=len(every) + 3)
    assert ids == [] and total == len(every)
    assert repo.query.page("", limit=0) == ([], len(every))


def test_page_of_a_query(repo: Repository) -> None:
    want = repo.query.find_ids("objective.na >= 1.3")
    ids, total = repo.query.page("objective.na >= 1.3", limit=1)
    assert total == len(want) == 2 and ids == want[:1]


def test_only_narrows_the_page_and_the_total(repo: Repository) -> None:
    keep = [image_id("b"), image_id("d")]
    ids, total = repo.query.page("", limit=10, only=S.images.c.id.in_(keep))
    assert total == 2 and sorted(ids) == sorted(keep)
    ids, total = repo.query.page("objective.na >= 1.3", limit=10, only=S.images.c.id.in_(keep))
    assert (names(ids), total) == ("b", 1)
    assert repo.query.page("", limit=10, only=sa.false()) == ([], 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": -1}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 5, "offset": -1}, "offset"),
        ({"limit": 5, "offset": "3"}, "offset"),
    ],
)
def test_bad_limit_or_offset(repo: Repository, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        repo.query.page("", **kwargs)  # type: ignore[arg-type]


def test_a_query_error_shows_where(repo: Repository) -> None:
    with pytest.raises(InvalidInput, match=r"\^"):
        repo.query.page('well == "A01" and', limit=5)


def test_empty_catalog(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r") as r:
        assert r.query.page("", limit=5) == ([], 0)
