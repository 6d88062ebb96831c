"""Migration 0008 (issue 14 part 4): an older catalog gains the access tables; its datasets
have no access record, so they are private and owned by nobody (admins only); downgrading
removes the tables again. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from quantscope.catalog import DatasetAccess, ImageRegistration, Principal, Repository
from quantscope.catalog import _schema as S
from quantscope.model import Channel, Image

TABLES = {"users", "user_tokens", "user_sessions", "dataset_access", "dataset_members"}


def _image(i: int) -> Image:
    return Image(
        id=f"{i:032x}",
        name=f"img{i}",
        shape=(1, 1, 1, 8, 8),
        dtype="uint16",
        channels=(Channel(index=0, name="DAPI"),),
        store_path=f"images/{i:032x}.ome.zarr",
        levels=1,
        bytes_stored=1,
    )


def test_upgrade_from_0007_keeps_datasets_admin_only(
    tmp_path: Path, catalog_url: str | None
) -> None:
    from alembic import command
    from alembic.config import Config

    import quantscope.catalog._repository as mod

    repo = Repository.init(tmp_path / "r", catalog_url)
    repo.images.register_many([ImageRegistration(_image(i), {}, []) for i in (1, 2)])
    repo.annotations.add_to_dataset("screen", [f"{1:032x}"])
    repo.access.add_user("ada", "long-enough")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(mod.__file__).parent / "migrations"))
    with repo.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
        assert not TABLES & set(sa.inspect(conn).get_table_names())
    repo.close()
    with Repository.open(tmp_path / "r") as again:  # upgraded on open
        assert again._schema_version() == "0008"
        assert not again.access.has_users()  # (the users went with the downgrade)
        assert again.access.dataset_access("screen") == DatasetAccess("screen")
        clause = again.access.visible_images_clause(Principal.anonymous())
        with again.engine.connect() as conn:
            q = sa.select(sa.func.count()).select_from(S.images)
            assert conn.execute(q.where(clause)).scalar() == 0
        assert again.access.visible_images_clause(Principal.local()) is None
