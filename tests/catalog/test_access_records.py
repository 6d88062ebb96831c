"""Access control in the catalog (issue 14 part 4): users, tokens, sessions, dataset records,
and the SQL form of the policy agreeing with the pure policy (``may_see_image``) for every kind
of caller and dataset, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from quantscope.catalog import (
    DatasetAccess,
    ImageRegistration,
    Principal,
    Repository,
    may_read,
    may_see_image,
    may_write,
)
from quantscope.catalog import _schema as S
from quantscope.catalog import _schema_access as A
from quantscope.errors import InvalidInput, NotAuthenticated, NotFound
from quantscope.model import Channel, Image

PW = "correct horse"

# image -> datasets it belongs to
MEMBERSHIP = {
    "pub": ["open"],
    "priv": ["lab"],
    "norec": ["legacy"],  # a dataset without access record: admins only
    "pubpriv": ["open", "lab"],  # in a public and a private dataset
    "privnorec": ["lab", "legacy"],
    "ownerless": ["orphan"],  # a record whose owner was removed
    "none": [],  # in no dataset: admins only
}


def _image(key: str) -> Image:
    ident = hashlib.md5(key.encode()).hexdigest()
    return Image(
        id=ident,
        name=key,
        shape=(1, 1, 1, 8, 8),
        dtype="uint16",
        channels=(Channel(index=0, name="DAPI"),),
        store_path=f"images/{ident}.ome.zarr",
        levels=1,
        bytes_stored=1,
    )


IDS = {k: _image(k).id for k in MEMBERSHIP}


@pytest.fixture
def world(tmp_path: Path, catalog_url: str | None) -> Repository:
    repo = Repository.init(tmp_path / "r", catalog_url)
    repo.images.register_many([ImageRegistration(_image(k), {}, []) for k in MEMBERSHIP])
    for key, names in MEMBERSHIP.items():
        for name in names:
            repo.annotations.add_to_dataset(name, [IDS[key]])
    for name, admin in (("owner", False), ("member", False), ("other", False), ("boss", True)):
        repo.access.add_user(name, PW, admin=admin)
    repo.access.add_user("gone", PW)
    repo.access.set_owner("open", "owner")
    repo.access.set_visibility("open", "public")
    repo.access.set_owner("lab", "owner")
    repo.access.share("lab", "member")
    repo.access.set_owner("orphan", "gone")
    repo.access.share("orphan", "member")
    repo.access.remove_user("gone")
    yield repo
    repo.close()


def _principals(repo: Repository) -> dict[str, Principal]:
    out = {n: repo.access.verify_password(n, PW) for n in ("owner", "member", "other", "boss")}
    out["anonymous"] = Principal.anonymous()
    out["local"] = Principal.local()
    return out


EXPECTED = {
    "anonymous": {"pub", "pubpriv"},
    "other": {"pub", "pubpriv"},
    "member": {"pub", "priv", "pubpriv", "privnorec", "ownerless"},
    "owner": {"pub", "priv", "pubpriv", "privnorec"},
    "boss": set(MEMBERSHIP),
    "local": set(MEMBERSHIP),
}


def test_sql_clause_agrees_with_the_pure_policy(world: Repository) -> None:
    repo = world
    records = repo.access.datasets_of_images(list(IDS.values()))
    assert records[IDS["none"]] == []
    assert records[IDS["norec"]] == [DatasetAccess("legacy")]
    assert records[IDS["ownerless"]] == [DatasetAccess("orphan", None, frozenset({"member"}))]
    assert {d.name: d.visibility for d in records[IDS["pubpriv"]]} == {
        "lab": "private",
        "open": "public",
    }
    for who_name, who in _principals(repo).items():
        pure = {k for k, i in IDS.items() if may_see_image(who, records[i])}
        clause = repo.access.visible_images_clause(who)
        q = sa.select(S.images.c.id)
        if clause is not None:
            q = q.where(clause)
        with repo.engine.connect() as conn:
            sql = {k for k, i in IDS.items() if i in set(conn.execute(q).scalars())}
        assert pure == sql == EXPECTED[who_name], who_name
        # the search goes through the same clause: it never counts what is hidden
        assert (clause is None) == who.is_admin


def test_query_page_with_the_clause_counts_only_visible(world: Repository) -> None:
    for who_name, who in _principals(world).items():
        ids, total = world.query.page("", limit=2, only=world.access.visible_images_clause(who))
        assert total == len(EXPECTED[who_name]), who_name
        assert {k for k, i in IDS.items() if i in ids} <= EXPECTED[who_name]


def test_write_policy() -> None:
    ds = DatasetAccess("d", "ada", frozenset({"bob"}), "public")
    assert may_write(Principal("ada", 1), ds) and not may_write(Principal("bob", 2), ds)
    assert may_read(Principal("bob", 2), ds) and may_read(Principal.anonymous(), ds)
    assert not may_write(Principal.anonymous(), ds)
    assert may_write(Principal("root", 3, is_admin=True), ds)
    assert not may_read(Principal.anonymous(), DatasetAccess("d", "ada"))


def test_passwords_are_argon2_hashes(repo: Repository) -> None:
    repo.access.add_user("ada", "s3cret-enough", admin=True)
    with repo.engine.connect() as conn:
        stored = conn.execute(sa.select(A.users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "s3cret-enough" not in stored
    from argon2 import PasswordHasher

    assert PasswordHasher().verify(stored, "s3cret-enough")
    who = repo.access.verify_password("ada", "s3cret-enough")
    assert (who.name, who.is_admin, who.user_id is not None) == ("ada", True, True)
    [rec] = repo.access.users()
    assert rec.to_dict()["name"] == "ada" and rec.to_dict()["admin"] is True
    assert "password" not in str(rec.to_dict())


def test_unknown_user_and_wrong_password_get_the_same_answer(repo: Repository) -> None:
    repo.access.add_user("ada", "s3cret-enough")
    messages = set()
    for name, pw in (("ada", "wrong-password"), ("nobody", "s3cret-enough"), ("ada", "")):
        with pytest.raises(NotAuthenticated) as e:
            repo.access.verify_password(name, pw)
        messages.add(str(e.value))
    assert len(messages) == 1


def test_bad_user_input(repo: Repository) -> None:
    assert not repo.access.has_users()
    with pytest.raises(InvalidInput, match="at least 8"):
        repo.access.add_user("ada", "short")
    for bad in ("", "has space", "x" * 65, "-dash", "local", "a/b"):
        with pytest.raises(InvalidInput, match="user name"):
            repo.access.add_user(bad, "long-enough")
    repo.access.add_user("ada", "long-enough")
    assert repo.access.has_users()
    with pytest.raises(InvalidInput, match="already exists"):
        repo.access.add_user("ada", "other-password")
    with pytest.raises(NotFound, match="no user named 'bob'"):
        repo.access.remove_user("bob")
    with pytest.raises(NotFound, match="no user named 'bob'"):
        repo.access.create_token("bob")
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        repo.access.share("nope", "ada")
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        repo.access.dataset_access("nope")
    repo.access.set_owner("new", "ada")
    with pytest.raises(NotFound, match="no user named 'bob'"):
        repo.access.share("new", "bob")
    with pytest.raises(InvalidInput, match="visibility"):
        repo.access.set_visibility("new", "world")


def test_tokens_are_stored_hashed_and_stop_with_their_user(repo: Repository) -> None:
    repo.access.add_user("ada", "long-enough")
    token = repo.access.create_token("ada", "laptop")
    assert len(token) >= 43
    with repo.engine.connect() as conn:
        stored = conn.execute(sa.select(A.user_tokens.c.token_sha256)).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored
    who = repo.access.principal_for_token(token)
    assert who is not None and who.name == "ada"
    assert repo.access.principal_for_token(token + "x") is None
    assert repo.access.principal_for_token("") is None
    [rec] = repo.access.tokens("ada")
    assert rec.label == "laptop" and rec.last_used_at is not None
    assert token not in str(rec.to_dict())
    repo.access.revoke_token(rec.id)
    assert repo.access.principal_for_token(token) is None
    again = repo.access.create_token("ada")
    sid, _ = repo.access.create_session(repo.access.verify_password("ada", "long-enough"))
    assert repo.access.principal_for_session(sid).name == "ada"
    repo.access.remove_user("ada")
    assert repo.access.principal_for_token(again) is None
    assert repo.access.principal_for_session(sid).is_anonymous


def test_sessions_hashed_expire_and_end(repo: Repository) -> None:
    repo.access.add_user("ada", "long-enough")
    who = repo.access.verify_password("ada", "long-enough")
    sid, csrf = repo.access.create_session(who)
    assert sid != csrf
    with repo.engine.connect() as conn:
        stored = conn.execute(sa.select(A.user_sessions.c.id_sha256)).scalar_one()
    assert stored == hashlib.sha256(sid.encode()).hexdigest()
    found = repo.access.session(sid)
    assert found is not None and found[1] == csrf and found[0].name == "ada"
    old, _ = repo.access.create_session(who, ttl=timedelta(seconds=-1))
    assert repo.access.principal_for_session(old).is_anonymous
    repo.access.end_session(sid)
    assert repo.access.principal_for_session(sid).is_anonymous
    with pytest.raises(InvalidInput):
        repo.access.create_session(Principal.local())


def test_removed_owner_leaves_the_dataset_to_admins(world: Repository) -> None:
    assert world.access.dataset_access("orphan") == DatasetAccess(
        "orphan", None, frozenset({"member"})
    )
    lab = world.access.unshare("lab", "member")
    assert lab.members == frozenset() and lab.owner == "owner"
    names = [d.name for d in world.access.datasets()]
    assert names == ["lab", "legacy", "open", "orphan"]


def test_an_unknown_user_costs_one_argon2_verification_too(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same work for an unknown name as for a wrong password: timing does not tell which
    names exist."""
    from argon2 import PasswordHasher

    repo.access.add_user("ada", "long-enough")
    calls: list[str] = []
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, digest: str, password: str) -> bool:
        calls.append(digest[:10])
        return real(self, digest, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    for name in ("ada", "nobody"):
        with pytest.raises(NotAuthenticated):
            repo.access.verify_password(name, "wrong-password")
    assert calls == ["$argon2id$", "$argon2id$"]
