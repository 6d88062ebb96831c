"""``repo.access``: users, API tokens, portal sessions and the access records of datasets.

The rule of who may see what is :mod:`._access` (pure functions over records);
:meth:`AccessRecords.visible_images_clause` states the same rule in SQL for searches, and the
tests check that both agree for every kind of caller and dataset.

Credentials are never stored in plaintext: passwords as argon2id hashes (argon2-cffi's
``PasswordHasher``), API tokens and session ids as SHA-256 digests of 32 random bytes
(``secrets.token_urlsafe``); a token's plaintext is returned once, by :meth:`create_token`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import InvalidInput, NotAuthenticated, NotFound
from . import _schema as S
from . import _schema_access as A
from ._access import VISIBILITIES, DatasetAccess, Principal, Visibility
from ._annotations import DATASET_KEY, _dataset_name
from ._part import Part

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = [
    "PASSWORD_MIN",
    "SESSION_TTL",
    "AccessRecords",
    "TokenRecord",
    "UserRecord",
    "check_user_name",
]

PASSWORD_MIN = 8
SESSION_TTL = timedelta(hours=12)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_RESERVED = frozenset({"local", "anonymous"})
_CHUNK = 500


@dataclass(frozen=True)
class UserRecord:
    """A user of the repository (never its password hash)."""

    id: int
    name: str
    is_admin: bool
    created_at: datetime
    tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "admin": self.is_admin,
            "created_at": self.created_at.isoformat(),
            "tokens": self.tokens,
        }


@dataclass(frozen=True)
class TokenRecord:
    """An API token of a user: its label and dates. ``token`` (the plaintext) is set only on
    the record :meth:`AccessRecords.issue_token` returns, once; the catalog never has it."""

    id: int
    user: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "last_used_at": None if self.last_used_at is None else self.last_used_at.isoformat(),
        }
        if self.token is not None:
            out["token"] = self.token
        return out


def _utc(value: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite returns naive ones)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_user_name(name: str) -> str:
    """``name`` if it can name a user; otherwise :class:`InvalidInput` saying why."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"user name {str(name)[:70]!r}: expected 1-64 characters, letters, digits and "
            "'.', '_', '@', '-', starting with a letter or digit (e.g. ada or ada.l@lab)"
        )
    if name.lower() in _RESERVED:
        raise InvalidInput(f"user name {name!r} is reserved; choose another")
    return name


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise InvalidInput(
            f"password: at least {PASSWORD_MIN} characters, got "
            f"{len(password) if isinstance(password, str) else 0}"
        )
    if len(password) > 1024:
        raise InvalidInput("password: at most 1024 characters")
    return password


def _check_visibility(visibility: str) -> Visibility:
    for v in VISIBILITIES:
        if visibility == v:
            return v
    raise InvalidInput(f"visibility {str(visibility)[:40]!r}: expected one of {list(VISIBILITIES)}")


