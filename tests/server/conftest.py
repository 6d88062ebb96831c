"""Fixtures of the server's tests: a served repository (synthetic plate, ingested, nuclei
pipeline run: images, labels, features and a run), an in-process client and a real server.

- ``served_root``: the session's repository folder; read-only tests use it as is;
- ``served_copy``: a private copy of it for a test that writes;
- ``client``: a :class:`fastapi.testclient.TestClient` over ``create_app(served_root)``
  (single-user mode: the caller is the local admin);
- ``live_server``: ``quantscope serve`` started as a user starts it, in its own process, on a
  free loopback port; yields its base URL (``http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "nuclei.yaml"


def _build(root: Path, cli: Callable[..., object]) -> Path:
    """synth -> init -> ingest -> run, through the CLI as a user does it."""
    steps = [
        (
            "synth",
            root / "plate",
            "--plate",
            "2x2",
            "--fields",
            "1",
            "--channels",
            "DAPI,GFP",
            "--size",
            "256",
            "--seed",
            "3",
        ),
        ("init", root / "repo"),
        ("ingest", root / "repo", root / "plate" / "images"),
        ("run", root / "repo", PIPELINE),
    ]
    for args in steps:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)  # type: ignore[attr-defined]
    return root / "repo"


@pytest.fixture(scope="session")
def served_root(tmp_path_factory: pytest.TempPathFactory, cli: Callable[..., object]) -> Path:
    """A repository with a 2x2 synthetic plate (2 channels, 256 px), ingested, QC'd, and the
    nuclei pipeline run on it (labels in ``labels/``, a feature table, one run)."""
    return _build(tmp_path_factory.mktemp("served"), cli)


@pytest.fixture
def served_copy(served_root: Path, tmp_path: Path) -> Path:
    """A private copy of ``served_root`` (for tests that write)."""
    dst = tmp_path / "repo"
    shutil.copytree(served_root, dst, symlinks=True)
    return dst


@pytest.fixture
def client(served_root: Path) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    app = create_app(served_root)
    with TestClient(app) as c:
        yield c
    app.state.quantscope.repo.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    command: list[str], root: Path, *extra: str, timeout: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    """``quantscope serve ROOT --port P EXTRA...`` in its own process; (process, base URL) once
    it answers ``/healthz``."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*command, "serve", str(root), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"quantscope serve exited with {proc.returncode}: {out}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("quantscope serve did not answer /healthz in time")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def serve_process(
    quantscope_command: list[str],
) -> Iterator[Callable[..., str]]:
    """``serve_process(root, *extra)``: start ``quantscope serve`` on ``root``; returns its base
    URL; every server started is stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(root: Path, *extra: str) -> str:
        proc, url = start_server(quantscope_command, root, *extra)
        procs.append(proc)
        return url

    yield start
    for p in procs:
        stop_server(p)


@pytest.fixture(scope="module")
def live_server(served_root: Path, quantscope_command: list[str]) -> Iterator[str]:
    """Base URL of ``quantscope serve`` over ``served_root`` (single-user mode), one server per
    test module (the tests that use it only read)."""
    proc, url = start_server(quantscope_command, served_root)
    yield url
    stop_server(proc)


# ---------------------------------------------------------------------------- access (h1)
ACCESS_PASSWORD = "correct horse battery"


def build_access_world(root: Path) -> dict[str, object]:
    """Give the repository at ``root`` (a copy of ``served_root``) users and datasets (issue
    14 part 4):

    - users ``owner``, ``member``, ``other`` and ``boss`` (admin), password
      :data:`ACCESS_PASSWORD`, each with an API token (``tokens[name]``);
    - ``ids["private"]``: the first image, in private dataset ``lab`` (owner ``owner``, shared
      with ``member``); ``ids["public"]``: the second, in public dataset ``open`` (owner
      ``owner``); ``ids["legacy"]``: the third, in dataset ``legacy`` without access record
      (admins only); ``ids["none"]``: the fourth, in no dataset (admins only).

    Returns ``{"root", "ids", "tokens", "password"}``.
    """
    from quantscope.catalog import Repository

    with Repository.open(root) as repo:
        images = sorted(img.id for img in repo.images.all())
        ids = dict(zip(("private", "public", "legacy", "none"), images, strict=True))
        repo.annotations.add_to_dataset("lab", [ids["private"]])
        repo.annotations.add_to_dataset("open", [ids["public"]])
        repo.annotations.add_to_dataset("legacy", [ids["legacy"]])
        for name in ("owner", "member", "other", "boss"):
            repo.access.add_user(name, ACCESS_PASSWORD, admin=name == "boss")
        repo.access.set_owner("lab", "owner")
        repo.access.share("lab", "member")
        repo.access.set_owner("open", "owner")
        repo.access.set_visibility("open", "public")
        tokens = {
            n: repo.access.create_token(n, "tests") for n in ("owner", "member", "other", "boss")
        }
    return {"root": root, "ids": ids, "tokens": tokens, "password": ACCESS_PASSWORD}


@pytest.fixture
def access_world(served_copy: Path) -> dict[str, object]:
    """``served_copy`` with the users and datasets of :func:`build_access_world` (for a test
    that changes them)."""
    return build_access_world(served_copy)


@pytest.fixture(scope="module")
def access_world_shared(
    served_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    """One :func:`build_access_world` per test module, for tests that only read it (signing
    in is fine: sessions change nothing another test looks at)."""
    dst = tmp_path_factory.mktemp("access") / "repo"
    shutil.copytree(served_root, dst, symlinks=True)
    return build_access_world(dst)
