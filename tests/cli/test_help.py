"""Every command's --help: no Python type metavars on flags, help text for every option, and
``--version`` (issue 12, smaller things)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
import typer.testing

from quantscope.cli import app
from quantscope.cli._app import command


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = [path for path, _ in _walk(command())]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> typer.testing.CliRunner:
    # the installed `quantscope` runs command(), not the bare typer app
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: command())
    return typer.testing.CliRunner()


def test_every_option_has_help() -> None:
    missing = [
        f"quantscope {' '.join(path)} {'/'.join(p.opts)}"
        for path, cmd in _walk(command())
        for p in cmd.params
        if p.param_type_name == "option" and not (p.help or "").strip()
    ]
    assert missing == []
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "quantscope")
def test_help_shows_no_python_type_metavars(
    runner: typer.testing.CliRunner, path: tuple[str, ...]
) -> None:
    r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output
    for bad in ("<bool>", "<int", "<float", "<text>", "<str>", "<integer>"):
        assert bad not in r.output, f"{' '.join(path)} --help shows {bad}:\n{r.output}"


def test_version(runner: typer.testing.CliRunner) -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0
    assert re.fullmatch(rf"quantscope {re.escape(version('quantscope'))}\s*", r.output)


def test_byte_sizes_are_decimal_units() -> None:
    from quantscope.cli._common import _fmt_bytes

    assert _fmt_bytes(999) == "999 B"
    assert _fmt_bytes(1000) == "1.0 kB"
    assert _fmt_bytes(2_500_000) == "2.5 MB"  # the unit ingest's "MB/s" uses (10⁶ bytes)
