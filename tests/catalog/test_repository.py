"""Repository and catalog: creation, migrations, registration round trips, locking — on SQLite
and on a real PostgreSQL server."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from quantscope.catalog import CONFIG_NAME, SCHEMA_HEAD, ImageRegistration, Repository
from quantscope.errors import (
    CatalogError,
    ConcurrentAccess,
    NotARepository,
    NotFound,
    RepositoryError,
)
from quantscope.model import (
    Acquisition,
    Channel,
    Image,
    Instrument,
    Objective,
    PlatePosition,
    SourceFile,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BBBC = DATA / "bbbc039_nuclei_subset" / "images"


def _image(i: int = 0, plate: bool = True) -> Image:
    return Image(
        id=f"{i:x}" * 16,
        name=f"img{i}",
        shape=(1, 2, 3, 40, 50),
        dtype="uint16",
        physical_size_x_um=0.325,
        physical_size_y_um=0.325,
        physical_size_z_um=1.5,
        channels=(
            Channel(
                index=0,
                name="DAPI",
                color="0000FF",
                excitation_wavelength_nm=405.0,
                emission_wavelength_nm=450.0,
                exposure_time_s=0.05,
                fluor="Hoechst 33342",
            ),
            Channel(index=1, name="GFP", color="00FF00"),
        ),
        acquisition=Acquisition(
            acquired_at=datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
            instrument=Instrument(
                manufacturer="Zeiss", model="Axio Observer", microscope_type="Inverted"
            ),
            objective=Objective(
                model="Plan-Apochromat 40x/1.3 Oil",
                nominal_magnification=40.0,
                lens_na=1.3,
                immersion="Oil",
            ),
            time_increment_s=None,
        ),
        position=PlatePosition(plate="P1", row=1, column=i, field=1) if plate else None,
        sources=(
            SourceFile(path=f"/data/f{i}.tif", size=123, sha256=f"{i:064x}", reader="tifffile"),
        ),
        store_path=f"plates/P1.ome.zarr/B/{i + 1:02d}/0"
        if plate
        else f"images/{f'{i:x}' * 16}.ome.zarr",
        levels=1,
        bytes_stored=999,
    )


def _register(repo: Repository, img: Image) -> None:
    repo.images.register(
        ImageRegistration(
            image=img,
            source_formats={s.sha256: "tiff" for s in img.sources},
            manifest=[
                (f"{img.store_path}/zarr.json", 10, "a" * 64),
                (f"{img.store_path}/0/c.0", 20, "b" * 64),
            ],
        )
    )


def test_init_creates_settings_catalog_and_store(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r")
    assert (tmp_path / "r" / CONFIG_NAME).is_file()
    assert (tmp_path / "r" / "catalog.sqlite").is_file()
    for sub in ("images", "plates", "tables"):
        assert (tmp_path / "r" / sub).is_dir()
    assert repo.summary()["images"] == 0
    with pytest.raises(RepositoryError, match="already a quantscope repository"):
        Repository.init(tmp_path / "r")


def test_init_over_a_file_is_refused_and_leaves_it_alone(tmp_path: Path) -> None:
    f = tmp_path / "somefile"
    f.write_text("keep me", encoding="utf-8")
    with pytest.raises(RepositoryError, match="not a folder"):
        Repository.init(f)
    assert f.read_text(encoding="utf-8") == "keep me"


def test_open_missing_repository_is_a_clear_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotARepository, match="quantscope init") as info:
        Repository.open(tmp_path / "nothing")
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, NotFound)


def test_sqlite_catalog_uses_wal(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r")
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_schema_head_constant_matches_alembic_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import quantscope.catalog._repository as mod

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(mod.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


def test_migrations_create_exactly_the_declared_schema(
    tmp_path: Path, catalog_url: str | None
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from quantscope.catalog._schema import metadata

    repo = Repository.init(tmp_path / "r", catalog_url)
    with repo.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []


def test_register_round_trips_every_field(tmp_path: Path, catalog_url: str | None) -> None:
    repo = Repository.init(tmp_path / "r", catalog_url)
    a, b = _image(0), _image(1, plate=False)
    _register(repo, a)
    _register(repo, b)
    got = {img.id: img for img in Repository.open(tmp_path / "r").images.all()}
    assert set(got) == {a.id, b.id}
    for want in (a, b):
        have = got[want.id]
        assert have.model_dump(exclude={"created_at", "acquisition"}) == want.model_dump(
            exclude={"created_at", "acquisition"}
        )
        assert have.acquisition.objective == want.acquisition.objective
        assert have.acquisition.instrument == want.acquisition.instrument
        assert have.acquisition.acquired_at.replace(tzinfo=None) == datetime(2024, 3, 1, 12, 0)
        assert have.created_at is not None
    assert got[a.id].position == PlatePosition(plate="P1", row=1, column=0, field=1)
    assert repo.images.get(a.id[:6]).id == a.id  # unique prefix
    s = repo.summary()
    assert (s["images"], s["channels"], s["plates"], s["wells"], s["source_files"]) == (
        2,
        4,
        1,
        1,
        2,
    )
    assert s["pixel_bytes"] == 2 * (2 * 3 * 40 * 50) * 2  # two uint16 images of 2x3x40x50
    assert s["stored_bytes"] == 2 * 999 and s["source_bytes"] == 2 * 123
    assert repo.images.known_sources([a.sources[0].sha256, "f" * 64]) == {
        a.sources[0].sha256: [a.id]
    }
    assert repo.images.at("P1", 1, 0, 1) == a.id
    assert repo.images.store_paths() == {a.id: a.store_path, b.id: b.store_path}
    assert repo.images.at("P1", 1, 5, 0) is None
    assert [e[1] for e in repo.images.stored_files(a.id)] == sorted(
        [f"{a.store_path}/zarr.json", f"{a.store_path}/0/c.0"]
    )


def test_failed_registration_leaves_catalog_unchanged(
    tmp_path: Path, catalog_url: str | None
) -> None:
    repo = Repository.init(tmp_path / "r", catalog_url)
    a = _image(0)
    _register(repo, a)
    before = repo.summary()
    # same plate position, different id: violates the unique position constraint mid-transaction
    clash = _image(0).model_copy(
        update={
            "id": "f" * 16,
            "sources": (SourceFile(path="/x", size=1, sha256="e" * 64, reader="tifffile"),),
        }
    )
    with pytest.raises(CatalogError, match="cannot be registered"):
        _register(repo, clash)
    assert repo.summary() == before
    assert repo.images.known_sources(["e" * 64]) == {}


def test_unknown_image_id_is_not_found(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r")
    with pytest.raises(NotFound, match="no image with id 'nope'"):
        repo.images.get("nope")


def test_second_writer_is_refused(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r")
    other = Repository.open(tmp_path / "r")
    with (
        repo.write_lock(),
        pytest.raises(ConcurrentAccess, match="another quantscope process"),
        other.write_lock(),
    ):
        pass
    with other.write_lock():  # released: a later writer gets it
        pass


def test_bad_catalog_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot be used"):
        Repository.init(tmp_path / "r", "nosuchdb://x")
    with pytest.raises(CatalogError, match="cannot be migrated"):
        Repository.init(tmp_path / "r2", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert not (tmp_path / "r").exists() and not (tmp_path / "r2").exists()


def test_open_upgrades_a_catalog_of_an_older_schema(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    import quantscope.catalog._repository as mod

    repo = Repository.init(tmp_path / "r")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(mod.__file__).parent / "migrations"))
    with repo.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
        assert "quality_metrics" not in sa.inspect(conn).get_table_names()
    repo.close()
    reopened = Repository.open(tmp_path / "r")
    assert reopened._schema_version() == SCHEMA_HEAD
    with reopened.engine.connect() as conn:
        assert "quality_metrics" in sa.inspect(conn).get_table_names()


def test_open_migrates_an_unmigrated_catalog(tmp_path: Path) -> None:
    from quantscope.catalog._schema import metadata

    repo = Repository.init(tmp_path / "r")
    with repo.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
        metadata.drop_all(conn)
    repo.close()
    reopened = Repository.open(tmp_path / "r")
    assert reopened.summary()["images"] == 0
    assert reopened._schema_version() == SCHEMA_HEAD


def test_corrupt_settings_file_is_reported(tmp_path: Path) -> None:
    Repository.init(tmp_path / "r")
    (tmp_path / "r" / CONFIG_NAME).write_text("[catalog\nurl=", encoding="utf-8")
    with pytest.raises(RepositoryError, match="invalid settings"):
        Repository.open(tmp_path / "r")


@pytest.mark.skipif(not BBBC.is_dir(), reason="../shared/data is absent")
def test_ingest_on_each_backend(tmp_path: Path, catalog_url: str | None) -> None:
    from quantscope.ingestion import ingest, verify

    src = tmp_path / "src"
    src.mkdir()
    for f in sorted(BBBC.glob("*.tif"))[:4]:
        shutil.copy(f, src / f.name)
    repo = Repository.init(tmp_path / "r", catalog_url)
    report = ingest(repo, [src], jobs=2)
    assert report.ok and len(report.added) == 4
    assert all(img.position is not None and img.position.plate == "IXMtest" for img in report.added)
    again = ingest(repo, [src])
    assert not again.added and len(again.skipped) == 4
    assert verify(repo) == []
    assert Repository.open(tmp_path / "r").summary()["images"] == 4


def test_plate_positions_lists_occupied_fields(tmp_path: Path, catalog_url: str | None) -> None:
    repo = Repository.init(tmp_path / "r", catalog_url)
    a, b = _image(0), _image(2)
    _register(repo, a)
    _register(repo, b)
    assert repo.images.plate_positions(["P1", "other"]) == {
        ("P1", 1, 0, 1): a.id,
        ("P1", 1, 2, 1): b.id,
    }
    assert repo.images.plate_positions([]) == {}


def test_quality_records_round_trip(tmp_path: Path, catalog_url: str | None) -> None:
    import math

    repo = Repository.init(tmp_path / "r", catalog_url)
    a, b = _image(0), _image(1)
    _register(repo, a)
    _register(repo, b)
    repo.quality.set_metrics(
        [(a.id, {0: {"focus_plls": -2.5, "snr": math.nan}, 1: {"focus_plls": -3.0}})]
    )
    repo.quality.set_metrics([(b.id, {0: {"focus_plls": -1.0}})])
    got = repo.quality.metrics()
    assert got[b.id] == {0: {"focus_plls": -1.0}}
    assert got[a.id][1] == {"focus_plls": -3.0} and math.isnan(got[a.id][0]["snr"])
    repo.quality.set_metrics([(a.id, {0: {"focus_plls": -2.0}})])  # replaces all of a's values
    assert repo.quality.metrics([a.id]) == {a.id: {0: {"focus_plls": -2.0}}}
    repo.quality.set_status({a.id: ("fail", ["blurry"]), b.id: ("pass", [])})
    assert repo.quality.status() == {a.id: ("fail", ["blurry"]), b.id: ("pass", [])}
    repo.quality.set_illumination_profile("P1", 0, "DAPI", "profiles/P1/0.npy", 2, "c" * 64)
    repo.quality.set_illumination_profile("P1", 0, "DAPI", "profiles/P1/0b.npy", 3, "d" * 64)
    (prof,) = repo.quality.illumination_profiles()
    assert (prof.plate, prof.channel, prof.store_path, prof.n_images) == (
        "P1",
        0,
        "profiles/P1/0b.npy",
        3,
    )
    with pytest.raises(NotFound):
        repo.quality.set_illumination_profile("nope", 0, "x", "p", 1, "e" * 64)


def test_quality_reads_scoped_to_plates(tmp_path: Path, catalog_url: str | None) -> None:
    """QC re-flags only the plates an ingest touches: metrics, groups and the images without a
    status can be read for some plates (None: the images on no plate)."""
    repo = Repository.init(tmp_path / "r", catalog_url)
    a, b, loose = _image(0), _image(1), _image(2, plate=False)
    for img in (a, b, loose):
        _register(repo, img)
    repo.quality.set_metrics(
        [(a.id, {0: {"snr": 5.0}}), (loose.id, {0: {"snr": 7.0}, 1: {"snr": 8.0}})]
    )
    assert repo.quality.metrics(plates=["P1"]) == {a.id: {0: {"snr": 5.0}}}
    assert repo.quality.metrics(plates=[None]) == {loose.id: {0: {"snr": 7.0}, 1: {"snr": 8.0}}}
    assert set(repo.quality.metrics(plates=["P1", None])) == {a.id, loose.id}
    assert repo.quality.metrics(plates=[]) == {} and repo.quality.metrics(plates=["nope"]) == {}
    assert repo.quality.groups(["P1"]) == {
        a.id: ("P1", ["DAPI", "GFP"]),
        b.id: ("P1", ["DAPI", "GFP"]),
    }
    assert repo.quality.groups([None]) == {loose.id: (None, ["DAPI", "GFP"])}
    assert repo.quality.groups() == {**repo.quality.groups(["P1"]), **repo.quality.groups([None])}
    assert repo.quality.plates([a.id]) == {"P1"}
    assert repo.quality.plates([a.id, loose.id, "f" * 32]) == {"P1", None}
    assert repo.quality.plates([]) == set()
    assert repo.quality.plates([a.id] * 1200) == {"P1"}  # more ids than one IN list takes
    assert repo.quality.unchecked() == sorted([a.id, b.id, loose.id])
    repo.quality.set_status({a.id: ("pass", []), loose.id: ("warn", ["dim"])})
    assert repo.quality.unchecked() == [b.id]


def test_analyze_gives_the_sqlite_planner_statistics(tmp_path: Path) -> None:
    """Without statistics SQLite planned a channel + well query as a scan of every channel row
    per image (over 15 s at 100,000 images); ``analyze`` writes them (sqlite_stat1)."""
    with Repository.init(tmp_path / "r") as repo:
        for i in range(3):
            _register(repo, _image(i))
        with repo.engine.connect() as conn:
            has = conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).scalar()
        assert has == 0
        repo.analyze()
        with repo.engine.connect() as conn:
            tables = set(conn.exec_driver_sql("SELECT tbl FROM sqlite_stat1").scalars())
        assert {"images", "channels"} <= tables
        assert len(repo.query.find_ids('channel.name == "DAPI" and well == "B01"')) == 1


def test_ingest_leaves_planner_statistics(tmp_path: Path) -> None:
    from quantscope.ingestion import ingest

    src = tmp_path / "one.tif"
    import tifffile

    tifffile.imwrite(src, (np.arange(64 * 64, dtype="uint16") % 500).reshape(64, 64))
    with Repository.init(tmp_path / "r") as repo:
        ingest(repo, [src], qc=False)
        with repo.engine.connect() as conn:
            tables = set(conn.exec_driver_sql("SELECT tbl FROM sqlite_stat1").scalars())
    assert "images" in tables


def test_ingest_with_qc_leaves_planner_statistics_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With QC, the statistics are refreshed by QC's end (not twice per ingest)."""
    import tifffile

    from quantscope.ingestion import ingest

    src = tmp_path / "one.tif"
    tifffile.imwrite(src, (np.arange(64 * 64, dtype="uint16") % 500).reshape(64, 64))
    calls: list[str] = []
    real = Repository.analyze
    monkeypatch.setattr(Repository, "analyze", lambda self: calls.append("x") or real(self))
    with Repository.init(tmp_path / "r") as repo:
        ingest(repo, [src], qc=True)
        with repo.engine.connect() as conn:
            tables = set(conn.exec_driver_sql("SELECT tbl FROM sqlite_stat1").scalars())
    assert "images" in tables and "quality_metrics" in tables
    assert calls == ["x"]
