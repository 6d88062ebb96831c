"""Ground rule: no module in src/ over 800 lines (split it into rooms with clear names)."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "quantscope"
MAX_LINES = 800


def test_no_module_over_800_lines() -> None:
    too_long = {
        str(p.relative_to(SRC)): n
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}
