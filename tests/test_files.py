"""The shared atomic write: all or nothing, no temporary file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantscope._files import atomic_write, user_name


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    atomic_write(target, "old")
    atomic_write(target, b"new", durable=True)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_a_failed_write_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import quantscope._files as files

    target = tmp_path / "doc.json"
    atomic_write(target, "old")

    def no_rename(src: object, dst: object) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(files.os, "replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_user_name_is_text() -> None:
    assert isinstance(user_name(), str) and user_name()
