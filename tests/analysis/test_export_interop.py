"""What ``quantscope features`` exports is read by the ecosystem's tools as it is: the file
format follows ``--format`` (issue 12 item 7), AnnData's ``var`` describes every feature and
``scanpy.pp.pca`` runs on an export made with ``--drop-uninformative`` (item 11), and the
CellProfiler names of CSV/Parquet exports go into pycytominer's ``aggregate``, ``normalize``
and ``feature_select`` without renaming (item 12).

The fixture: ``quantscope synth`` (a 1x2 plate, 2 sites per well, 128 px) ingested and run
through ``pipelines/nuclei.yaml`` once per module.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import Result

from quantscope.analysis import (
    TableInfo,
    export_table,
    feature_metadata,
    load_pipeline,
    run_pipeline,
    uninformative_columns,
)
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput

pytestmark = pytest.mark.slow  # the module's run of the nuclei pipeline: ~10 s

NUCLEI = Path(__file__).resolve().parents[2] / "pipelines" / "nuclei.yaml"


@pytest.fixture(scope="module")
def nuclei_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A repository with one run of the nuclei pipeline; (root, run id)."""
    from quantscope.ingestion import ingest
    from quantscope.synth import synth_plate

    base = tmp_path_factory.mktemp("export")
    synth_plate(base / "plate", plate="1x2", fields=2, size=128, seed=5, channels=("DAPI",))
    with Repository.init(base / "repo") as repo:
        report = ingest(repo, [base / "plate" / "images"], qc=False)
        assert len(report.added) == 4, report.failed
        run = run_pipeline(repo, load_pipeline(NUCLEI))
        assert run.ok and run.images == 4, run.failures
    return base / "repo", run.run_id


def _export(cli: Callable[..., Result], repo: Path, run_id: str, *args: object) -> Result:
    res = cli("features", repo, run_id, *args)
    assert res.exit_code == 0, res.output
    return res


