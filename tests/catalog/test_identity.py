"""A catalog belongs to one repository; unsupported store URLs are refused; the 0006 migration
renumbers sites from 0-based to 1-based (issue 12, items 2, 6 and 8)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa

from quantscope.catalog import CONFIG_NAME, ImageRegistration, Repository
from quantscope.catalog import _schema as S
from quantscope.errors import CatalogError, RepositoryError
from quantscope.model import Image, PlatePosition


def _settings(root: Path) -> dict:
    return tomllib.loads((root / CONFIG_NAME).read_text(encoding="utf-8"))


def _plate_image(i: int, site: int) -> Image:
    return Image(
        id=f"{i:016x}",
        name=f"P_A01_s{site}",
        shape=(1, 1, 1, 8, 8),
        dtype="uint8",
        position=PlatePosition(plate="P", row=0, column=0, field=site),
        store_path=f"plates/P.ome.zarr/A/01/{site - 1}",
        levels=1,
        bytes_stored=1,
    )


def test_init_on_a_catalog_of_another_repository_is_refused(
    tmp_path: Path, catalog_url: str | None
) -> None:
    url = catalog_url or f"sqlite:///{tmp_path / 'shared.sqlite'}"
    first = Repository.init(tmp_path / "first", url)
    first.images.register(ImageRegistration(_plate_image(1, 1), {}, []))
    first_id = _settings(first.root)["repository"]["id"]
    first.close()
    with pytest.raises(CatalogError, match=r"already belongs to the repository at .*first"):
        Repository.init(tmp_path / "second", url)
    assert not (tmp_path / "second").exists()  # nothing half-made left behind
    # the first repository and its catalog are untouched
    with Repository.open(tmp_path / "first") as again:
        assert [i.id for i in again.images.all()] == [f"{1:016x}"]
        assert _settings(again.root)["repository"]["id"] == first_id


def test_open_with_a_catalog_of_another_repository_is_refused(tmp_path: Path) -> None:
    a = Repository.init(tmp_path / "a")
    b = Repository.init(tmp_path / "b")
    a.close()
    b.close()
    cfg = tmp_path / "b" / CONFIG_NAME
    text = cfg.read_text(encoding="utf-8").replace(
        'url = "sqlite:///catalog.sqlite"', f'url = "sqlite:///{tmp_path / "a" / "catalog.sqlite"}"'
    )
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match="belongs to another repository"):
        Repository.open(tmp_path / "b")


def test_a_repository_made_before_identities_gets_one_when_opened(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "old")
    with repo.engine.begin() as conn:
        conn.execute(S.repository_identity.delete())
    repo.close()
    cfg = tmp_path / "old" / CONFIG_NAME
    lines = [ln for ln in cfg.read_text().splitlines() if not ln.startswith("id = ")]
    cfg.write_text("\n".join(lines) + "\n")
    with Repository.open(tmp_path / "old") as r:
        with r.engine.connect() as conn:
            (row,) = conn.execute(sa.select(S.repository_identity)).all()
        assert _settings(r.root)["repository"]["id"] == row.id
        assert row.root == str(r.root)
    Repository.open(tmp_path / "old").close()  # and opens again, with the same identity


def test_object_store_urls_are_refused_clearly(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(RepositoryError, match=r"s3:// storage is not supported yet"):
            Repository.init("s3://bucket/x")
        assert not (tmp_path / "s3:").exists()
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("store", ["s3://bucket/images", "/elsewhere/data"])
def test_a_store_url_other_than_the_folder_is_refused(tmp_path: Path, store: str) -> None:
    Repository.init(tmp_path / "r").close()
    cfg = tmp_path / "r" / CONFIG_NAME
    cfg.write_text(cfg.read_text().replace('url = "."', f'url = "{store}"'))
    with pytest.raises(RepositoryError, match="not supported"):
        Repository.open(tmp_path / "r")


def test_migration_0006_renumbers_sites_from_one(tmp_path: Path, catalog_url: str | None) -> None:
    from alembic import command
    from alembic.config import Config

    import quantscope.catalog._repository as mod

    repo = Repository.init(tmp_path / "r", catalog_url)
    # sites 1, 2, 3 of one well: before 0006 they were stored as fields 0, 1, 2
    repo.images.register_many([ImageRegistration(_plate_image(i, i), {}, []) for i in (1, 2, 3)])
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(mod.__file__).parent / "migrations"))
    with repo.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
        assert sorted(conn.execute(sa.text("SELECT field FROM images"))) == [(0,), (1,), (2,)]
    repo.close()
    with Repository.open(tmp_path / "r") as again:
        assert [i.position.field for i in again.images.all()] == [1, 2, 3]
        assert again.images.at("P", 0, 0, 1) == f"{1:016x}"


def test_short_id_prefixes_resolve_or_say_ambiguous(tmp_path: Path) -> None:
    from quantscope.errors import InvalidInput, NotFound

    repo = Repository.init(tmp_path / "r")
    ids = ["abc1" + "0" * 12, "abc2" + "0" * 12, "f0f1" + "0" * 12]
    repo.images.register_many(
        [
            ImageRegistration(_plate_image(k, k + 1).model_copy(update={"id": i}), {}, [])
            for k, i in enumerate(ids)
        ]
    )
    assert repo.images.get("f0f").id == ids[2]  # three characters are enough
    with pytest.raises(InvalidInput, match=r"prefix 'abc' is ambiguous \(matches abc1"):
        repo.images.get("abc")
    assert repo.images.get("abc2").id == ids[1]
    with pytest.raises(NotFound, match="at least 3 characters"):
        repo.images.get("f0")
    with pytest.raises(NotFound):
        repo.images.get("ab%")  # a wildcard is taken literally, not as "any"
    repo.close()
