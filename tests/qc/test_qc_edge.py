"""QC orchestration on bad input, settings, the ingest hook's failure paths, and helpers."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import tifffile
from typer.testing import Result

import quantscope.qc
import quantscope.qc._run as qc_run
from quantscope.catalog import Repository
from quantscope.catalog import _schema as S
from quantscope.errors import InvalidInput, NotFound
from quantscope.ingestion import ingest
from quantscope.qc import load_thresholds, measure_image, qc_level, run_qc
from quantscope.qc._measure import significant_bits, thumbnail


def _cells(seed: int, shape: tuple[int, int] = (128, 160)) -> np.ndarray:
    """A small fluorescence-like field: bright blobs on a noisy background."""
    rng = np.random.default_rng(seed)
    img = rng.normal(200.0, 5.0, shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(12):
        cy, cx = rng.uniform(10, shape[0] - 10), rng.uniform(10, shape[1] - 10)
        img += 2000.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 4.0**2))
    return np.clip(img, 0, 65535).astype(np.uint16)


def _add_qc_table(repo: Repository, text: str) -> None:
    cfg = repo.root / "quantscope.toml"
    cfg.write_text(cfg.read_text() + "\n" + text)


def test_all_zero_and_nan_images_get_a_reason(tmp_path: Path, repo: Repository) -> None:
    zero = tmp_path / "in" / "zeros.tif"
    zero.parent.mkdir()
    tifffile.imwrite(zero, np.zeros((64, 80), np.uint16))
    nan = np.random.default_rng(1).normal(100.0, 3.0, (64, 80)).astype(np.float32)
    nan[:20] = np.nan
    tifffile.imwrite(tmp_path / "in" / "nan.tif", nan)
    report = ingest(repo, [tmp_path / "in"])
    assert report.ok and len(report.added) == 2
    by_name = {img.name: img.id for img in report.added}
    statuses = repo.quality.status()

    status, reasons = statuses[by_name["zeros"]]
    assert status == "warn" and any("empty or blank field" in r for r in reasons)
    status, reasons = statuses[by_name["nan"]]
    assert status in ("warn", "fail") and any("NaN or infinite pixels" in r for r in reasons)
    metrics = repo.quality.metrics()
    assert metrics[by_name["nan"]][0]["pct_nonfinite"] == pytest.approx(100 * 20 / 64)
    assert math.isnan(metrics[by_name["zeros"]][0]["focus_plls"])
    # NaN is stored as NULL
    q = S.quality_metrics
    with repo.engine.connect() as conn:
        value = conn.execute(
            sa.select(q.c.value).where(q.c.image_id == by_name["zeros"], q.c.name == "focus_plls")
        ).scalar_one()
    assert value is None


def test_ingest_without_qc_stores_no_metrics(tmp_path: Path, repo: Repository) -> None:
    tifffile.imwrite(tmp_path / "a.tif", _cells(1))
    report = ingest(repo, [tmp_path / "a.tif"], qc=False)
    assert report.ok and report.qc == {}
    assert repo.quality.metrics() == {} and repo.quality.status() == {}
    # the next ingest with QC also checks what was left unchecked
    tifffile.imwrite(tmp_path / "b.tif", _cells(2))
    report = ingest(repo, [tmp_path / "b.tif"])
    assert len(report.added) == 1
    assert set(report.qc) == {img.id for img in repo.images.all()}
    assert len(repo.quality.status()) == 2


def test_thresholds_from_quantscope_toml(tmp_path: Path, repo: Repository) -> None:
    tifffile.imwrite(tmp_path / "a.tif", _cells(1))
    report = ingest(repo, [tmp_path / "a.tif"])
    (image_id,) = report.qc
    assert report.qc[image_id] == "pass", repo.quality.status()
    _add_qc_table(repo, "[qc.limits.snr]\nwarn_below = 1e9\n")
    assert load_thresholds(repo).limits["snr"].warn_below == 1e9
    result = run_qc(repo)
    assert result.images[image_id].status == "warn"
    assert any("snr" in r and "warn limit" in r for r in result.images[image_id].reasons)


def test_malformed_qc_table_names_file_and_key(
    tmp_path: Path, repo: Repository, cli: Callable[..., Result]
) -> None:
    tifffile.imwrite(tmp_path / "a.tif", _cells(1))
    _add_qc_table(repo, "[qc.limits.snr]\nwarn_bellow = 10\n")
    with pytest.raises(InvalidInput) as exc:
        load_thresholds(repo)
    message = str(exc.value)
    assert "quantscope.toml [qc].limits.snr" in message
    assert "warn_bellow" in message and "warn_below" in message
    # ingest still stores the image; QC not running is a note
    report = ingest(repo, [tmp_path / "a.tif"])
    assert report.ok and len(report.added) == 1 and report.qc == {}
    assert any("warn_bellow" in n.message for n in report.notes)
    result = cli("qc", repo.root)
    assert result.exit_code == 1
    assert "warn_bellow" in result.stderr or "warn_bellow" in str(result.exception)


def test_unknown_qc_setting(repo: Repository) -> None:
    _add_qc_table(repo, "[qc]\noutlier_warn = 3\n")
    with pytest.raises(InvalidInput, match=r"\[qc\]: unknown setting 'outlier_warn'"):
        run_qc(repo)


@pytest.mark.parametrize("where", ["thread", "process"])
def test_one_unmeasurable_image_is_a_note(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """An image whose planes cannot be measured, in the measuring process and then on the QC
    thread it falls back to, nor from the store, is a note; the others are measured."""
    from quantscope.qc import MeasuringProcess, shared_process

    (tmp_path / "in").mkdir()
    for i in range(3):
        shape = (120, 160) if i == 1 else (128, 160)  # the process knows f1 by its shape
        tifffile.imwrite(tmp_path / "in" / f"f{i}.tif", _cells(i, shape))
    real = qc_run.measure_image
    real_planes = quantscope.qc.measure_planes

    def flaky(path: Path, image):  # type: ignore[no-untyped-def]
        if image.name == "f1":
            raise OSError("disk on fire")
        return real(path, image)

    def flaky_planes(planes, image, ome_xml=None):  # type: ignore[no-untyped-def]
        if image.name == "f1":
            raise RuntimeError("metric bug")  # ingest then measures the stored image
        return real_planes(planes, image, ome_xml)

    sent: list[tuple[int, ...]] = []
    if where == "process":
        proc = shared_process()
        assert proc is not None and proc.wait_ready(60), "no measuring process"
        real_measure = MeasuringProcess.measure

        def failing_for_f1(self, slot, shape, dtype, bits):  # type: ignore[no-untyped-def]
            sent.append(tuple(shape))
            if tuple(shape) == (1, 1, 120, 160):  # more pixels than the buffer holds
                shape = (4096, 1, 120, 160)
            return real_measure(self, slot, shape, dtype, bits)

        monkeypatch.setattr(MeasuringProcess, "measure", failing_for_f1)
    else:
        monkeypatch.setenv("QUANTSCOPE_QC_PROCESS", "0")
    monkeypatch.setattr(qc_run, "measure_image", flaky)
    monkeypatch.setattr(quantscope.qc, "measure_planes", flaky_planes)
    report = ingest(repo, [tmp_path / "in"])
    assert report.ok and len(report.added) == 3
    by_name = {img.name: img.id for img in report.added}
    assert report.qc[by_name["f1"]] == "warn"
    assert report.qc[by_name["f0"]] == "pass"
    assert any(n.path == "f1" and "disk on fire" in n.message for n in report.notes)
    assert by_name["f1"] not in repo.quality.metrics()
    assert "disk on fire" in repo.quality.status()[by_name["f1"]][1][0]
    if where == "process":
        assert sorted(sent) == [(1, 1, 120, 160), (1, 1, 128, 160), (1, 1, 128, 160)]


def test_a_crashing_qc_does_not_fail_the_ingest(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    tifffile.imwrite(tmp_path / "a.tif", _cells(1))

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")

    monkeypatch.setattr("quantscope.qc.run_qc", boom)
    report = ingest(repo, [tmp_path / "a.tif"])
    assert report.ok and len(report.added) == 1 and report.qc == {}
    assert any("RuntimeError: bug" in n.message for n in report.notes)


def test_run_qc_unknown_id(repo: Repository) -> None:
    with pytest.raises(NotFound, match="deadbeef"):
        run_qc(repo, ["deadbeef"])


def test_large_image_is_measured_on_a_downsampled_level(tmp_path: Path, repo: Repository) -> None:
    big = np.tile(_cells(3, (100, 160)), (1, 20))  # 100 x 3200: levels 3200, 1600, 800, 400
    tifffile.imwrite(tmp_path / "wide.tif", big)
    report = ingest(repo, [tmp_path / "wide.tif"], qc=False)
    img = report.added[0]
    assert img.levels == 4
    metrics = measure_image(repo.root / img.store_path, img)
    assert set(metrics) == {0} and metrics[0]["intensity_max"] > 1000


def test_qc_level() -> None:
    assert qc_level([(1, 1, 1, 2048, 100)]) == 0
    shapes = [
        (1, 1, 1, 8192, 8192),
        (1, 1, 1, 4096, 4096),
        (1, 1, 1, 2048, 2048),
        (1, 1, 1, 1024, 1024),
    ]
    assert qc_level(shapes) == 2
    assert qc_level([(1, 1, 1, 1, 9000)]) == 0  # a single level is all there is
    assert qc_level([(1, 1, 1, 3, 9000), (1, 1, 1, 1, 4500)]) == 1


def test_significant_bits() -> None:
    xml = '<OME><Image><Pixels ID="P" SignificantBits="12" Type="uint16"/></Image></OME>'
    assert significant_bits(xml, "uint16") == 12
    assert significant_bits(xml, "float32") is None
    assert significant_bits(xml, "uint8") is None  # more bits than the dtype has: ignored
    assert significant_bits(None, "uint16") is None
    assert significant_bits("<OME><Pixels Type='uint16'/></OME>", "uint16") is None
    two = '<Pixels SignificantBits="10"/><Pixels SignificantBits="14"/>'
    assert significant_bits(two, "uint16", scene=1) == 14


def test_thumbnail() -> None:
    ramp = np.arange(300 * 500, dtype=np.float64).reshape(300, 500)
    t = thumbnail(ramp, 128)
    assert t.dtype == np.uint8 and max(t.shape) <= 128 and t.min() == 0 and t.max() == 255
    assert not thumbnail(np.full((10, 10), np.nan), 128).any()
    assert thumbnail(np.zeros((1, 700)), 128).shape[1] <= 128


def test_cli_ingest_qc_option(tmp_path: Path, cli: Callable[..., Result]) -> None:
    import json

    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "a.tif", _cells(1))
    tifffile.imwrite(tmp_path / "in2.tif", _cells(2))
    assert cli("init", tmp_path / "r").exit_code == 0
    off = cli("ingest", tmp_path / "r", tmp_path / "in", "--no-qc", "--json")
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout)["qc"] == {}
    with Repository.open(tmp_path / "r") as r:
        assert r.quality.metrics() == {}
    on = cli("ingest", tmp_path / "r", tmp_path / "in2.tif")
    assert on.exit_code == 0, on.output
    assert "quality control: 2 pass, 0 warn, 0 fail" in on.stdout
    assert on.stdout.splitlines()[-1].startswith("ingested 1 image from")
