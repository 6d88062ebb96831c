"""Fixtures shared by every test folder: where the real test data live, headless chromium, the
CLI (in-process and as a subprocess), kill-polling and the analysis repositories.

Real microscopy files are read in place from ``../shared/data`` (beside the repository, never
copied into it). Where that folder (or headless chromium) is absent the tests that need it skip
with the reason, except under CI (``CI=true``), where a missing prerequisite is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner, Result

if TYPE_CHECKING:
    from quantscope.catalog import Repository

# PostgreSQL fixtures (pg_server, pg_url, catalog_url) for every test folder
pytest_plugins = ["_postgres"]

# Property tests explore new random examples on every local run; under CI they replay a fixed
# sequence, so a submission's CI result does not depend on the luck of the draw.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

# No per-example deadline anywhere: on 2 shared cores one slow example (a GC pause, another
# process) would fail a correct test; pytest-timeout bounds the whole test instead.
_hypothesis_settings.register_profile("local", deadline=None)
_hypothesis_settings.register_profile("ci", derandomize=True, database=None, deadline=None)
_hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "local")

# pytest-xdist's workers get COLUMNS=80/LINES=24 from execnet; the suite expects the console of
# a plain (non-terminal) run, as `make test` without workers and CI have it
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


def _missing(reason: str) -> None:
    """Skip the test for a missing prerequisite, or fail it under CI (``CI`` set)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    """argon2id with the smallest cost in this test process (0.2 ms instead of 0.19 s a hash;
    the hashes are still argon2id, and a verification reads its cost from the hash). Servers
    and CLI commands started as separate processes keep the real cost."""
    from argon2 import PasswordHasher

    from quantscope.catalog import _access_records

    real = _access_records._hasher
    _access_records._hasher = lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    _access_records._hasher = real


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real vendor files, OME-XML samples and NGFF schemas."""
    if not SHARED_DATA.is_dir():
        _missing(
            f"real test data not found at {SHARED_DATA} (expected ../shared/data beside the repo)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def vendor_dir(shared_data: Path) -> Path:
    """``../shared/data/vendor_formats``: one real file per supported vendor format."""
    return shared_data / "vendor_formats"


@pytest.fixture(scope="session")
def data_root(shared_data: Path) -> Path:
    """Alias of :func:`shared_data` (``../shared/data``)."""
    return shared_data


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    """A freshly initialized, empty repository (SQLite catalog) in ``tmp_path / "repo"``; a
    module that needs another repository defines its own ``repo``."""
    from quantscope.catalog import Repository

    r = Repository.init(tmp_path / "repo")
    yield r
    r.close()


@pytest.fixture(scope="session")
def bbbc039(shared_data: Path) -> Path:
    """``bbbc039_nuclei_subset``: images/, labels/ (uint16 instance labels), masks/ (PNG)."""
    return shared_data / "bbbc039_nuclei_subset"


@pytest.fixture(scope="session")
def bbbc039_images(bbbc039: Path) -> Path:
    """The 40 BBBC039 ImageXpress files (``IXMtest_A02_s1_w1<GUID>.tif``)."""
    folder = bbbc039 / "images"
    assert len(list(folder.glob("*.tif"))) == 40, folder
    return folder


@pytest.fixture(scope="session")
def cli() -> Callable[..., Result]:
    """``cli(*args, env=None)``: run the typer app with CliRunner (stdout and stderr kept apart;
    ``env`` adds environment variables such as ``COLUMNS``). Session-scoped, so module-scoped
    fixtures can build repositories through the CLI too."""
    from quantscope.cli import app

    runner = CliRunner()

    def invoke(*args: object, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, [str(a) for a in args], env=env)

    return invoke


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's headless ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs
    it). Without it the test skips, except under CI, where a missing browser is a failure."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    _missing("headless chromium not found; install Debian's chromium (apt-get install chromium)")
    raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture
def headless(chromium: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``headless(*args)``: run headless chromium with ``args`` (``--screenshot=...``,
    ``--dump-dom``, a URL) and a profile of its own under ``tmp_path``; fails on a non-zero exit."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                chromium,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'chromium-profile'}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    return run


@pytest.fixture(scope="session")
def quantscope_command() -> list[str]:
    """The ``quantscope`` console script beside this interpreter as a subprocess command (or
    ``python -c`` running its ``main`` where the script is not installed)."""
    script = Path(sys.executable).with_name("quantscope")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from quantscope.cli import main; main()"]


def _poll_until(
    cond: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    *,
    timeout: float = 60,
    interval: float = 0.002,
    what: str = "the process",
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(interval)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}")


def _wait_until(cond: Callable[[], bool], timeout: float = 60, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


@pytest.fixture(scope="session")
def wait_until() -> Callable[..., bool]:
    """``wait_until(cond, timeout=60, interval=0.01)``: whether ``cond()`` came to hold within
    ``timeout`` seconds (the test asserts what it then expects), e.g. that a killed child was
    noticed."""
    return _wait_until


@pytest.fixture(scope="session")
def poll_until() -> Callable[..., bool]:
    """``poll_until(cond, proc, timeout=60, interval=0.002, what=...)``: True once ``cond()``
    holds, False if ``proc`` ended first; kills ``proc`` and fails after ``timeout`` seconds.
    The kill tests use it to SIGKILL a real process at a chosen moment."""
    return _poll_until


@pytest.fixture
def analysis_tools() -> Iterator[None]:
    """The test tools ``test-threshold`` and ``test-area`` registered for the test (see
    ``_analysis_support``); a module asks for them with
    ``pytestmark = pytest.mark.usefixtures("analysis_tools")``."""
    from _analysis_support import install_test_tools, remove_test_tools

    install_test_tools()
    yield
    remove_test_tools()


@pytest.fixture
def analysis_repo(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[Repository]:
    """An open copy (at ``tmp_path / "repo"``) of the session's ingested 1x3 synthetic plate."""
    from _analysis_support import fixture_repo

    yield from fixture_repo(tmp_path_factory, tmp_path)


@pytest.fixture
def analysis_root(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """The folder of a closed copy of the session's ingested 1x3 synthetic plate (for the CLI)."""
    from _analysis_support import copy_repo

    copy_repo(tmp_path_factory, tmp_path / "repo").close()
    return tmp_path / "repo"


@pytest.fixture
def pipeline_spec(tmp_path: Path) -> Path:
    """``test.yaml``: the two-step test pipeline (``test-threshold`` then ``test-area``)."""
    from _analysis_support import pipeline_text

    path = tmp_path / "test.yaml"
    path.write_text(pipeline_text())
    return path
