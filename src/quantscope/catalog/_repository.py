"""A repository: a folder with ``quantscope.toml``, a catalog database and the OME-Zarr store.

This module holds :class:`Repository` itself: creating and opening a repository (settings file,
catalog engine, schema migrations), the catalog's record of which repository owns it, the
write lock and the summary of what it holds. What the handle reads and writes lives in its
namespaced parts (:mod:`._part`), one per area of the catalog:

- ``repo.images``: image records (:mod:`._images`, which also defines
  :class:`ImageRegistration` and :func:`plate_folder`);
- ``repo.quality``: QC metric values, statuses and illumination profiles (:mod:`._quality`);
- ``repo.annotations``: annotations, tags, datasets and sidecars (:mod:`._annotations`);
- ``repo.query``: the query language, ``find``, ``find_ids`` and ``fields`` (:mod:`._find`);
- ``repo.runs``: analysis runs, their steps and artifacts (:mod:`._runs`);
- ``repo.bench``: benchmark sets, runs and scores (:mod:`._bench`);
- ``repo.access``: users, tokens, sessions and dataset access records (:mod:`._access_records`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .._files import atomic_write
from .._text import plural
from ..errors import (
    CatalogError,
    ConcurrentAccess,
    NotARepository,
    RepositoryError,
)
from . import _schema as S
from ._access_records import AccessRecords
from ._annotations import AnnotationRecords
from ._bench import BenchmarkRecords
from ._find import QueryMethods
from ._images import ImageRecords, _utcnow
from ._moved import moved_hint
from ._quality import QualityRecords
from ._runs import RunRecords

__all__ = ["CONFIG_NAME", "SCHEMA_HEAD", "Repository"]

log = logging.getLogger("quantscope.catalog")

CONFIG_NAME = "quantscope.toml"
SCHEMA_HEAD = "0008"  # the newest migration; a test keeps it equal to alembic's head
_LOCK_NAME = ".quantscope.lock"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_config(root: Path, text: str) -> None:
    atomic_write(root / CONFIG_NAME, text, durable=True)


def _refuse_url(value: str, what: str) -> None:
    """Object-store URLs (``s3://…``) are not supported yet: say so instead of making a folder
    named ``s3:``."""
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise RepositoryError(
            f"{what} {value!r}: {scheme}:// storage is not supported yet; a repository is a "
            "local folder (use a path such as /data/myrepo)"
        )


class Repository:
    """Handle on a repository folder: its settings, catalog and store.

    Use :meth:`init` to create one and :meth:`open` to open an existing one. What it reads and
    writes is grouped in parts: :attr:`images`, :attr:`quality`, :attr:`annotations`,
    :attr:`query`, :attr:`runs`, :attr:`bench` and :attr:`access`.

    Attributes
    ----------
    images
        Image records: registering, reading, moving and deleting images (``repo.images.all()``,
        ``repo.images.get(id)``, ``repo.images.plates()``, ...).
    quality
        QC records: metric values, statuses, illumination profiles (``repo.quality.metrics()``,
        ``repo.quality.status()``, ...).
    annotations
        Annotations, tags, datasets and sidecars (``repo.annotations.set(...)``,
        ``repo.annotations.tag(...)``, ``repo.annotations.datasets()``, ...).
    query
        The query language: ``repo.query.find(query)``, ``repo.query.find_ids(query)``,
        ``repo.query.fields()``.
    runs
        Analysis runs and their artifacts (``repo.runs.all()``, ``repo.runs.get(id)``,
        ``repo.runs.artifacts(id)``, ...).
    bench
        Benchmark sets, runs and scores (``repo.bench.sets()``, ``repo.bench.runs()``, ...).
    access
        Users, API tokens, portal sessions and who may see which dataset
        (``repo.access.add_user(...)``, ``repo.access.visible_images_clause(who)``, ...).
    """

    def __init__(self, root: Path, catalog_url: str, engine: Engine) -> None:
        self.root = root
        self.catalog_url = catalog_url
        self.engine = engine
        self.images = ImageRecords(self)
        self.quality = QualityRecords(self)
        self.annotations = AnnotationRecords(self)
        self.query = QueryMethods(self)
        self.runs = RunRecords(self)
        self.bench = BenchmarkRecords(self)
        self.access = AccessRecords(self)

    if not TYPE_CHECKING:  # (type checkers see no such attribute at all)

        def __getattr__(self, name: str) -> Any:
            # only reached for a name the handle lacks: say where a moved method lives now
            hint = moved_hint(name)
            raise AttributeError(
                f"'Repository' object has no attribute {name!r}" + (f"; {hint}" if hint else "")
            )

    # ------------------------------------------------------------------ create / open
    @classmethod
    def init(cls, root: str | os.PathLike[str], catalog_url: str | None = None) -> Repository:
        """Create a repository at ``root`` (an empty or missing folder).

        ``catalog_url`` is an SQLAlchemy URL; by default an SQLite file ``catalog.sqlite`` in
        the folder. A PostgreSQL URL (``postgresql+psycopg://user@host/db``) works the same.
        """
        _refuse_url(str(root), "repository folder")
        root = Path(root).absolute()
        if (root / CONFIG_NAME).exists():
            raise RepositoryError(f"{root}: already a quantscope repository ({CONFIG_NAME} exists)")
        if root.exists() and not root.is_dir():
            raise RepositoryError(f"{root}: exists and is not a folder")
        url = catalog_url or "sqlite:///catalog.sqlite"
        engine = cls._engine(root, url)
        created = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        try:
            for sub in ("images", "plates", "tables"):
                (root / sub).mkdir(exist_ok=True)
            repo = cls(root, url, engine)
            repo.migrate()
            repo_id = repo._claim_new_catalog()
        except BaseException:
            engine.dispose()
            if created:  # leave no half-made repository behind
                import shutil

                shutil.rmtree(root, ignore_errors=True)
            raise
        cfg = (
            "# quantscope repository settings\n"
            f"[repository]\nformat = 1\nid = {_toml_str(repo_id)}\n\n"
            "[catalog]\n# SQLAlchemy URL; sqlite paths are relative to this folder\n"
            f"url = {_toml_str(url)}\n\n"
            "[store]\n# where the OME-Zarr data live: this folder (object storage is not supported "
            'yet)\nurl = "."\n'
        )
        _write_config(root, cfg)
        return repo

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Repository:
        """Open an existing repository, bringing its catalog schema up to date if needed."""
        root = Path(root).absolute()
        cfg_path = root / CONFIG_NAME
        if not cfg_path.is_file():
            raise NotARepository(
                f"{root}: not a quantscope repository (no {CONFIG_NAME}); "
                f"create one with `quantscope init {root}`"
            )
        try:
            cfg = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
            url = str(cfg["catalog"]["url"])
            store_url = str(cfg.get("store", {}).get("url", "."))
            repo_id = cfg.get("repository", {}).get("id")
        except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as e:
            raise RepositoryError(f"{cfg_path}: invalid settings ({e})") from e
        if store_url not in (".", "./", ""):
            _refuse_url(store_url, f"{cfg_path}: [store] url")
            raise RepositoryError(
                f"{cfg_path}: [store] url = {store_url!r} is not supported: the OME-Zarr "
                'store must be the repository folder itself (url = "."); move the data into it'
            )
        repo = cls(root, url, cls._engine(root, url))
        try:
            if repo._schema_version() != SCHEMA_HEAD:
                repo.migrate()
            repo._check_identity(None if repo_id is None else str(repo_id), cfg_path)
        except BaseException:
            repo.engine.dispose()
            raise
        return repo

    # ------------------------------------------------------------------ identity
    def _identity(self, conn: Connection) -> tuple[str, str] | None:
        row = conn.execute(
            sa.select(S.repository_identity.c.id, S.repository_identity.c.root).order_by(
                S.repository_identity.c.created_at
            )
        ).first()
        return None if row is None else (row[0], row[1])

    def _claim_new_catalog(self) -> str:
        """Record a new repository's identity in its (migrated) catalog; a catalog that already
        belongs to a repository, or already holds images, is refused."""
        import uuid

        with self.engine.begin() as conn:
            owner = self._identity(conn)
            if owner is not None:
                raise CatalogError(
                    f"catalog {self._safe_url()} already belongs to the repository at {owner[1]} "
                    f"(id {owner[0]}); give each repository a database of its own, or open "
                    "that repository instead"
                )
            n = conn.execute(sa.select(sa.func.count()).select_from(S.images)).scalar()
            if n:
                raise CatalogError(
                    f"catalog {self._safe_url()} already lists {plural(n, 'image')} of another "
                    "repository; give each repository a database of its own"
                )
            repo_id = uuid.uuid4().hex
            conn.execute(
                S.repository_identity.insert().values(
                    id=repo_id, root=str(self.root), created_at=_utcnow()
                )
            )
        return repo_id

    def _check_identity(self, repo_id: str | None, cfg_path: Path) -> None:
        """Refuse a catalog that belongs to another repository. Repositories made before the
        catalog recorded its owner get their identity now (in the catalog and the settings)."""
        import uuid

        with self.engine.begin() as conn:
            owner = self._identity(conn)
            if owner is not None and (
                owner[0] != repo_id if repo_id else owner[1] != str(self.root)
            ):
                raise CatalogError(
                    f"{self.root}: catalog {self._safe_url()} belongs to another repository (at "
                    f"{owner[1]}, id {owner[0]}; this one is "
                    f"{repo_id or 'unnamed'}): its images are not in this folder. Point "
                    f"[catalog] url in {cfg_path.name} at this repository's own database"
                )
            if owner is not None:
                return
            repo_id = repo_id or uuid.uuid4().hex
            conn.execute(
                S.repository_identity.insert().values(
                    id=repo_id, root=str(self.root), created_at=_utcnow()
                )
            )
        text = cfg_path.read_text(encoding="utf-8")
        if "\nid = " not in text and "[repository]\n" in text:
            _write_config(
                self.root,
                text.replace("[repository]\n", f"[repository]\nid = {_toml_str(repo_id)}\n", 1),
            )

    @staticmethod
    def _engine(root: Path, url: str) -> Engine:
        u = sa.engine.make_url(url)
        try:
            if u.get_backend_name() == "sqlite":
                db = u.database or ""
                if db and db != ":memory:" and not os.path.isabs(db):
                    u = u.set(database=str(root / db))
                eng = sa.create_engine(u, connect_args={"timeout": 30})
                sa.event.listen(eng, "connect", _sqlite_pragmas)
                return eng
            return sa.create_engine(u, pool_pre_ping=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as e:
            raise CatalogError(f"catalog URL {url!r} cannot be used: {e}") from e

    def _schema_version(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.OperationalError as e:
            if "no such table" in str(e) or "does not exist" in str(e):
                return None
            raise CatalogError(
                f"{self.root}: catalog {self._safe_url()} cannot be opened: {e.orig}"
            ) from e
        except sa.exc.ProgrammingError:
            return None

    def _safe_url(self) -> str:
        return sa.engine.make_url(self.catalog_url).render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Apply every pending alembic migration to the catalog."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.SQLAlchemyError as e:
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            raise CatalogError(f"catalog {self._safe_url()} cannot be migrated: {reason}") from e

    def analyze(self) -> None:
        """Refresh the catalog's query-planner statistics after bulk writes.

        Without statistics SQLite picks the wrong index for some queries (a correlated
        ``EXISTS`` on channels scanned every DAPI row per image: over 15 s at 100,000 images,
        20 ms with statistics). SQLite: ``ANALYZE`` under ``analysis_limit`` (a sample: about
        10 ms at 100,000 images). PostgreSQL's autovacuum keeps its own statistics; nothing
        to do there. Ingest, QC and the server's start call it.
        """
        if self.engine.dialect.name != "sqlite":
            return
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("ANALYZE")
        except sa.exc.OperationalError as e:  # a read-only or busy catalog: plans stay as they are
            log.warning("%s: catalog statistics not refreshed: %s", self.root, e.orig)

    def summary(self) -> dict[str, Any]:
        """Counts: images, channels, plates, wells, source files and bytes."""
        with self.engine.connect() as conn:

            def one(q: Any) -> int:
                return int(conn.execute(q).scalar() or 0)

            return {
                "images": one(sa.select(sa.func.count()).select_from(S.images)),
                "channels": one(sa.select(sa.func.count()).select_from(S.channels)),
                "plates": one(sa.select(sa.func.count()).select_from(S.plates)),
                "wells": one(
                    sa.select(sa.func.count()).select_from(
                        sa.select(S.images.c.plate_id, S.images.c.well)
                        .where(S.images.c.plate_id.is_not(None))
                        .distinct()
                        .subquery()
                    )
                ),
                "source_files": one(sa.select(sa.func.count()).select_from(S.source_files)),
                "source_bytes": one(sa.select(sa.func.sum(S.source_files.c.size))),
                "stored_bytes": one(sa.select(sa.func.sum(S.images.c.bytes_stored))),
                "pixel_bytes": self._pixel_bytes(conn),
                "root": str(self.root),
                "catalog": self._safe_url(),
            }

    @staticmethod
    def _pixel_bytes(conn: Connection) -> int:
        import numpy as np

        i = S.images.c
        q = sa.select(
            i.dtype, sa.func.sum(i.size_t * i.size_c * i.size_z * i.size_y * i.size_x)
        ).group_by(i.dtype)
        return sum(int(n or 0) * np.dtype(dt).itemsize for dt, n in conn.execute(q))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the repository's write lock; a second writer gets :class:`ConcurrentAccess`."""
        import fcntl

        path = self.root / _LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise ConcurrentAccess(
                    f"{self.root}: another quantscope process (pid {holder}) is writing to this "
                    "repository; wait for it to finish and run again"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)
