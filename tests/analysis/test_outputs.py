"""Stored outputs: label images are NGFF 0.5 image-labels inside the image's OME-Zarr (valid per
ome-zarr-models and readable by ome-zarr-py), written atomically; tables are Parquet."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from quantscope.analysis import (
    export_table,
    labels_digest,
    read_labels,
    read_table,
    to_anndata,
    write_labels,
    write_table,
)
from quantscope.analysis._outputs import remove_partial
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput


def _labels(shape: tuple[int, int]) -> np.ndarray:
    lab = np.zeros(shape, np.int32)
    lab[10:30, 10:25] = 1
    lab[40:60, 50:90] = 7  # labels need not be contiguous
    lab[100:, 100:] = 3  # touches the border
    return lab


def test_labels_are_valid_ngff_image_labels_and_read_back(analysis_repo: Repository) -> None:
    from ome_zarr_models.v05.image_label import ImageLabel
    from ome_zarr_models.v05.labels import Labels

    img = analysis_repo.images.all()[0]
    shape = img.shape[3:]
    lab = _labels(shape)
    out = write_labels(analysis_repo.root, img.store_path, "Nuclei-abc", lab)
    assert out.path == f"{img.store_path}/labels/Nuclei-abc"
    assert out.n_objects == 3 and out.sha256 == labels_digest(lab) and out.size > 0
    np.testing.assert_array_equal(read_labels(analysis_repo.root, out.path), lab)
    group = analysis_repo.root / img.store_path / "labels"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels_model = Labels.from_zarr(zarr.open_group(str(group), mode="r"))
        model = ImageLabel.from_zarr(zarr.open_group(str(group / "Nuclei-abc"), mode="r"))
    assert labels_model.ome_attributes.labels == ["Nuclei-abc"]
    ms = model.ome_attributes.multiscales[0]
    assert [a.name for a in ms.axes] == ["t", "c", "z", "y", "x"]
    # same levels and scales as the image
    image_ms = json.loads((analysis_repo.root / img.store_path / "zarr.json").read_text())
    image_ds = image_ms["attributes"]["ome"]["multiscales"][0]["datasets"]
    assert [d.model_dump(mode="json")["coordinateTransformations"] for d in ms.datasets] == [
        d["coordinateTransformations"] for d in image_ds
    ]
    # every level keeps label values (nearest-neighbour pyramid)
    for level in range(len(ms.datasets)):
        arr = zarr.open_array(str(group / "Nuclei-abc" / str(level)), mode="r")
        assert arr.dtype == np.int32
        assert set(np.unique(arr[...])) <= {0, 1, 3, 7}


def test_labels_open_with_ome_zarr_py(analysis_repo: Repository) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    img = analysis_repo.images.all()[0]
    write_labels(analysis_repo.root, img.store_path, "cells", _labels(img.shape[3:]))
    path = analysis_repo.root / img.store_path / "labels" / "cells"
    nodes = list(Reader(parse_url(str(path)))())
    # ome-zarr-py follows image-label.source to the parent image, then reads the labels
    label = next(n for n in nodes if any(type(s).__name__ == "Label" for s in n.specs))
    assert "labels/cells" in str(label.zarr)
    assert np.asarray(label.data[0]).max() == 7
    assert np.asarray(nodes[0].data[0]).shape[-2:] == np.asarray(label.data[0]).shape[-2:]


def test_a_second_label_image_is_added_to_the_group(analysis_repo: Repository) -> None:
    img = analysis_repo.images.all()[0]
    lab = _labels(img.shape[3:])
    write_labels(analysis_repo.root, img.store_path, "a", lab)
    write_labels(analysis_repo.root, img.store_path, "b", lab)
    write_labels(analysis_repo.root, img.store_path, "a", lab)  # replaced, listed once
    doc = json.loads((analysis_repo.root / img.store_path / "labels" / "zarr.json").read_text())
    assert doc["attributes"]["ome"]["labels"] == ["a", "b"]


def test_bad_label_images_are_refused_and_leave_nothing(analysis_repo: Repository) -> None:
    img = analysis_repo.images.all()[0]
    with pytest.raises(InvalidInput, match="shape"):
        write_labels(analysis_repo.root, img.store_path, "x", np.zeros((5, 5), np.int32))
    with pytest.raises(InvalidInput, match="2-D integer"):
        write_labels(analysis_repo.root, img.store_path, "x", np.zeros(img.shape[3:], np.float32))
    with pytest.raises(InvalidInput, match="outside"):
        write_labels(analysis_repo.root, img.store_path, "x", -np.ones(img.shape[3:], np.int64))
    group = analysis_repo.root / img.store_path / "labels"
    assert not (group / "x").exists()
    assert not list(group.glob(".*tmp*")) if group.exists() else True


def test_leftovers_of_interrupted_writes_are_removed(analysis_repo: Repository) -> None:
    """remove_partial removes temporary entries (the executor calls it at the start of a run,
    under the write lock); write_labels itself leaves them: they may be another writer's."""
    img = analysis_repo.images.all()[0]
    group = analysis_repo.root / img.store_path / "labels"
    group.mkdir()
    (group / ".Nuclei.tmp-123").mkdir()
    (group / ".Nuclei.tmp-123" / "zarr.json").write_text("{")
    write_labels(analysis_repo.root, img.store_path, "Nuclei", _labels(img.shape[3:]))
    assert (group / ".Nuclei.tmp-123").exists()
    assert remove_partial(group) == [group / ".Nuclei.tmp-123"]
    assert remove_partial(group) == []
    assert (group / "Nuclei" / "zarr.json").is_file()