class AccessRecords(Part):
    """``repo.access``: users, tokens, sessions and who may see which dataset."""

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, password: str, *, admin: bool = False) -> UserRecord:
        """Add user ``name`` with ``password`` (stored as an argon2id hash).

        Raises
        ------
        InvalidInput
            A malformed or reserved name, a password shorter than 8 characters, or a name
            that is already a user.
        """
        check_user_name(name)
        digest = _hasher().hash(_check_password(password))
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if self._user_row(conn, name) is not None:
                raise InvalidInput(f"user {name!r} already exists (see `quantscope user ls`)")
            key = conn.execute(
                A.users.insert().values(
                    name=name, password_hash=digest, is_admin=bool(admin), created_at=now
                )
            ).inserted_primary_key
            uid = key[0] if key is not None else self._user_id(conn, name)
        return UserRecord(int(uid), name, bool(admin), now)

    def users(self) -> list[UserRecord]:
        """Every user, by name (with their number of API tokens)."""
        u, t = A.users.c, A.user_tokens.c
        n = sa.select(sa.func.count()).where(t.user_id == u.id).scalar_subquery()
        q = sa.select(u.id, u.name, u.is_admin, u.created_at, n).order_by(u.name)
        with self.engine.connect() as conn:
            return [
                UserRecord(int(i), str(nm), bool(adm), _utc(c), int(k or 0))
                for i, nm, adm, c, k in conn.execute(q)
            ]

    def has_users(self) -> bool:
        """Whether the repository has any user (else it is served in single-user mode)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(A.users.c.id).limit(1)).first() is not None

    def remove_user(self, name: str) -> UserRecord:
        """Remove user ``name``: their tokens, sessions and memberships go with them; the
        datasets they owned are owned by nobody (admins only) until given a new owner.
        Returns the removed user's record.

        Raises
        ------
        NotFound
            No such user.
        """
        found = [u for u in self.users() if u.name == name]
        with self.engine.begin() as conn:
            uid = self._user_id(conn, name)
            # (explicitly: SQLite enforces ON DELETE only with foreign keys on)
            conn.execute(A.user_tokens.delete().where(A.user_tokens.c.user_id == uid))
            conn.execute(A.user_sessions.delete().where(A.user_sessions.c.user_id == uid))
            conn.execute(A.dataset_members.delete().where(A.dataset_members.c.user_id == uid))
            conn.execute(
                A.dataset_access.update()
                .where(A.dataset_access.c.owner_id == uid)
                .values(owner_id=None)
            )
            conn.execute(A.users.delete().where(A.users.c.id == uid))
        return found[0]

    def set_password(self, name: str, password: str) -> None:
        """Give user ``name`` a new password; their portal sessions end."""
        digest = _hasher().hash(_check_password(password))
        with self.engine.begin() as conn:
            uid = self._user_id(conn, name)
            conn.execute(A.users.update().where(A.users.c.id == uid).values(password_hash=digest))
            conn.execute(A.user_sessions.delete().where(A.user_sessions.c.user_id == uid))

    def verify_password(self, name: str, password: str) -> Principal:
        """The principal of user ``name`` if ``password`` is theirs.

        An unknown user costs the same argon2 verification as a wrong password, and both get
        the same message.

        Raises
        ------
        NotAuthenticated
            Unknown user or wrong password.
        """
        from argon2.exceptions import InvalidHashError, VerificationError

        ph = _hasher()
        with self.engine.connect() as conn:
            row = self._user_row(conn, name) if isinstance(name, str) else None
        stored = row.password_hash if row is not None else _dummy_hash()
        try:
            ph.verify(stored, password if isinstance(password, str) else "")
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            raise NotAuthenticated("unknown user or wrong password")
        if ph.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(
                    A.users.update()
                    .where(A.users.c.id == row.id)
                    .values(password_hash=ph.hash(password))
                )
        return Principal(name=row.name, user_id=int(row.id), is_admin=bool(row.is_admin))

    def principal(self, name: str) -> Principal:
        """The principal of user ``name`` (for the command line, which acts as its owner).

        Raises
        ------
        NotFound
            No such user.
        """
        with self.engine.connect() as conn:
            row = self._user_row(conn, name)
        if row is None:
            raise NotFound(f"no user named {name!r} (see `quantscope user ls`)")
        return Principal(name=row.name, user_id=int(row.id), is_admin=bool(row.is_admin))

    # ------------------------------------------------------------------ tokens
    def create_token(self, user: str, label: str = "") -> str:
        """A new API token of ``user`` (``Authorization: Bearer TOKEN``). The plaintext is
        returned here only; the catalog keeps its SHA-256. (:meth:`issue_token` returns its
        record too.)

        Raises
        ------
        NotFound
            No such user.
        InvalidInput
            A label longer than 255 characters.
        """
        token = self.issue_token(user, label).token
        assert token is not None
        return token

    def issue_token(self, user: str, label: str = "") -> TokenRecord:
        """A new API token of ``user``: its record with the plaintext ``token`` (shown once;
        the catalog keeps its SHA-256).

        Raises
        ------
        NotFound
            No such user.
        InvalidInput
            A label longer than 255 characters.
        """
        label = (label or "").strip()
        if len(label) > 255:
            raise InvalidInput(f"token label: at most 255 characters, got {len(label)}")
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            uid = self._user_id(conn, user)
            key = conn.execute(
                A.user_tokens.insert().values(
                    user_id=uid, label=label, token_sha256=_sha256(token), created_at=now
                )
            ).inserted_primary_key
            tid = key[0] if key is not None else 0
        return TokenRecord(int(tid), user, label, now, None, token=token)

    def tokens(self, user: str | None = None) -> list[TokenRecord]:
        """The API tokens (of ``user``, or of everyone), oldest first."""
        t, u = A.user_tokens.c, A.users.c
        q = (
            sa.select(t.id, u.name, t.label, t.created_at, t.last_used_at)
            .join_from(A.user_tokens, A.users, t.user_id == u.id)
            .order_by(t.id)
        )
        with self.engine.connect() as conn:
            if user is not None:
                q = q.where(t.user_id == self._user_id(conn, user))
            return [
                TokenRecord(int(i), str(n), str(lb), _utc(c), None if lu is None else _utc(lu))
                for i, n, lb, c, lu in conn.execute(q)
            ]

    def revoke_token(self, token_id: int) -> TokenRecord:
        """Revoke API token ``token_id`` (see :meth:`tokens`); it stops working at once.
        Returns the record of the revoked token.

        Raises
        ------
        NotFound
            No such token.
        """
        found = [t for t in self.tokens() if t.id == token_id]
        with self.engine.begin() as conn:
            n = conn.execute(A.user_tokens.delete().where(A.user_tokens.c.id == token_id))
            if not n.rowcount or not found:
                raise NotFound(f"no token with id {token_id} (see `quantscope token ls`)")
        return found[0]

    def principal_for_token(self, token: str) -> Principal | None:
        """The user whose API token ``token`` is (``None``: no such token, or revoked)."""
        if not isinstance(token, str) or not token or len(token) > 256:
            return None
        t, u = A.user_tokens.c, A.users.c
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(t.id, t.last_used_at, u.id, u.name, u.is_admin)
                .join_from(A.user_tokens, A.users, t.user_id == u.id)
                .where(t.token_sha256 == _sha256(token))
            ).first()
            if row is None:
                return None
            if row[1] is None or now - _utc(row[1]) > timedelta(minutes=1):
                conn.execute(A.user_tokens.update().where(t.id == row[0]).values(last_used_at=now))
        return Principal(name=str(row[3]), user_id=int(row[2]), is_admin=bool(row[4]))

    # ------------------------------------------------------------------ sessions
    def create_session(self, who: Principal, *, ttl: timedelta = SESSION_TTL) -> tuple[str, str]:
        """A portal session of user ``who``: ``(session id, CSRF token)``. The session id is
        the cookie's value (the catalog keeps its SHA-256); it expires after ``ttl``.

        Raises
        ------
        InvalidInput
            ``who`` is not a user of the repository (anonymous, or the local user).
        """
        if who.user_id is None:
            raise InvalidInput("only a user of the repository can have a session")
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                A.user_sessions.delete().where(A.user_sessions.c.expires_at < now)
            )  # expired ones
            conn.execute(
                A.user_sessions.insert().values(
                    id_sha256=_sha256(sid),
                    user_id=who.user_id,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return sid, csrf

    def session(self, session_id: str) -> tuple[Principal, str] | None:
        """``(user, CSRF token)`` of a live session; ``None`` when unknown or expired."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > 256:
            return None
        s, u = A.user_sessions.c, A.users.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(s.expires_at, s.csrf, u.id, u.name, u.is_admin)
                .join_from(A.user_sessions, A.users, s.user_id == u.id)
                .where(s.id_sha256 == _sha256(session_id))
            ).first()
        if row is None or _utc(row[0]) <= datetime.now(UTC):
            return None
        return Principal(name=str(row[3]), user_id=int(row[2]), is_admin=bool(row[4])), str(row[1])

    def principal_for_session(self, session_id: str) -> Principal:
        """The user of a live session; anonymous when unknown or expired."""
        found = self.session(session_id)
        return Principal.anonymous() if found is None else found[0]

    def end_session(self, session_id: str) -> None:
        """End a session (sign out); an unknown one is ignored."""
        if isinstance(session_id, str) and session_id:
            with self.engine.begin() as conn:
                conn.execute(
                    A.user_sessions.delete().where(
                        A.user_sessions.c.id_sha256 == _sha256(session_id)
                    )
                )

    # ------------------------------------------------------------------ datasets
    def _dataset_exists(self, conn: Connection, name: str) -> bool:
        a = S.annotations.c
        member = sa.and_(a.target_kind == "image", a.key == DATASET_KEY, a.value == name)
        own = sa.and_(a.target_kind == "dataset", a.target_id == name)
        if conn.execute(sa.select(a.id).where(sa.or_(member, own)).limit(1)).first():
            return True
        d = A.dataset_access.c
        return conn.execute(sa.select(d.name).where(d.name == name)).first() is not None

    def _records(self, conn: Connection, names: Iterable[str]) -> dict[str, DatasetAccess]:
        """Access records of ``names`` (defaults where a dataset has none)."""
        wanted = sorted(set(names))
        d, m, u = A.dataset_access.c, A.dataset_members.c, A.users.c
        out = {n: DatasetAccess(n) for n in wanted}
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i : i + _CHUNK]
            members: dict[str, set[str]] = {}
            for ds, who in conn.execute(
                sa.select(m.dataset, u.name)
                .join_from(A.dataset_members, A.users, m.user_id == u.id)
                .where(m.dataset.in_(chunk))
            ):
                members.setdefault(ds, set()).add(who)
            for name, owner, vis in conn.execute(
                sa.select(d.name, u.name, d.visibility)
                .join_from(A.dataset_access, A.users, d.owner_id == u.id, isouter=True)
                .where(d.name.in_(chunk))
            ):
                out[name] = DatasetAccess(
                    name, owner, frozenset(members.get(name, ())), _check_visibility(vis)
                )
        return out

    def dataset_access(self, name: str) -> DatasetAccess:
        """The access record of dataset ``name`` (private and owned by nobody when it has
        none).

        Raises
        ------
        NotFound
            No dataset ``name`` (no member, annotation or access record).
        """
        name = _dataset_name(name)
        with self.engine.connect() as conn:
            if not self._dataset_exists(conn, name):
                raise NotFound(f"no dataset named {name!r} (see `quantscope dataset ls`)")
            return self._records(conn, [name])[name]

    def datasets(self) -> list[DatasetAccess]:
        """Access records of every dataset (those with members, annotations or a record)."""
        a, d = S.annotations.c, A.dataset_access.c
        with self.engine.connect() as conn:
            names = set(
                conn.execute(
                    sa.select(a.value)
                    .where(a.target_kind == "image", a.key == DATASET_KEY)
                    .distinct()
                ).scalars()
            )
            names |= set(
                conn.execute(sa.select(a.target_id).where(a.target_kind == "dataset")).scalars()
            )
            names |= set(conn.execute(sa.select(d.name)).scalars())
            recs = self._records(conn, names)
        return [recs[n] for n in sorted(recs)]

    def _ensure_record(self, conn: Connection, name: str) -> None:
        d = A.dataset_access.c
        if conn.execute(sa.select(d.name).where(d.name == name)).first() is None:
            conn.execute(
                A.dataset_access.insert().values(
                    name=name, owner_id=None, visibility="private", created_at=datetime.now(UTC)
                )
            )

    def set_owner(self, name: str, user: str | None) -> DatasetAccess:
        """Make ``user`` the owner of dataset ``name`` (``None``: nobody, admins only). A name
        that is not a dataset yet gets an (empty) access record: the dataset exists from now.

        Raises
        ------
        NotFound
            No such user.
        """
        name = _dataset_name(name)
        with self.engine.begin() as conn:
            uid = None if user is None else self._user_id(conn, user)
            self._ensure_record(conn, name)
            conn.execute(
                A.dataset_access.update()
                .where(A.dataset_access.c.name == name)
                .values(owner_id=uid)
            )
            return self._records(conn, [name])[name]

    def share(self, name: str, user: str) -> DatasetAccess:
        """Let ``user`` read private dataset ``name``.

        Raises
        ------
        NotFound
            No such dataset or user.
        """
        name = _dataset_name(name)
        with self.engine.begin() as conn:
            uid = self._user_id(conn, user)
            self._require_dataset(conn, name)
            self._ensure_record(conn, name)
            m = A.dataset_members.c
            if (
                conn.execute(
                    sa.select(m.user_id).where(m.dataset == name, m.user_id == uid)
                ).first()
                is None
            ):
                conn.execute(A.dataset_members.insert().values(dataset=name, user_id=uid))
            return self._records(conn, [name])[name]

    def unshare(self, name: str, user: str) -> DatasetAccess:
        """Stop sharing dataset ``name`` with ``user``.

        Raises
        ------
        NotFound
            No such dataset or user.
        """
        name = _dataset_name(name)
        with self.engine.begin() as conn:
            uid = self._user_id(conn, user)
            self._require_dataset(conn, name)
            m = A.dataset_members.c
            conn.execute(A.dataset_members.delete().where(m.dataset == name, m.user_id == uid))
            return self._records(conn, [name])[name]

    def set_visibility(self, name: str, visibility: str) -> DatasetAccess:
        """Make dataset ``name`` ``"public"`` (everyone, anonymous callers included) or
        ``"private"``.

        Raises
        ------
        InvalidInput
            Another visibility.
        NotFound
            No such dataset.
        """
        vis = _check_visibility(visibility)
        name = _dataset_name(name)
        with self.engine.begin() as conn:
            self._require_dataset(conn, name)
            self._ensure_record(conn, name)
            conn.execute(
                A.dataset_access.update()
                .where(A.dataset_access.c.name == name)
                .values(visibility=vis)
            )
            return self._records(conn, [name])[name]

    def datasets_of_images(self, image_ids: Sequence[str]) -> dict[str, list[DatasetAccess]]:
        """For each of ``image_ids``, the access records of the datasets it belongs to (an
        empty list for an image in no dataset)."""
        ids = list(dict.fromkeys(image_ids))
        a = S.annotations.c
        names_of: dict[str, list[str]] = {i: [] for i in ids}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), _CHUNK):
                for image_id, ds in conn.execute(
                    sa.select(a.target_id, a.value).where(
                        a.target_kind == "image",
                        a.key == DATASET_KEY,
                        a.target_id.in_(ids[i : i + _CHUNK]),
                    )
                ):
                    names_of[image_id].append(ds)
            recs = self._records(conn, {n for ns in names_of.values() for n in ns})
        return {i: [recs[n] for n in sorted(ns)] for i, ns in names_of.items()}

    def visible_images_clause(self, who: Principal) -> sa.ColumnElement[bool] | None:
        """The condition on ``images.id`` that keeps exactly the images ``who`` may see
        (:func:`~quantscope.catalog.may_see_image` in SQL); ``None`` for admins (everything).
        """
        if who.is_admin:
            return None
        a, d, m, u = S.annotations.c, A.dataset_access.c, A.dataset_members.c, A.users.c
        readable = d.visibility == "public"
        if not who.is_anonymous:
            owner = sa.select(u.id).where(u.name == who.name).scalar_subquery()
            member = sa.exists().where(m.dataset == d.name, m.user_id == u.id, u.name == who.name)
            readable = sa.or_(readable, d.owner_id == owner, member)
        images_of = (
            sa.select(a.target_id)
            .join_from(S.annotations, A.dataset_access, d.name == a.value)
            .where(a.target_kind == "image", a.key == DATASET_KEY, readable)
        )
        return S.images.c.id.in_(images_of)

    # ------------------------------------------------------------------ helpers
    def _require_dataset(self, conn: Connection, name: str) -> None:
        if not self._dataset_exists(conn, name):
            raise NotFound(f"no dataset named {name!r} (see `quantscope dataset ls`)")

    @staticmethod
    def _user_row(conn: Connection, name: str) -> Any:
        u = A.users.c
        return conn.execute(
            sa.select(u.id, u.name, u.password_hash, u.is_admin).where(u.name == name)
        ).first()

    def _user_id(self, conn: Connection, name: str) -> int:
        row = self._user_row(conn, name) if isinstance(name, str) else None
        if row is None:
            raise NotFound(f"no user named {str(name)[:70]!r} (see `quantscope user ls`)")
        return int(row.id)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """An argon2 hash no password matches, verified for unknown users (same cost)."""
    if not _DUMMY:
        _DUMMY.append(_hasher().hash(secrets.token_urlsafe(16)))
    return _DUMMY[0]
