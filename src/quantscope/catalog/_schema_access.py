"""Catalog tables of access control (migration 0008); declared on the shared ``metadata`` of
``_schema_base``.

- ``users``: a user of the repository: unique name, argon2 password hash, admin flag;
- ``user_tokens``: API tokens of a user (``quantscope token create``): the SHA-256 of the token
  (the plaintext is shown once and never stored), a label, when it was made and last used;
- ``user_sessions``: sign-ins of the web portal: the SHA-256 of the session id (the cookie),
  the CSRF token of its forms, when it was made and when it expires;
- ``dataset_access``: the access record of a dataset (datasets are image annotations): its
  owner and visibility (``private`` | ``public``); a dataset without a record is private and
  owned by nobody (admins only);
- ``dataset_members``: the users a private dataset is shared with.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from ._schema_base import metadata

__all__ = ["dataset_access", "dataset_members", "user_sessions", "user_tokens", "users"]

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # argon2id, PHC string
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

user_tokens = Table(
    "user_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(255), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Index(None, "user_id"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index(None, "user_id"),
)

dataset_access = Table(
    "dataset_access",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("visibility", String(8), nullable=False),  # private | public
    Column("created_at", DateTime(timezone=True), nullable=False),
)

dataset_members = Table(
    "dataset_members",
    metadata,
    Column(
        "dataset",
        String(255),
        ForeignKey("dataset_access.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "user_id"),
)