def test_tables_are_written_atomically_with_their_checksum(tmp_path: Path) -> None:
    df = pd.DataFrame({"ObjectNumber": [1, 2], "AreaShape_Area": [10.0, np.nan]})
    out = write_table(tmp_path, "tables/r/x/img.parquet", df)
    data = (tmp_path / out.path).read_bytes()
    assert out.sha256 == hashlib.sha256(data).hexdigest() and out.size == len(data)
    pd.testing.assert_frame_equal(read_table(tmp_path, out.path), df)
    assert [p.name for p in (tmp_path / "tables/r/x").iterdir()] == ["img.parquet"]

    class Boom(pd.DataFrame):
        def to_parquet(self, *a: object, **k: object) -> None:  # type: ignore[override]
            Path(str(a[0])).write_bytes(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_table(tmp_path, "tables/r/x/other.parquet", Boom(df))
    assert [p.name for p in (tmp_path / "tables/r/x").iterdir()] == ["img.parquet"]


def test_anndata_has_objects_as_obs_and_features_as_var(tmp_path: Path) -> None:
    import anndata as ad

    df = pd.DataFrame(
        {
            "image_id": ["a", "a", "b"],
            "plate": ["P", "P", "P"],
            "well": ["A01", "A01", "B02"],
            "field": [0, 0, 1],
            "ObjectNumber": [1, 2, 1],
            "Location_Center_X": [1.0, 2.0, 3.0],
            "Location_Center_Y": [4.0, 5.0, 6.0],
            "AreaShape_Area": [10, 20, 30],
            "Intensity_MeanIntensity_DNA": [0.1, np.nan, 0.3],
        }
    )
    adata = to_anndata(df, {"run": "r1"})
    assert list(adata.obs_names) == ["a_1", "a_2", "b_1"]
    assert list(adata.var_names) == ["AreaShape_Area", "Intensity_MeanIntensity_DNA"]
    assert list(adata.obs["well"]) == ["A01", "A01", "B02"]
    path = export_table(df, tmp_path / "f.h5ad", "anndata", {"run": "r1"})
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.X, adata.X)
    assert back.uns["run"] == "r1" and back.obs["ObjectNumber"].tolist() == [1, 2, 1]
    with pytest.raises(InvalidInput, match="format"):
        export_table(df, tmp_path / "f.xlsx", "xlsx")


def test_verify_output_detects_changed_and_missing_outputs(analysis_repo: Repository) -> None:
    from quantscope.analysis import verify_output

    img = analysis_repo.images.all()[0]
    lab = _labels(img.shape[3:])
    out = write_labels(analysis_repo.root, img.store_path, "v", lab)
    assert verify_output(analysis_repo.root, "labels", out.path, out.sha256) is None
    lab[0, 0] = 9
    write_labels(analysis_repo.root, img.store_path, "v", lab)  # same path, other values
    assert "differs from the recorded" in (
        verify_output(analysis_repo.root, "labels", out.path, out.sha256) or ""
    )
    table = write_table(analysis_repo.root, "tables/r/t.parquet", pd.DataFrame({"a": [1]}))
    assert verify_output(analysis_repo.root, "table", table.path, table.sha256) is None
    (analysis_repo.root / table.path).write_bytes(b"flipped")
    assert "differs" in (verify_output(analysis_repo.root, "table", table.path, table.sha256) or "")
    (analysis_repo.root / table.path).unlink()
    assert verify_output(analysis_repo.root, "table", table.path, table.sha256) == (
        f"{table.path}: missing"
    )
