"""QC on ingest and ``quantscope qc`` on a synthetic plate whose blurred fields must stand out."""

from __future__ import annotations

import json
import math
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import Result

from quantscope.catalog import Repository
from quantscope.ingestion import ingest
from quantscope.qc import QCReportData, collect_report_data, run_qc
from quantscope.quality import METRICS


@pytest.fixture(scope="module")
def synth_repo(
    tmp_path_factory: pytest.TempPathFactory, synth_blurred: tuple[Path, set[str]]
) -> Iterator[tuple[Repository, Any, set[str]]]:
    images_dir, blurred = synth_blurred
    repo = Repository.init(tmp_path_factory.mktemp("qcrepo") / "repo")
    report = ingest(repo, [images_dir], jobs=2)
    assert report.ok, report.failed
    yield repo, report, blurred
    repo.close()


def test_ingest_measures_every_channel_of_every_image(synth_repo) -> None:
    repo, report, _ = synth_repo
    images = repo.images.all()
    assert len(images) == 12 and len(report.added) == 12
    metrics = repo.quality.metrics()
    statuses = repo.quality.status()
    assert set(report.qc) == {img.id for img in images}
    for img in images:
        assert set(metrics[img.id]) == {0, 1}, img.name  # DAPI, GFP
        for values in metrics[img.id].values():
            assert set(values) == set(METRICS)
        assert statuses[img.id][0] == report.qc[img.id]


def test_blurred_fields_are_flagged_and_sharp_ones_pass(synth_repo) -> None:
    repo, _, blurred = synth_repo
    by_name = {img.name: img.id for img in repo.images.all()}
    statuses = repo.quality.status()
    for name, image_id in by_name.items():
        status, reasons = statuses[image_id]
        if name in blurred:
            assert status == "fail", (name, reasons)
            focus = [r for r in reasons if "focus_plls" in r and "outlier" in r]
            assert focus and all("blurrier than its peers" in r for r in focus), reasons
            assert any(r.startswith("ch DAPI: ") for r in reasons)
        else:
            assert status == "pass", (name, reasons)
            assert reasons == []


def test_qc_json_lists_metrics_status_and_reasons(synth_repo, cli: Callable[..., Result]) -> None:
    repo, _, blurred = synth_repo
    result = cli("qc", repo.root, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["counts"] == {"pass": 10, "warn": 0, "fail": 2}
    assert len(doc["images"]) == 12
    rows = {row["name"]: row for row in doc["images"]}
    assert {n for n, r in rows.items() if r["status"] == "fail"} == blurred
    row = rows[sorted(blurred)[0]]
    assert row["plate"] == "synth" and row["well"] and row["field"] in (1, 2)
    assert [ch["name"] for ch in row["channels"]] == ["DAPI", "GFP"]
    assert list(row["channels"][0]["metrics"]) == list(METRICS)  # registry order
    assert row["reasons"] and row["error"] is None
    # JSON has no NaN: undefined metrics are null
    assert "NaN" not in result.stdout


@pytest.mark.slow
def test_qc_fail_on(synth_repo, cli: Callable[..., Result]) -> None:
    repo, _, _ = synth_repo
    assert cli("qc", repo.root).exit_code == 0  # QC is information
    assert cli("qc", repo.root, "--fail-on", "fail").exit_code == 1
    assert cli("qc", repo.root, "--fail-on", "warn").exit_code == 1
    sharp = [i.id for i in repo.images.all() if repo.quality.status()[i.id][0] == "pass"]
    assert cli("qc", repo.root, "--image", sharp[0], "--fail-on", "warn").exit_code == 0
    bad = cli("qc", repo.root, "--fail-on", "sometimes")
    assert bad.exit_code == 2 and "--fail-on" in bad.stderr


def test_qc_table(synth_repo, cli: Callable[..., Result]) -> None:
    repo, _, _ = synth_repo
    result = cli("qc", repo.root, "--plate", "synth")
    assert result.exit_code == 0, result.output
    for text in ("focus_plls", "snr", "saturation_pct_at_max", "fail", "blurrier than its peers"):
        assert text in result.stdout
    assert "10 pass, 0 warn, 2 fail" in result.stdout
    missing = cli("qc", repo.root, "--plate", "nope")
    assert missing.exit_code != 0


def test_selection_is_measured_but_flags_use_all_peers(synth_repo) -> None:
    repo, _, blurred = synth_repo
    images = repo.images.all()
    one = next(i for i in images if i.name in blurred)
    report = run_qc(repo, [one.id])
    assert list(report.images) == [one.id] and report.measured == 1
    # a single image on its own has no peers; among the stored 12 it is still an outlier
    assert report.images[one.id].status == "fail"
    assert any("outlier" in r for r in report.images[one.id].reasons)
    again = run_qc(repo, recompute=False)
    assert again.measured == 0 and again.counts() == {"pass": 10, "warn": 0, "fail": 2}


def test_report_data_and_writer(
    synth_repo, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, _, blurred = synth_repo
    data = collect_report_data(repo)
    assert isinstance(data, QCReportData)
    assert data.root == repo.root and data.created.tzinfo is not None
    assert [m.name for m in data.metrics] == list(METRICS)
    assert len(data.images) == 12
    rec = next(r for r in data.images if r.name in blurred)
    assert rec.status == "fail" and rec.reasons and rec.plate == "synth"
    assert rec.channels == ("DAPI", "GFP") and set(rec.metrics) == {0, 1}
    assert rec.row is not None and rec.column is not None and rec.well
    assert len(rec.thumbnails) == 2
    for thumb in rec.thumbnails:
        assert thumb.dtype == np.uint8 and thumb.ndim == 2 and max(thumb.shape) <= 128
        assert thumb.max() == 255 and thumb.min() == 0

    # `--report` hands the collected data to quantscope.qc._report.write_report
    seen: list[tuple[Path, QCReportData]] = []

    def write_report(path: Path, data: QCReportData) -> None:
        seen.append((path, data))
        path.write_text("<html></html>")

    fake = types.ModuleType("quantscope.qc._report")
    fake.write_report = write_report  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "quantscope.qc._report", fake)
    out = tmp_path / "qc.html"
    result = cli("qc", repo.root, "--report", out, "--json")
    assert result.exit_code == 0, result.output
    assert out.is_file() and len(seen) == 1
    assert seen[0][0] == out and len(seen[0][1].images) == 12
    assert json.loads(result.stdout)["report"] == str(out)


def test_metrics_nan_free_where_defined(synth_repo) -> None:
    repo, _, _ = synth_repo
    for channels in repo.quality.metrics().values():
        for values in channels.values():
            assert not math.isnan(values["focus_plls"])
            assert values["is_empty"] == 0.0
