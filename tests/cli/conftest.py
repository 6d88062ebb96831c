"""Fixtures of the CLI tests: a typer CliRunner, the real entry point run in-process, and a small
folder of images written with tifffile."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile

from quantscope.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def qs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """``qs(*args)``: the console-script entry point ``quantscope.cli.main`` in this process,
    which is what turns a quantscope error into one line on stderr and exit code 1."""

    def run(*args: object) -> Run:
        monkeypatch.setattr(sys, "argv", ["quantscope", *(str(a) for a in args)])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main()
        out, err = capsys.readouterr()
        code = exc.value.code
        return Run(0 if code is None else int(code), out, err)

    return run


def _pixels(seed: int, shape: tuple[int, int] = (40, 56)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60000, size=shape, dtype=np.uint16)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """``in/``: one plate field as two channel files (P9 C04 s1 w1/w2) and a two-channel
    OME-TIFF whose name holds square brackets: 3 files, 2 images."""
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "P9_C04_s1_w1.tif", _pixels(1))
    tifffile.imwrite(folder / "P9_C04_s1_w2.tif", _pixels(2))
    tifffile.imwrite(
        folder / "stack [xz].ome.tif",
        np.stack([_pixels(3), _pixels(4)]),
        ome=True,
        metadata={
            "axes": "CYX",
            "Channel": {"Name": ["DAPI", "GFP"]},
            "PhysicalSizeX": 0.65,
            "PhysicalSizeY": 0.65,
        },
    )
    return folder


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    """An initialized, empty repository folder."""
    from quantscope.catalog import Repository

    root = tmp_path / "repo"
    Repository.init(root).close()
    return root