# ----------------------------------------------------------------------------- item 7
def test_default_file_name_follows_the_format(
    cli: Callable[..., Result],
    nuclei_repo: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, run_id = nuclei_repo
    monkeypatch.chdir(tmp_path)
    res = _export(cli, repo, run_id, "--format", "csv")
    assert "wrote features.csv" in res.stdout
    assert not (tmp_path / "features.parquet").exists()
    table = pd.read_csv(tmp_path / "features.csv")  # CSV text, in a file named .csv
    assert len(table) > 0 and "Metadata_Well" in table
    _export(cli, repo, run_id, "--format", "anndata")
    assert (tmp_path / "features.h5ad").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    _export(cli, repo, run_id)
    assert (tmp_path / "features.parquet").read_bytes()[:4] == b"PAR1"
    # the format follows --out's extension when --format is not given
    _export(cli, repo, run_id, "--out", tmp_path / "cells.h5ad")
    assert (tmp_path / "cells.h5ad").read_bytes()[:4] == b"\x89HDF"


def test_a_file_name_that_contradicts_the_format_is_refused(
    cli: Callable[..., Result], nuclei_repo: tuple[Path, str], tmp_path: Path
) -> None:
    repo, run_id = nuclei_repo
    res = cli("features", repo, run_id, "--format", "csv", "--out", tmp_path / "x.parquet")
    assert res.exit_code == 1
    assert "x.parquet: the extension is for parquet, but --format is csv" in res.stderr
    assert "*.csv" in res.stderr and res.stderr.count("\n") == 1
    res = cli("features", repo, run_id, "--out", tmp_path / "x.txt")
    assert res.exit_code == 1 and "names no format" in res.stderr
    assert not list(tmp_path.iterdir())
    with pytest.raises(InvalidInput, match="extension is for csv, but the format is anndata"):
        export_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv", "anndata")


# ----------------------------------------------------------------------------- item 11
def test_anndata_var_describes_family_channel_and_unit(
    cli: Callable[..., Result], nuclei_repo: tuple[Path, str], tmp_path: Path
) -> None:
    import anndata as ad

    repo, run_id = nuclei_repo
    _export(cli, repo, run_id, "--out", tmp_path / "c.h5ad")
    var = ad.read_h5ad(tmp_path / "c.h5ad").var
    assert {"family", "channel", "unit"} <= set(var.columns)
    expect = {
        "AreaShape_Area": ("AreaShape", "", "px²"),
        "AreaShape_Perimeter": ("AreaShape", "", "px"),
        "AreaShape_Orientation": ("AreaShape", "", "deg"),
        "AreaShape_Eccentricity": ("AreaShape", "", "1"),
        "Intensity_MeanIntensity_DNA": ("Intensity", "DNA", "a.u."),
        "Intensity_MassDisplacement_DNA": ("Intensity", "DNA", "px"),
        "Location_CenterMassIntensity_X_DNA": ("Location", "DNA", "px"),
        "Texture_InfoMeas1_DNA_3_00_256": ("Texture", "DNA", "1"),
        "Granularity_3_DNA": ("Granularity", "DNA", "%"),
        "RadialDistribution_FracAtD_DNA_2of4": ("RadialDistribution", "DNA", "1"),
        "RadialDistribution_ZernikePhase_DNA_6_2": ("RadialDistribution", "DNA", "rad"),
        "Neighbors_FirstClosestDistance_Adjacent": ("Neighbors", "", "px"),
        "Neighbors_PercentTouching_Adjacent": ("Neighbors", "", "%"),
    }
    for name, (family, channel, unit) in expect.items():
        row = var.loc[name]
        assert (row["family"], row["channel"], row["unit"]) == (family, channel, unit), name
    assert (var["family"] != "").all() and (var["unit"] != "").all()
    assert set(var.loc[var["family"].isin(["Intensity", "Texture"]), "channel"]) == {"DNA"}
    assert (var["object"] == "Nuclei").all()


def test_feature_metadata_from_names_and_settings() -> None:
    info = TableInfo(object_name="Cells", channels=("Orig_DNA", "GFP"), length_unit="µm")
    meta = feature_metadata(
        [
            "Intensity_MeanIntensity_Orig_DNA",
            "Cells_Texture_Contrast_GFP_3_00_256",
            "AreaShape_Area",
            "Mean_Cells_AreaShape_MajorAxisLength",
            "Count_Cells",
            "AreaShape_CentralMoment_1_2",
        ],
        info,
    )
    assert meta["channel"].tolist() == ["Orig_DNA", "GFP", "", "", "", ""]
    assert meta["unit"].tolist() == ["a.u.", "1", "µm²", "µm", "1", "px³"]
    assert meta["family"].tolist()[-3:] == ["AreaShape", "Count", "AreaShape"]
    # without declared channels, the name patterns of the families find them
    bare = feature_metadata(["Granularity_2_Hoechst_33342", "RadialDistribution_MeanFrac_w1_3of4"])
    assert bare["channel"].tolist() == ["Hoechst_33342", "w1"]


def test_scanpy_pca_runs_on_the_export_as_it_is(
    cli: Callable[..., Result], nuclei_repo: tuple[Path, str], tmp_path: Path
) -> None:
    import anndata as ad
    import scanpy as sc

    repo, run_id = nuclei_repo
    _export(cli, repo, run_id, "--out", tmp_path / "all.h5ad")
    full = ad.read_h5ad(tmp_path / "all.h5ad")
    x = np.asarray(full.X)
    nan = np.isnan(x).all(axis=0)
    assert nan.any()  # the synthetic run has all-NaN features...
    assert (x[:, ~nan].max(axis=0) == x[:, ~nan].min(axis=0)).any()  # ...and constant ones
    with pytest.raises(ValueError, match="NaN"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sc.pp.pca(full)  # what a user met before the option

    res = _export(cli, repo, run_id, "--out", tmp_path / "pca.h5ad", "--drop-uninformative")
    adata = ad.read_h5ad(tmp_path / "pca.h5ad")
    dropped = {k: list(v) for k, v in adata.uns["quantscope_dropped"].items()}
    gone = {c for v in dropped.values() for c in v}
    assert f"{len(gone)} uninformative features left out" in res.stdout
    assert set(adata.var_names) == set(full.var_names) - gone
    assert "AreaShape_NormalizedMoment_0_0" in dropped["all_nan"]
    assert "AreaShape_EulerNumber" in dropped["constant"]
    assert {"AreaShape_Area", "Intensity_MeanIntensity_DNA"} <= set(adata.var_names)
    sc.pp.pca(adata)
    assert adata.obsm["X_pca"].shape[0] == adata.n_obs
    assert np.isfinite(adata.obsm["X_pca"]).all()
    assert {"family", "channel", "unit"} <= set(adata.var.columns)


def test_uninformative_columns_never_lists_metadata() -> None:
    df = pd.DataFrame(
        {
            "image_id": ["a", "a"],
            "field": [1, 1],
            "ObjectNumber": [1, 2],
            "Metadata_Site": [1, 1],
            "AreaShape_Area": [1.0, 2.0],
            "constant": [3.0, 3.0],
            "nan": [np.nan, np.nan],
            "partial": [np.inf, 1.0],
        }
    )
    assert uninformative_columns(df) == {
        "all_nan": ["nan"],
        "constant": ["constant"],
        "not_finite": ["partial"],
    }


# ----------------------------------------------------------------------------- item 12
def test_cellprofiler_names_by_default_for_csv_and_parquet(
    cli: Callable[..., Result], nuclei_repo: tuple[Path, str], tmp_path: Path
) -> None:
    repo, run_id = nuclei_repo
    _export(cli, repo, run_id, "--out", tmp_path / "cells.parquet")
    _export(cli, repo, run_id, "--table", "Image", "--out", tmp_path / "image.csv")
    cells = pd.read_parquet(tmp_path / "cells.parquet")
    image = pd.read_csv(tmp_path / "image.csv")
    meta = ["Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_ImageNumber"]
    assert list(cells.columns[:4]) == meta and list(image.columns[:4]) == meta
    assert "Metadata_ObjectNumber" in cells and "Metadata_ImageID" in cells
    features = [c for c in cells.columns if not c.startswith("Metadata_")]
    assert all(c.startswith("Nuclei_") for c in features)
    assert {"Nuclei_AreaShape_Area", "Nuclei_Intensity_MeanIntensity_DNA"} <= set(features)
    with Repository.open(repo) as r:
        positions = {(i.position.well, i.position.field) for i in r.images.all() if i.position}
    # Metadata_Site is the site number of the catalog (the same convention as `ls`/`show`)
    assert set(zip(cells["Metadata_Well"], cells["Metadata_Site"], strict=True)) == positions
    assert set(cells["Metadata_Site"]) == set(image["Metadata_Site"]) == {1, 2}  # 1-based sites
    # per image: Count_<Object>, Mean_<Object>_<Feature>, joined by Metadata_ImageNumber
    assert {"Count_Nuclei", "Mean_Nuclei_AreaShape_Area", "Median_Nuclei_AreaShape_Area"} <= set(
        image.columns
    )
    per_image = cells.groupby("Metadata_ImageNumber")
    joined = image.set_index("Metadata_ImageNumber")
    pd.testing.assert_series_equal(
        per_image.size().astype(float),
        joined["Count_Nuclei"].astype(float).loc[per_image.size().index],
        check_names=False,
    )
    np.testing.assert_allclose(
        per_image["Nuclei_AreaShape_Area"].mean().to_numpy(),
        joined.loc[per_image.size().index, "Mean_Nuclei_AreaShape_Area"].to_numpy(),
    )
    # quantscope's own names on request
    _export(cli, repo, run_id, "--naming", "quantscope", "--out", tmp_path / "q.csv")
    assert list(pd.read_csv(tmp_path / "q.csv").columns[:4]) == [
        "image_id",
        "plate",
        "well",
        "field",
    ]


def test_pycytominer_takes_the_export_without_renaming(
    cli: Callable[..., Result], nuclei_repo: tuple[Path, str], tmp_path: Path
) -> None:
    from pycytominer import aggregate, feature_select, normalize

    repo, run_id = nuclei_repo
    _export(cli, repo, run_id, "--format", "csv", "--out", tmp_path / "cells.csv")
    _export(cli, repo, run_id, "--table", "Image", "--out", tmp_path / "image.csv")
    cells = pd.read_csv(tmp_path / "cells.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' fragmentation and sklearn's 0/0 notes
        profiles = aggregate(cells)  # strata Metadata_Plate, Metadata_Well; features inferred
        assert sorted(profiles["Metadata_Well"]) == sorted(cells["Metadata_Well"].unique())
        assert "Nuclei_AreaShape_Area" in profiles
        counted = aggregate(
            cells,
            strata=["Metadata_Plate", "Metadata_Well", "Metadata_Site"],
            compute_object_count=True,
        )
        assert counted["Metadata_Object_Count"].sum() == len(cells)
        normalized = normalize(profiles, samples="all", method="standardize")
        assert normalized.shape == profiles.shape
        selected = feature_select(
            normalized, operation=["variance_threshold", "drop_na_columns", "blocklist"]
        )
        assert 0 < selected.shape[1] < normalized.shape[1]
        assert {"Metadata_Plate", "Metadata_Well"} <= set(selected.columns)
        # single cells too, and the per-image table with its features named
        assert normalize(cells, samples="all").shape == cells.shape
        image = pd.read_csv(tmp_path / "image.csv")
        per_well = aggregate(
            image, features=[c for c in image if c.startswith(("Count_", "Mean_"))]
        )
        assert len(per_well) == image["Metadata_Well"].nunique()
