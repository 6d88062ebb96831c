"""``quantscope user`` and ``quantscope token``: the users of a repository and their API tokens.

A thin layer over ``repo.access``. Whoever can run these commands on the repository folder is its
owner: they add users, make admins and create tokens. A repository without users is served in
single-user mode (127.0.0.1 only); with users, ``quantscope serve --host 0.0.0.0`` works and
every caller signs in.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ._common import JsonOpt, RepoArg, _console, _emit_json, _esc, _open

user_app = typer.Typer(
    name="user",
    help="Users of the repository (sign in to the web portal; own and share datasets).",
    no_args_is_help=True,
)
token_app = typer.Typer(
    name="token",
    help="API tokens (Authorization: Bearer TOKEN) for scripts and other tools.",
    no_args_is_help=True,
)

_NameArg = Annotated[str, typer.Argument(help="User name.")]


def register(app: typer.Typer) -> None:
    """Attach the ``user`` and ``token`` sub-apps to the ``quantscope`` app."""
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("add")
def user_add(
    repo: RepoArg,
    name: _NameArg,
    admin: Annotated[
        bool, typer.Option("--admin", help="An admin: sees and changes every dataset.")
    ] = False,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input (else it is asked "
            "twice, hidden).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a user (password: at least 8 characters, stored as an argon2 hash)."""
    with _open(repo) as r:
        from ..catalog import check_user_name

        check_user_name(name)  # before asking for a password
        password = _read_password(password_stdin)
        rec = r.access.add_user(name, password, admin=admin)
    if as_json:
        _emit_json(rec.to_dict())
        return
    role = "admin" if rec.is_admin else "user"
    _console().print(f"{_esc(rec.name)}: added ({role})")


@user_app.command("passwd")
def user_passwd(
    repo: RepoArg,
    name: _NameArg,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the new password from the first line of stdin."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Give a user a new password; their portal sessions end (API tokens stay valid)."""
    with _open(repo) as r:
        rec = r.access.principal(name)  # an unknown user: before asking for a password
        r.access.set_password(name, _read_password(password_stdin))
    if as_json:
        _emit_json(rec.to_dict())
        return
    _console().print(f"{_esc(name)}: password changed")


@user_app.command("ls")
def user_ls(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """List the users: name, admin or not, when added, how many API tokens."""
    with _open(repo) as r:
        users = r.access.users()
    if as_json:
        from ..catalog import UserRecord

        _emit_json(list(map(UserRecord.to_dict, users)))
        return
    if not users:
        _console().print("no users: the repository is served in single-user mode (127.0.0.1)")
        return
    from rich.table import Table

    t = Table()
    for col in ("name", "admin", "added", "tokens"):
        t.add_column(col)
    for u in users:
        t.add_row(
            _esc(u.name),
            "yes" if u.is_admin else "",
            u.created_at.strftime("%Y-%m-%d %H:%M"),
            str(u.tokens),
        )
    _console().print(t)


@user_app.command("rm")
def user_rm(repo: RepoArg, name: _NameArg, as_json: JsonOpt = False) -> None:
    """Remove a user: their tokens and sessions stop working at once; datasets they owned are
    left to the admins (give them a new owner with `quantscope dataset add --owner`)."""
    with _open(repo) as r:
        rec = r.access.remove_user(name)
    if as_json:
        _emit_json(rec.to_dict())
        return
    _console().print(f"{_esc(name)}: removed")


@token_app.command("create")
def token_create(
    repo: RepoArg,
    name: _NameArg,
    label: Annotated[
        str, typer.Option("--label", help="What the token is for (e.g. 'napari laptop').")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an API token for a user and print it, once (the repository keeps only its
    SHA-256). Send it as the header `Authorization: Bearer TOKEN`."""
    with _open(repo) as r:
        rec = r.access.issue_token(name, label)
    if as_json:
        _emit_json(rec.to_dict())
        return
    sys.stdout.write(f"{rec.token}\n")
    _console(stderr=True).print(
        "this token is shown once; keep it secret (anyone with it acts as "
        f"{_esc(name)}); revoke it with `quantscope token revoke`"
    )


@token_app.command("ls")
def token_ls(
    repo: RepoArg,
    name: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List API tokens (id, user, label, dates; never the tokens themselves)."""
    with _open(repo) as r:
        tokens = r.access.tokens(name)
    if as_json:
        from ..catalog import TokenRecord

        _emit_json(list(map(TokenRecord.to_dict, tokens)))
        return
    from rich.table import Table

    t = Table()
    for col in ("id", "user", "label", "created", "last used"):
        t.add_column(col)
    for tok in tokens:
        used = tok.last_used_at.strftime("%Y-%m-%d %H:%M") if tok.last_used_at else "never"
        t.add_row(
            str(tok.id),
            _esc(tok.user),
            _esc(tok.label),
            tok.created_at.strftime("%Y-%m-%d %H:%M"),
            used,
        )
    _console().print(t)


@token_app.command("revoke")
def token_revoke(
    repo: RepoArg,
    token_id: Annotated[int, typer.Argument(help="Token id (see `quantscope token ls`).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API token: it stops working at once."""
    with _open(repo) as r:
        rec = r.access.revoke_token(token_id)
    if as_json:
        _emit_json(rec.to_dict())
        return
    _console().print(f"token {token_id}: revoked")
