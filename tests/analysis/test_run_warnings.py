"""No RuntimeWarning leaks out of a run (issue 12, item 10).

The per-image summary silenced numpy's "Mean of empty slice" with ``warnings.catch_warnings``,
which swaps the process-wide warning filters: with ``--jobs 2`` one thread's exit restored the
filters while another thread was inside, and that thread's warning leaked (or other threads'
warnings were swallowed). Columns without values are now left out instead."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantscope.analysis import _features, summarize_image


def test_summary_of_columns_without_values_warns_nothing() -> None:
    table = pd.DataFrame(
        {
            "ObjectNumber": [1, 2],
            "A": [1.0, 3.0],
            "Empty": [np.nan, np.nan],
            "Inf": [np.inf, -np.inf],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = summarize_image(table)
        empty = summarize_image(table.iloc[:0])
    assert out["Mean_A"] == 2.0 and out["Median_A"] == 2.0
    assert np.isnan(out["Mean_Empty"]) and np.isnan(out["Median_Empty"])
    assert np.isnan(out["Mean_Inf"])
    assert empty["Count"] == 0 and np.isnan(empty["Mean_A"])


def test_two_threads_summarizing_at_once_leak_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic interleaving of two summaries in two threads: A starts first and ends
    while B is inside its aggregation; B's table has a column without values."""
    real_nanmean = np.nanmean
    a_inside, b_inside = threading.Event(), threading.Event()

    def nanmean(values: np.ndarray, *args: object, **kw: object) -> object:
        name = threading.current_thread().name
        if name == "A":
            a_inside.set()
            b_inside.wait(timeout=2)  # B enters its summary while A is in its own
        elif name == "B":
            b_inside.set()
            a_done.wait(timeout=2)  # A has left its summary
        return real_nanmean(values, *args, **kw)

    monkeypatch.setattr(_features.np, "nanmean", nanmean)
    a_done = threading.Event()
    full = pd.DataFrame({"ObjectNumber": [1, 2], "A": [1.0, 2.0]})
    partial = pd.DataFrame({"ObjectNumber": [1, 2], "A": [1.0, 2.0], "Empty": [np.nan] * 2})
    errors: list[BaseException] = []

    def a() -> None:
        summarize_image(full)
        a_done.set()

    def b() -> None:
        a_inside.wait(timeout=2)
        try:
            summarize_image(partial)
        except BaseException as e:
            errors.append(e)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as `python -W error` runs `quantscope run`
        ta, tb = threading.Thread(target=a, name="A"), threading.Thread(target=b, name="B")
        ta.start()
        tb.start()
        ta.join()
        tb.join()
    assert errors == []


def test_a_run_with_two_threads_emits_no_runtime_warning(data_root: Path, tmp_path: Path) -> None:
    """ExampleHuman through the nuclei and measure tools, ``jobs=2``, warnings as errors."""
    from quantscope.analysis import parse_pipeline, run_pipeline
    from quantscope.catalog import Repository
    from quantscope.ingestion import ingest

    spec = """\
name: w
pixel_size_um: 1.0
channels:
  DNA: [d0, 0]
  PH3: [d1, 1]
steps:
  - id: nuclei
    tool: segment-nuclei
    inputs: {image: DNA}
    parameters: {min_diameter_um: 8.0, max_diameter_um: 80.0}
    outputs: {labels: Nuclei}
  - id: ph3
    tool: segment-nuclei
    inputs: {image: PH3}
    parameters: {threshold_method: otsu, min_diameter_um: 7.0, max_diameter_um: 80.0}
    outputs: {labels: PH3_objects}
  - id: measure
    tool: measure
    inputs: {labels: PH3_objects, images: [DNA, PH3]}
    parameters: {families: [shape, intensity]}
    outputs: {table: PH3_features, summary: Image}
"""
    images = data_root / "cellprofiler_examples" / "ExampleHuman" / "images"
    with Repository.init(tmp_path / "repo") as repo:
        ingest(repo, [images], pattern="{plate}_{well}f{field0}d{channel}", qc=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            report = run_pipeline(repo, parse_pipeline(spec), jobs=2)
        assert report.ok, report.failures
