"""Catalog backends for every test folder: SQLite (embedded) and a real PostgreSQL server
(loaded by ``tests/conftest.py`` as a pytest plugin: ``pg_server``, ``pg_url``, ``catalog_url``).

The PostgreSQL server is started by the tests themselves (initdb + pg_ctl in a temporary folder,
listening on a Unix socket only) unless ``QUANTSCOPE_TEST_PG_URL`` names one. Where PostgreSQL
is not installed the PostgreSQL cases skip, except under CI (``CI=true``), where they fail:
``.ci/run`` installs PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Base URL (without database) of a running PostgreSQL server."""
    env_url = os.environ.get("QUANTSCOPE_TEST_PG_URL")
    if env_url:
        yield env_url
        return
    bindir = _pg_bin()
    if bindir is None:
        msg = "PostgreSQL is not installed (initdb not found); .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    base = Path(tempfile.mkdtemp(prefix="qs-pg-"))
    data, sock = base / "data", base / "sock"
    data.mkdir()
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
        shutil.chown(sock, "postgres")
        base.chmod(0o755)
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    opts = f"-k {sock} -c listen_addresses='' -c fsync=off -c full_page_writes=off -p 5439"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-w",
                "-l",
                str(base / "log"),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@/?host={sock}&port=5439"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def _with_database(base_url: str, name: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(base_url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def fresh_database(server: str, prefix: str = "qs") -> Iterator[str]:
    """URL of a new, empty database on the PostgreSQL ``server`` (a URL), dropped on exit with
    any connections still open. Module-scoped fixtures use it where ``pg_url`` (one test) is too
    short-lived."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_with_database(server, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database for one test."""
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest) -> str | None:
    """None (the embedded SQLite default) or a PostgreSQL URL: tests run on both."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")
