"""QC during ingest measures the planes the writers have in memory: the same values as measuring
the stored image, for planes, z-stacks, multichannel and 12-bit data; images above the QC size
fall back to the stored pyramid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

import quantscope.qc
import quantscope.qc._run as qc_run
from _qc_support import assert_same_metrics
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput
from quantscope.ingestion import ingest
from quantscope.qc import measure_image, measure_planes


def _field(seed: int, shape: tuple[int, ...], blur: float = 0.0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = np.zeros(shape[-2:])
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    for _ in range(10):
        cy, cx = rng.uniform(8, shape[-2] - 8), rng.uniform(8, shape[-1] - 8)
        img += 1500.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.0**2))
    if blur:
        img = ndimage.gaussian_filter(img, blur)
    return np.clip(img + rng.normal(150.0, 6.0, shape[-2:]), 0, 4095).astype(np.uint16)


@pytest.mark.parametrize("jobs", [1, 2])
def test_metrics_from_memory_equal_the_stored_image(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "plane.tif", _field(1, (96, 130)))
    # a z-stack whose middle plane is the sharp one
    stack = np.stack([_field(2, (80, 100), blur=b) for b in (3.0, 0.0, 3.0)])
    tifffile.imwrite(src / "stack.tif", stack, photometric="minisblack", metadata={"axes": "ZYX"})
    # two channels, 12 bits declared in the OME metadata (saturation at 4095)
    two = np.stack([_field(3, (64, 72)), np.full((64, 72), 4095, np.uint16)])
    tifffile.imwrite(
        src / "two.ome.tif", two, metadata={"axes": "CYX", "SignificantBits": 12}, ome=True
    )
    calls: list[str] = []
    real = qc_run.measure_image

    def counted(path: Path, image):  # type: ignore[no-untyped-def]
        calls.append(image.name)
        return real(path, image)

    monkeypatch.setattr(qc_run, "measure_image", counted)
    report = ingest(repo, [src], jobs=jobs)
    assert report.ok and len(report.added) == 3, report.failed
    assert calls == []  # every image was measured from memory, none read back
    stored = repo.quality.metrics()
    for img in repo.images.all():
        assert_same_metrics(stored[img.id], measure_image(repo.root / img.store_path, img))
    by_name = {img.name: img for img in repo.images.all()}
    assert stored[by_name["stack"].id][0]["best_focus_plane"] == 1.0
    assert by_name["two"].significant_bits == 12 and by_name["plane"].significant_bits is None
    two_ch = stored[by_name["two"].id]
    assert set(two_ch) == {0, 1}
    assert two_ch[0]["saturation_pct_at_dtype_max"] < 1.0  # 12-bit full scale, not 65535
    assert two_ch[0]["dynamic_range_used"] > 0.2
    assert report.qc_seconds > 0


@pytest.mark.parametrize("where", ["thread", "process"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_failed_writes_give_back_their_qc_buffers(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch, jobs: int, where: str
) -> None:
    """A write that fails after its QC buffer was taken gives it back (a buffer kept would
    hold a slot of the QC queue: more failures than the queue is deep would block the
    writers); the other images are measured, on the QC thread or in the measuring process."""
    import quantscope.ingestion._ingest as ing
    import quantscope.ingestion._write as writing
    from quantscope.qc._process import shared_process, supported

    if where == "process":
        if not supported():
            pytest.skip("the measuring process needs Linux")
        proc = shared_process()
        assert proc is not None and proc.wait_ready(60)
    else:
        monkeypatch.setenv("QUANTSCOPE_QC_PROCESS", "0")

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        tifffile.imwrite(src / f"f{i}.tif", _field(10 + i, (40, 50 + i)))
    real_write = writing.write_image

    def failing(dest, read_rows, spec, **kw):  # type: ignore[no-untyped-def]
        if spec.name != "f2":
            read_rows(0, 0, 0, 0, 10)  # some rows read and kept, then the write fails
            raise OSError("disk full (simulated)")
        return real_write(dest, read_rows, spec, **kw)

    pools: list[writing._QCPool] = []
    real_pool = ing._qc_pool

    def recorded(j: int):  # type: ignore[no-untyped-def]
        cm = real_pool(j)
        pool = cm.__enter__()
        pools.append(pool)
        return _Entered(cm, pool)

    monkeypatch.setattr(writing, "write_image", failing)
    monkeypatch.setattr(ing, "_qc_pool", recorded)
    report = ingest(repo, [src], jobs=jobs)
    assert [img.name for img in report.added] == ["f2"]
    assert len(report.failed) == 2 and all("disk full" in f.message for f in report.failed)
    (pool,) = pools
    assert (pool._process is not None) == (where == "process")
    assert pool._slots._value == pool.depth  # every buffer given back
    assert not pool._shared  # none still lent out of the measuring process's buffers
    (image_id,) = report.qc
    assert set(repo.quality.metrics()[image_id]) == {0}


class _Entered:
    """A context manager already entered (yields ``value``, exits ``cm`` at the end)."""

    def __init__(self, cm, value) -> None:  # type: ignore[no-untyped-def]
        self.cm, self.value = cm, value

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.value

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        return self.cm.__exit__(*exc)


def test_images_above_the_qc_size_are_measured_from_the_store(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    tifffile.imwrite(tmp_path / "a.tif", _field(4, (96, 130)))
    monkeypatch.setattr(quantscope.qc, "QC_MAX_EDGE", 64)  # what ingest keeps in memory
    calls: list[str] = []
    real = qc_run.measure_image

    def counted(path: Path, image):  # type: ignore[no-untyped-def]
        calls.append(image.name)
        return real(path, image)

    monkeypatch.setattr(qc_run, "measure_image", counted)
    report = ingest(repo, [tmp_path / "a.tif"])
    assert report.ok and calls == ["a"]
    (image_id,) = report.qc
    assert set(repo.quality.metrics()[image_id]) == {0}


def test_measure_planes_checks_its_input(repo: Repository, tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", _field(5, (64, 64)))
    report = ingest(repo, [tmp_path / "a.tif"], qc=False)
    img = report.added[0]
    with pytest.raises(InvalidInput, match=r"\(C, Z, Y, X\)"):
        measure_planes(np.zeros((64, 64), np.uint16), img)
    with pytest.raises(InvalidInput, match="larger than the QC level"):
        measure_planes(np.zeros((1, 1, 8, 4096), np.uint16), img)
