"""The measuring process of ingest's QC: the same values as measuring in this process, every
image of an ingest measured there once it is ready, and a fallback to the QC thread when it
cannot measure, dies, or is switched off."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile

import quantscope.qc
import quantscope.qc._run as qc_run
from _qc_support import assert_same_metrics
from quantscope.catalog import Repository
from quantscope.ingestion import ingest
from quantscope.qc import MeasuringProcess, measure_image, shared_process
from quantscope.qc._process import supported
from quantscope.quality import best_plane_metrics

pytestmark = pytest.mark.skipif(not supported(), reason="the measuring process needs Linux")


@pytest.fixture
def own_process() -> Iterator[MeasuringProcess]:
    """A measuring process of this test's own (one the test may break), ready."""
    proc = MeasuringProcess()
    try:
        assert proc.wait_ready(60), proc.dead
        yield proc
    finally:
        proc.close()


def _measured_here(planes: np.ndarray, bits: int | None) -> dict[int, dict[str, float]]:
    return {
        c: best_plane_metrics(
            planes[c, 0] if planes.shape[1] == 1 else planes[c], significant_bits=bits
        )
        for c in range(planes.shape[0])
    }


def _cases() -> list[tuple[str, np.ndarray, int | None]]:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:90, :120]
    blobs = sum(
        1500.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
        for cy, cx in rng.uniform(10, 80, (12, 2))
    )
    field = np.clip(blobs + rng.normal(150, 6, blobs.shape), 0, 4095)
    noisy = field.astype(np.float32)
    noisy[3, :7] = np.nan
    noisy[50, 60] = np.inf
    stack = np.stack([field * 0.3 + 100, field, field * 0.5 + 50]).astype(np.uint16)
    return [
        ("uint16 plane", field.astype(np.uint16)[None, None], None),
        (
            "12-bit, two channels",
            np.stack([field, np.full_like(field, 4095)]).astype(np.uint16)[:, None],
            12,
        ),
        ("z-stack", stack[None], None),
        ("uint8", (field / 16).astype(np.uint8)[None, None], None),
        ("int16", (field - 1000).astype(np.int16)[None, None], None),
        ("float32 with NaN and inf", noisy[None, None], None),
        ("constant", np.zeros((1, 1, 5, 1), np.uint16), None),
    ]


@pytest.mark.parametrize("case", range(len(_cases())), ids=[c[0] for c in _cases()])
def test_the_process_gives_the_values_of_this_process(
    own_process: MeasuringProcess, case: int
) -> None:
    _, planes, bits = _cases()[case]
    slot = own_process.slot(planes.nbytes)
    buf = own_process.array(slot, planes.shape, planes.dtype)
    buf[...] = planes
    fut = own_process.measure(slot, buf.shape, buf.dtype, bits)  # type: ignore[arg-type]
    assert fut is not None
    metrics, error, seconds = fut.result(timeout=60)
    assert error is None and metrics is not None and seconds > 0
    assert_same_metrics(metrics, _measured_here(planes, bits))
    if planes.shape[1] > 1:
        assert metrics[0]["best_focus_plane"] == 1.0
    own_process.release(slot)


def test_buffers_are_reused_and_large_ones_dropped(own_process: MeasuringProcess) -> None:
    small = own_process.slot(1000)
    own_process.release(small)
    assert own_process.slot(5000) is small  # a free buffer large enough is reused
    large = own_process.slot(20 * 2**20)
    arr = own_process.array(large, (10, 2**20), np.uint16)
    arr[:] = 7
    fut = own_process.measure(large, (1, 1, 10, 2**20), np.uint16, None)
    assert fut is not None and fut.result(timeout=60)[1] is None
    own_process.release(large)  # above 16 MiB: not kept, dropped in the child as well
    assert large not in own_process._free
    # the child goes on after the drop
    arr2 = own_process.array(small, (1, 1, 4, 4), np.uint16)
    arr2[:] = 3
    again = own_process.measure(small, (1, 1, 4, 4), np.uint16, None)
    assert again is not None
    metrics, error, _ = again.result(timeout=60)
    assert error is None and metrics is not None and metrics[0]["intensity_max"] == 3.0


