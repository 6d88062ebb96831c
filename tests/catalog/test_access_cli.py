"""``quantscope user``, ``quantscope token`` and the access options of ``quantscope dataset``
(issue 14 part 4), bad input included: each failure is one clear error and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantscope.catalog import ImageRegistration, Repository
from quantscope.cli import app
from quantscope.errors import InvalidInput, NotFound
from quantscope.model import Channel, Image


def _run(*args: object, input: str | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    with Repository.init(root) as repo:
        images = [
            Image(
                id=f"{i:032x}",
                name=f"img{i}",
                shape=(1, 1, 1, 8, 8),
                dtype="uint16",
                channels=(Channel(index=0, name="DAPI"),),
                store_path=f"images/{i:032x}.ome.zarr",
                levels=1,
                bytes_stored=1,
            )
            for i in (1, 2, 3)
        ]
        repo.images.register_many([ImageRegistration(img, {}, []) for img in images])
    return root


def test_user_add_ls_rm(root: Path) -> None:
    r = _run(
        "user", "add", root, "ada", "--admin", "--password-stdin", "--json", input="s3cret-pw\n"
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["admin"] is True
    # prompted twice, hidden
    r = _run("user", "add", root, "bob", input="another-pw\nanother-pw\n")
    assert r.exit_code == 0, r.output
    assert "another-pw" not in r.stdout and "bob: added (user)" in r.stdout
    with Repository.open(root) as repo:
        assert repo.access.verify_password("bob", "another-pw").name == "bob"
        assert repo.access.verify_password("ada", "s3cret-pw").is_admin
    r = _run("user", "ls", root, "--json")
    assert [(u["name"], u["admin"]) for u in json.loads(r.stdout)] == [
        ("ada", True),
        ("bob", False),
    ]
    r = _run("user", "ls", root)
    assert "ada" in r.stdout and "yes" in r.stdout
    assert _run("user", "rm", root, "bob").exit_code == 0
    assert [u["name"] for u in json.loads(_run("user", "ls", root, "--json").stdout)] == ["ada"]


def test_user_bad_input(root: Path) -> None:
    r = _run("user", "add", root, "ada", "--password-stdin", input="short\n")
    assert isinstance(r.exception, InvalidInput) and "at least 8" in str(r.exception)
    r = _run("user", "add", root, "has space", "--password-stdin", input="long-enough\n")
    assert isinstance(r.exception, InvalidInput) and "user name" in str(r.exception)
    r = _run("user", "add", root, "ada", input="long-enough\ndifferent-one\n")
    assert r.exit_code != 0  # the two entries differ: asked again, then input runs out
    assert (
        _run("user", "add", root, "ada", "--password-stdin", input="long-enough\n").exit_code == 0
    )
    r = _run("user", "add", root, "ada", "--password-stdin", input="long-enough\n")
    assert isinstance(r.exception, InvalidInput) and "already exists" in str(r.exception)
    r = _run("user", "rm", root, "nobody")
    assert isinstance(r.exception, NotFound) and "no user named 'nobody'" in str(r.exception)
    r = _run("token", "create", root, "nobody")
    assert isinstance(r.exception, NotFound)
    with Repository.open(root) as repo:
        assert [u.name for u in repo.access.users()] == ["ada"]


def test_token_create_prints_it_once_and_it_works(root: Path) -> None:
    _run("user", "add", root, "ada", "--password-stdin", input="long-enough\n")
    r = _run("token", "create", root, "ada", "--label", "laptop")
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert len(token) >= 43 and "shown once" in r.stderr
    with Repository.open(root) as repo:
        who = repo.access.principal_for_token(token)
        assert who is not None and who.name == "ada"
    r = _run("token", "ls", root, "--json")
    [rec] = json.loads(r.stdout)
    assert rec["label"] == "laptop" and rec["user"] == "ada" and token not in r.stdout
    j = json.loads(_run("token", "create", root, "ada", "--json").stdout)
    assert j["user"] == "ada" and len(j["token"]) >= 43
    assert _run("token", "revoke", root, str(rec["id"])).exit_code == 0
    with Repository.open(root) as repo:
        assert repo.access.principal_for_token(token) is None
        assert repo.access.principal_for_token(j["token"]) is not None
    r = _run("token", "revoke", root, str(rec["id"]))
    assert isinstance(r.exception, NotFound)


def test_dataset_owner_public_and_share(root: Path) -> None:
    for name in ("ada", "bob"):
        _run("user", "add", root, name, "--password-stdin", input="long-enough\n")
    r = _run(
        "dataset", "add", root, "screen", "--where", 'name == "img1"', "--owner", "ada", "--json"
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert (got["owner"], got["visibility"], got["images"]) == ("ada", "private", 1)
    r = _run("dataset", "add", root, "screen", "--public")
    assert r.exit_code == 0, r.output
    r = _run("dataset", "share", root, "screen", "bob", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["members"] == ["bob"]
    r = _run("dataset", "ls", root, "--json")
    [ds] = json.loads(r.stdout)
    assert (ds["owner"], ds["visibility"], ds["members"]) == ("ada", "public", ["bob"])
    assert "public" in _run("dataset", "ls", root).stdout
    r = _run("dataset", "share", root, "screen", "bob", "--remove", "--json")
    assert json.loads(r.stdout)["members"] == []


def test_dataset_access_bad_input(root: Path) -> None:
    _run("user", "add", root, "ada", "--password-stdin", input="long-enough\n")
    r = _run("dataset", "add", root, "screen", "--where", "", "--owner", "ghost")
    assert isinstance(r.exception, NotFound) and "no user named 'ghost'" in str(r.exception)
    with Repository.open(root) as repo:  # nothing changed
        assert repo.annotations.datasets() == [] and repo.access.datasets() == []
    r = _run("dataset", "share", root, "nope", "ada")
    assert isinstance(r.exception, NotFound) and "no dataset named 'nope'" in str(r.exception)
    _run("dataset", "add", root, "screen", "--where", "")
    r = _run("dataset", "share", root, "screen", "ghost")
    assert isinstance(r.exception, NotFound) and "no user named 'ghost'" in str(r.exception)
    r = _run("dataset", "add", root, "nope", "--owner", "ada")
    assert isinstance(r.exception, NotFound) and "no dataset named 'nope'" in str(r.exception)


def test_user_passwd(root: Path) -> None:
    _run("user", "add", root, "ada", "--password-stdin", input="long-enough\n")
    with Repository.open(root) as repo:
        sid, _ = repo.access.create_session(repo.access.verify_password("ada", "long-enough"))
    r = _run("user", "passwd", root, "ada", "--password-stdin", input="brand-new-pw\n")
    assert r.exit_code == 0, r.output
    with Repository.open(root) as repo:
        assert repo.access.verify_password("ada", "brand-new-pw").name == "ada"
        assert repo.access.principal_for_session(sid).is_anonymous
    r = _run("user", "passwd", root, "ada", "--password-stdin", input="short\n")
    assert isinstance(r.exception, InvalidInput)
    r = _run("user", "passwd", root, "ghost", "--password-stdin", input="long-enough\n")
    assert isinstance(r.exception, NotFound)
