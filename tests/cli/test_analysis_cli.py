"""``quantscope tools | run | runs | features | provenance`` through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _analysis_support import (
    FAIL_LIST_ENV,
    pipeline_text,
)
from quantscope.analysis import (
    ENTRY_POINT_GROUP,
    _registry,
)

pytestmark = pytest.mark.usefixtures("analysis_tools")


def test_tools_lists_tools_with_parameters(qs: Callable[..., object]) -> None:
    r = qs("tools")
    assert r.code == 0, r.err
    for name in (
        "segment-nuclei",
        "segment-cells",
        "cytoplasm",
        "measure",
        "illumination-correction",
    ):
        assert name in r.out
    assert "min_diameter_um" in r.out and "texture_scale" in r.out
    from quantscope.analysis._builtin import BUILTIN_VERSION

    assert (
        f"cellpose {BUILTIN_VERSION} (unavailable)" in r.out
        or f"cellpose {BUILTIN_VERSION}\n" in r.out
    )
    j = qs("tools", "--json")
    tools = {d["name"]: d for d in json.loads(j.out)}
    p = {x["name"]: x for x in tools["measure"]["parameters"]}
    assert p["texture_scale"] == {
        "name": "texture_scale",
        "type": "integer",
        "default": 3,
        "required": False,
        "minimum": 1,
        "maximum": 64,
        "unit": "px",
        "description": "Haralick co-occurrence distance",
    }
    assert tools["segment-nuclei"]["status"] == "ok"


def test_tools_warns_about_a_broken_plugin_and_lists_the_rest(
    qs: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = metadata.entry_points
    bad = metadata.EntryPoint(name="bad-plugin", value="nope_mod:X", group=ENTRY_POINT_GROUP)

    def entry_points(**kw: object) -> object:
        found = list(real(**kw))  # type: ignore[arg-type]
        return [*found, bad] if kw.get("group") == ENTRY_POINT_GROUP else found

    monkeypatch.setattr(_registry.importlib_metadata, "entry_points", entry_points)
    try:
        r = qs("tools")
        assert r.code == 0
        assert "warning: quantscope tool plugin 'bad-plugin' (nope_mod:X" in r.err
        assert "bad-plugin (broken)" in r.out and "segment-nuclei" in r.out
    finally:
        _registry._cache = None


def test_run_twice_then_features_and_provenance(
    qs: Callable[..., object], analysis_root: Path, pipeline_spec: Path, tmp_path: Path
) -> None:
    import anndata as ad

    r = qs("run", analysis_root, pipeline_spec)
    assert r.code == 0, r.err
    assert "3 images; steps computed 6, reused 0, failed 0, skipped 0" in r.out
    assert "table Nuclei_features: tables/" in r.out
    r2 = qs("run", analysis_root, pipeline_spec, "--json", "--jobs", "1")
    report = json.loads(r2.out)
    assert (report["computed"], report["reused"], report["status"]) == (0, 6, "completed")
    runs = json.loads(qs("runs", analysis_root, "--json").out)
    assert [x["id"] for x in runs] == [report["run_id"], runs[1]["id"]]
    from quantscope.catalog import Repository

    with Repository.open(analysis_root) as repo:  # the records as they are, dates as text
        records = [x.to_dict() for x in repo.runs.all()]
    assert runs == json.loads(json.dumps(records, default=str))
    assert set(runs[0]) >= {"pipeline_name", "spec_hash", "started_at", "software", "spec"}
    assert "completed" in qs("runs", analysis_root).out

    pq = tmp_path / "f.parquet"
    r = qs(
        "features", analysis_root, report["run_id"][:8], "--format", "parquet", "--out", pq,
        "--naming", "quantscope",
    )  # fmt: skip
    assert r.code == 0, r.err
    table = pd.read_parquet(pq)
    assert list(table.columns[:5]) == ["image_id", "plate", "well", "field", "ObjectNumber"]
    assert table["image_id"].nunique() == 3 and f"{len(table)} objects" in r.out
    csv = tmp_path / "f.csv"
    r = qs("features", analysis_root, "latest", "-f", "csv", "-o", csv, "--naming", "quantscope")
    assert r.code == 0, r.err
    pd.testing.assert_frame_equal(pd.read_csv(csv), table, check_dtype=False)
    h5 = tmp_path / "f.h5ad"
    assert qs("features", analysis_root, "latest", "--format", "anndata", "--out", h5).code == 0
    adata = ad.read_h5ad(h5)
    assert adata.n_obs == len(table)
    assert {"image_id", "plate", "well", "field", "ObjectNumber", "Location_Center_X"} <= set(
        adata.obs.columns
    )
    assert list(adata.var_names) == ["AreaShape_Area", "Intensity_MeanIntensity_DNA"]
    np.testing.assert_allclose(adata.X[:, 0], table["AreaShape_Area"])
    assert adata.uns["quantscope_run"] == report["run_id"]
    # scverse tools take it as it is
    adata.obs_names_make_unique()
    assert adata.obs_names.is_unique

    # provenance of a label image, by path
    labels = next(
        p
        for p in (analysis_root / "plates").rglob("labels/Nuclei-*")
        if p.is_dir() and "." not in p.name
    )
    rel = labels.relative_to(analysis_root)
    r = qs("provenance", analysis_root, rel)
    assert r.code == 0, r.err
    assert "generated by step seg: test-threshold 0.1 (min_area=4)" in r.out
    assert "source file" in r.out and ".ome.tif" in r.out
    assert "checksum verified" in r.out
    doc = json.loads(qs("provenance", analysis_root, rel, "--json").out)
    assert doc["path"] == str(rel)
    part = next(analysis_root.rglob("tables/*/Nuclei_features/*.parquet"))
    part.write_bytes(part.read_bytes()[:-1] + b"\0")
    r = qs("provenance", analysis_root, part.relative_to(analysis_root))
    assert r.code == 0 and "differs from the recorded" in r.out
    t = qs("provenance", analysis_root, report["tables"]["Nuclei_features"])
    assert "3 per-image parts" in t.out
    prov = json.loads(qs("provenance", analysis_root, runs[1]["id"], "--prov").out)
    assert {"entity", "activity", "agent", "used", "wasGeneratedBy", "wasAssociatedWith"} <= set(
        prov
    )


def test_run_reports_failures_and_exits_1(
    qs: Callable[..., object],
    analysis_root: Path,
    pipeline_spec: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(f"sqlite:///{analysis_root / 'catalog.sqlite'}")
    with eng.connect() as conn:
        bad = conn.execute(sa.text("SELECT id FROM images ORDER BY id LIMIT 1")).scalar_one()
    eng.dispose()
    monkeypatch.setenv(FAIL_LIST_ENV, bad)
    r = qs("run", analysis_root, pipeline_spec)
    assert r.code == 1
    assert "failed: synth_A0" in r.err and f"({bad}) step seg: deliberate test failure" in r.err
    assert "skipped:" in r.err
    assert "failed 1, skipped 1" in r.out


def test_errors_are_one_line(
    qs: Callable[..., object], analysis_root: Path, pipeline_spec: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(pipeline_text(min_area=-1))
    r = qs("run", analysis_root, bad)
    assert r.code == 1 and r.err.count("\n") == 1
    assert f"error: {bad}:8: step 'seg' (test-threshold): parameter 'min_area'" in r.err
    r = qs("run", analysis_root, tmp_path / "missing.yaml")
    assert r.code == 1 and "pipeline file not found" in r.err
    r = qs("run", tmp_path / "norepo", pipeline_spec)
    assert r.code == 1 and "not a quantscope repository" in r.err
    r = qs("features", analysis_root, "0000", "--out", tmp_path / "x.parquet")
    assert r.code == 1 and "no analysis run '0000'" in r.err
    assert qs("run", analysis_root, pipeline_spec).code == 0
    r = qs("features", analysis_root, "latest", "--format", "xlsx", "--out", tmp_path / "x.xlsx")
    assert r.code == 1 and "--format 'xlsx'" in r.err
    r = qs("features", analysis_root, "latest", "--table", "Cells", "--out", tmp_path / "x.parquet")
    assert r.code == 1 and "has no table 'Cells' (its tables: Nuclei_features)" in r.err
    r = qs("provenance", analysis_root, "plates/none")
    assert r.code == 1 and "no registered analysis artifact" in r.err