def test_a_request_the_process_cannot_measure_returns_the_error(
    own_process: MeasuringProcess,
) -> None:
    slot = own_process.slot(100)
    fut = own_process.measure(slot, (1, 1, 2048, 2048), np.uint16, None)  # beyond the buffer
    assert fut is not None
    metrics, error, _ = fut.result(timeout=60)
    assert metrics is None and error is not None and "ValueError" in error
    assert own_process.ready  # one bad request does not end the process


def test_a_killed_process_completes_its_requests_and_takes_no_more(
    own_process: MeasuringProcess, wait_until: Callable[..., bool]
) -> None:
    slot = own_process.slot(4 * 2048 * 2048 * 2)
    own_process.array(slot, (4, 1, 2048, 2048), np.uint16)[:] = 5
    fut = own_process.measure(slot, (4, 1, 2048, 2048), np.uint16, None)
    assert fut is not None
    os.kill(own_process._proc.pid, signal.SIGKILL)
    metrics, error, _ = fut.result(timeout=60)  # measured before the kill, or failed: never hangs
    assert (metrics is None) == (error is not None)
    wait_until(lambda: own_process.dead is not None)
    assert own_process.dead is not None and not own_process.ready
    assert own_process.measure(slot, (1, 1, 4, 4), np.uint16, None) is None


def _write_fields(folder: Path, n: int, seed: int = 3) -> None:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.normal(200, 5, (70, 90))
        img[20 + i : 30 + i, 30:40] += 3000
        tifffile.imwrite(folder / f"f{i}.tif", np.clip(img, 0, 65535).astype(np.uint16))


