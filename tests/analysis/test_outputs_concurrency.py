"""Label images of one image written at the same time (issue 12, item 4): each writer's
temporary folder is its own, the ``labels/zarr.json`` listing keeps every name, and a label
image that cannot be read back after writing is an error, never a registered output."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from quantscope.analysis import _outputs, read_labels, write_labels
from quantscope.catalog import Repository
from quantscope.errors import QuantscopeError


def _labels(shape: tuple[int, ...], value: int) -> np.ndarray:
    lab = np.zeros(shape, np.int32)
    lab[10:30, 10:25] = value
    return lab


def test_a_write_leaves_another_writers_temporary_folder_alone(analysis_repo: Repository) -> None:
    """Writer B is half way (its temporary folder exists) while writer A writes: before the fix
    A's clean-up deleted B's folder, and B then renamed a folder without ``0/zarr.json``."""
    img = analysis_repo.images.all()[0]
    group = analysis_repo.root / img.store_path / "labels"
    group.mkdir()
    other = group / f".PH3{_outputs._TMP}0123456789ab"  # B's name, as write_labels makes it
    (other / "0").mkdir(parents=True)
    (other / "0" / "zarr.json").write_text("{}")
    write_labels(analysis_repo.root, img.store_path, "Nuclei", _labels(img.shape[3:], 1))
    assert (other / "0" / "zarr.json").is_file()


def test_writers_interleaved_inside_one_write_both_end_readable_and_listed(
    analysis_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic interleaving: writer B runs completely just after writer A has created
    level 0 of its label image and before A writes its pixels and the other levels (the window
    the race hit: B's clean-up removed A's folder, A then wrote chunks without ``0/zarr.json``)."""
    import zarr

    img = analysis_repo.images.all()[0]
    shape = img.shape[3:]
    real_create_array = zarr.Group.create_array
    nested = {"done": False}

    def create_then_other_writer(self: zarr.Group, name: str, **kw: object) -> object:
        arr = real_create_array(self, name, **kw)  # type: ignore[arg-type]
        if not nested["done"] and ".Nuclei" in str(self.store_path):
            nested["done"] = True
            write_labels(analysis_repo.root, img.store_path, "PH3", _labels(shape, 2))
        return arr

    monkeypatch.setattr(zarr.Group, "create_array", create_then_other_writer)
    write_labels(analysis_repo.root, img.store_path, "Nuclei", _labels(shape, 1))
    assert nested["done"]
    group = analysis_repo.root / img.store_path / "labels"
    for name, value in (("Nuclei", 1), ("PH3", 2)):
        assert (group / name / "0" / "zarr.json").is_file(), name
        assert read_labels(analysis_repo.root, f"{img.store_path}/labels/{name}").max() == value
    listed = json.loads((group / "zarr.json").read_text())["attributes"]["ome"]["labels"]
    assert sorted(listed) == ["Nuclei", "PH3"]
    assert not [p.name for p in group.iterdir() if _outputs._TMP in p.name]


def test_many_threads_writing_into_one_labels_group_lose_nothing(
    analysis_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = analysis_repo.images.all()[0]
    shape = img.shape[3:]
    n = 6
    barrier = threading.Barrier(n)
    real_read = _outputs._read_listing

    def slow_read(path: Path) -> list[str]:
        # every writer reads the listing before any of them writes it (the lost-update window)
        out = real_read(path)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=0.5)  # serialized writers never all meet here: the point
        return out

    monkeypatch.setattr(_outputs, "_read_listing", slow_read)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            write_labels(analysis_repo.root, img.store_path, f"L{i}", _labels(shape, i + 1))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    group = analysis_repo.root / img.store_path / "labels"
    listed = json.loads((group / "zarr.json").read_text())["attributes"]["ome"]["labels"]
    assert sorted(listed) == [f"L{i}" for i in range(n)]
    for i in range(n):
        assert read_labels(analysis_repo.root, f"{img.store_path}/labels/L{i}").max() == i + 1


def test_a_label_image_that_cannot_be_read_back_is_an_error(
    analysis_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the race produced (a label image without ``0/zarr.json``) is refused by the writer
    itself, so the executor records a failure instead of registering it."""
    img = analysis_repo.images.all()[0]
    real_rename = os.rename

    def rename_and_lose_level0(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        real_rename(src, dst)
        if Path(dst).name == "Nuclei":
            (Path(dst) / "0" / "zarr.json").unlink()

    monkeypatch.setattr(_outputs.os, "rename", rename_and_lose_level0)
    with pytest.raises(QuantscopeError, match="cannot be read back"):
        write_labels(analysis_repo.root, img.store_path, "Nuclei", _labels(img.shape[3:], 1))
    group = analysis_repo.root / img.store_path / "labels"
    listing = group / "zarr.json"
    listed = (
        json.loads(listing.read_text())["attributes"]["ome"]["labels"] if listing.exists() else []
    )
    assert "Nuclei" not in listed