@pytest.mark.parametrize("jobs", [1, 2])
def test_ingest_measures_every_image_in_the_ready_process(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    proc = shared_process()
    assert proc is not None and proc.wait_ready(60), "no measuring process"
    _write_fields(tmp_path / "in", 6)
    sent: list[tuple[int, ...]] = []
    real_measure = MeasuringProcess.measure

    def counted(self, slot, shape, dtype, bits):  # type: ignore[no-untyped-def]
        sent.append(tuple(shape))
        return real_measure(self, slot, shape, dtype, bits)

    def not_here(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("measured in the ingesting process")

    monkeypatch.setattr(MeasuringProcess, "measure", counted)
    monkeypatch.setattr(quantscope.qc, "measure_planes", not_here)
    monkeypatch.setattr(qc_run, "measure_image", not_here)
    report = ingest(repo, [tmp_path / "in"], jobs=jobs)
    assert report.ok and len(report.added) == 6 and len(sent) == 6
    assert set(report.qc.values()) <= {"pass", "warn"}
    monkeypatch.undo()
    stored = repo.quality.metrics()
    for img in repo.images.all():
        assert_same_metrics(stored[img.id], measure_image(repo.root / img.store_path, img))


def test_with_the_process_switched_off_ingest_measures_on_a_thread(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSCOPE_QC_PROCESS", "0")
    assert shared_process() is None
    _write_fields(tmp_path / "in", 3)
    here: list[str] = []
    real = quantscope.qc.measure_planes

    def counted(planes, image, ome_xml=None):  # type: ignore[no-untyped-def]
        here.append(image.name)
        return real(planes, image, ome_xml)

    monkeypatch.setattr(quantscope.qc, "measure_planes", counted)
    report = ingest(repo, [tmp_path / "in"])
    assert report.ok and sorted(here) == ["f0", "f1", "f2"]
    assert len(repo.quality.metrics()) == 3


def test_a_dead_shared_process_is_replaced(
    monkeypatch: pytest.MonkeyPatch, wait_until: Callable[..., bool]
) -> None:
    import quantscope.qc._process as qp

    proc = shared_process()
    assert proc is not None and proc.wait_ready(60)
    monkeypatch.setattr(qp, "_starts", 0)  # this test's restart does not count against others
    os.kill(proc._proc.pid, signal.SIGKILL)
    wait_until(lambda: proc.dead is not None)
    fresh = shared_process()
    assert fresh is not None and fresh is not proc and fresh.wait_ready(60)


def test_the_process_reports_its_cpu_time(own_process: MeasuringProcess) -> None:
    before = own_process.cpu_seconds()
    assert before is not None and before > 0  # its imports at least
    planes = np.random.default_rng(0).integers(0, 4000, (1, 1, 1024, 1024), dtype=np.uint16)
    slot = own_process.slot(planes.nbytes)
    own_process.array(slot, planes.shape, planes.dtype)[...] = planes
    for _ in range(20):
        fut = own_process.measure(slot, planes.shape, planes.dtype, None)  # type: ignore[arg-type]
        assert fut is not None and fut.result(timeout=60)[1] is None
    after = own_process.cpu_seconds()
    assert after is not None and after > before


def test_ingest_starts_the_process_only_once_enough_images_were_asked_for(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small one-off ingest measures on a thread (starting the process would cost more than
    it gains); once START_AFTER_IMAGES images were asked for, the process is started, and
    from then on every ingest uses it."""
    import quantscope.qc._process as qp

    monkeypatch.setattr(qp, "_shared", None)  # as in a fresh Python process
    monkeypatch.setattr(qp, "_images", 0)
    monkeypatch.setattr(qp, "_starts", 0)
    monkeypatch.setattr(qp, "START_AFTER_IMAGES", 5)
    _write_fields(tmp_path / "a", 3)
    _write_fields(tmp_path / "b", 3, seed=4)
    assert ingest(repo, [tmp_path / "a"]).ok
    assert qp.running_process() is None  # 3 images: no process
    started = None
    try:
        report = ingest(repo, [tmp_path / "b"])  # 6 in all: started for this ingest
        started = qp.running_process()
        assert report.ok and len(report.qc) == 3 and started is not None
        assert qp.process_for_ingest(1) is started  # and used from then on
        assert len(repo.quality.metrics()) == 6
    finally:
        if started is not None:
            started.close()


def test_two_ingests_at_once_share_the_process(tmp_path: Path) -> None:
    """Two ingests in two threads of one Python process (a server) use the one measuring
    process at the same time; each gets its own images' metrics."""
    from concurrent.futures import ThreadPoolExecutor

    proc = shared_process()
    assert proc is not None and proc.wait_ready(60)
    repos = []
    for k in range(2):
        _write_fields(tmp_path / f"in{k}", 5, seed=10 + k)
        repos.append(Repository.init(tmp_path / f"repo{k}"))
    try:
        with ThreadPoolExecutor(2) as pool:
            reports = list(
                pool.map(lambda k: ingest(repos[k], [tmp_path / f"in{k}"], jobs=2), range(2))
            )
        for repo, report in zip(repos, reports, strict=True):
            assert report.ok and len(report.qc) == 5
            stored = repo.quality.metrics()
            for img in repo.images.all():
                assert_same_metrics(stored[img.id], measure_image(repo.root / img.store_path, img))
    finally:
        for repo in repos:
            repo.close()


def test_without_shared_memory_ingest_measures_on_a_thread(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A buffer the process cannot get (no memfd: too many open files, say) is a private one,
    measured on the QC thread."""
    proc = shared_process()
    assert proc is not None and proc.wait_ready(60)

    def no_memory(self, nbytes):  # type: ignore[no-untyped-def]
        raise OSError(24, "Too many open files")

    here: list[str] = []
    real = quantscope.qc.measure_planes

    def counted(planes, image, ome_xml=None):  # type: ignore[no-untyped-def]
        here.append(image.name)
        return real(planes, image, ome_xml)

    monkeypatch.setattr(MeasuringProcess, "slot", no_memory)
    monkeypatch.setattr(quantscope.qc, "measure_planes", counted)
    _write_fields(tmp_path / "in", 3, seed=20)
    report = ingest(repo, [tmp_path / "in"])
    assert report.ok and len(report.qc) == 3 and len(repo.quality.metrics()) == 3
    assert sorted(here) == ["f0", "f1", "f2"]


def test_a_child_that_cannot_start_is_never_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that exits at once (here not a Python at all) leaves the process never ready:
    no request is sent, ingest measures on its thread."""
    import sys

    monkeypatch.setattr(sys, "executable", "/bin/false")
    proc = MeasuringProcess()
    try:
        assert not proc.wait_ready(60)
        assert proc.dead is not None and "ended" in proc.dead
        slot = proc.slot(64)
        assert proc.measure(slot, (1, 1, 4, 4), np.uint16, None) is None
    finally:
        proc.close()


def test_a_child_that_fails_says_why(
    own_process: MeasuringProcess, wait_until: Callable[..., bool]
) -> None:
    """A child that meets a message it does not know sends its error before it exits, and
    the parent gives that error as the reason the process is gone."""
    own_process._send(("no such message",))
    wait_until(lambda: own_process.dead is not None)
    assert own_process.dead is not None and "unknown message" in own_process.dead
    assert own_process._proc.wait(60) == 1
