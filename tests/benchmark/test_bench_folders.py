"""score_folders and bad input: unpaired files, shapes, dtypes, empty images, patterns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _bench_helpers import blobs

from quantscope.benchmark import pair_folders, read_labels, score_folders
from quantscope.errors import CorruptFile, InvalidInput, NotFound


def test_score_folders_matches_by_pattern(label_dirs: Callable[..., tuple[Path, Path]]) -> None:
    a, b = blobs(1), blobs(2)
    t, p = label_dirs({"a": a, "b": b}, {"a_cp_masks": a, "b_cp_masks": b, "zzz": a})
    res = score_folders(t, p, match="{name}_cp_masks")
    assert [it.item for it in res.items] == ["a", "b"]
    assert res.aggregate["mean_ap"].value == 1.0
    assert res.extra == ["zzz.tif"]
    d = res.to_dict()
    assert d["per_image"]["a"]["mean_ap"] == 1.0 and d["n_images"] == 2


def test_missing_prediction_is_an_error_naming_the_file(
    label_dirs: Callable[..., tuple[Path, Path]],
) -> None:
    t, p = label_dirs({"a": blobs(1), "b": blobs(2)}, {"a": blobs(1)})
    with pytest.raises(InvalidInput, match=r"no prediction for 1 of 2.*b \(for b\).*--missing"):
        score_folders(t, p)
    res = score_folders(t, p, missing="empty")
    by = {it.item: it for it in res.items}
    assert by["b"].missing_prediction and by["b"].scores.recall[0] == 0.0
    assert by["a"].scores.mean_ap == 1.0
    assert res.aggregate["mean_ap"].value == 0.5
    with pytest.raises(InvalidInput, match="missing"):
        score_folders(t, p, missing="ignore")


def test_shape_and_dtype_errors_name_the_file(
    label_dirs: Callable[..., tuple[Path, Path]],
) -> None:
    t, p = label_dirs({"a": blobs(1)}, {"a": blobs(1, shape=(64, 60))})
    with pytest.raises(InvalidInput, match=r"pred/a\.tif: shape \(64, 60\) differs"):
        score_folders(t, p)
    t, p = label_dirs({"a": blobs(1)}, {"a": blobs(1).astype(np.float32)})
    with pytest.raises(InvalidInput, match=r"pred/a\.tif: pixels are float32"):
        score_folders(t, p)


def test_empty_truth_and_empty_prediction(label_dirs: Callable[..., tuple[Path, Path]]) -> None:
    empty = np.zeros((32, 32), np.uint16)
    some = blobs(3, (32, 32), 2)
    t, p = label_dirs(
        {"both_empty": empty, "no_truth": empty, "no_pred": some},
        {"both_empty": empty, "no_truth": some, "no_pred": empty},
    )
    res = score_folders(t, p)
    per = res.per_image
    assert per["both_empty"]["mean_ap"] == 1.0 and np.isnan(per["both_empty"]["seg"])
    assert per["no_truth"]["mean_ap"] == 0.0 and per["no_truth"]["fp"] == 2
    assert per["no_pred"]["mean_ap"] == 0.0 and per["no_pred"]["seg"] == 0.0
    assert res.aggregate["seg"].n == 1  # SEG is undefined without truth objects
    assert res.to_dict()["per_image"]["both_empty"]["seg"] is None


def test_folder_errors(tmp_path: Path, label_dirs: Callable[..., tuple[Path, Path]]) -> None:
    with pytest.raises(NotFound, match=r"truth folder .*nope does not exist"):
        score_folders(tmp_path / "nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="holds no label images"):
        score_folders(tmp_path / "empty", tmp_path / "empty")
    t, p = label_dirs({"a": blobs(1)}, {"a": blobs(1)})
    np.save(p / "a.npy", blobs(1))
    with pytest.raises(InvalidInput, match=r"a\.npy and a\.tif have the same name|a\.tif and a"):
        score_folders(t, p)
    with pytest.raises(InvalidInput, match="exactly once"):
        score_folders(t, t, match="{stem}")


def test_label_readers(tmp_path: Path) -> None:
    import imageio.v3 as iio

    lab = blobs(4)
    np.save(tmp_path / "a.npy", lab)
    iio.imwrite(tmp_path / "b.png", lab)
    tifffile.imwrite(tmp_path / "c.ome.tif", lab[None, None], ome=True)
    assert (read_labels(tmp_path / "a.npy") == lab).all()
    assert (read_labels(tmp_path / "b.png") == lab).all()
    assert read_labels(tmp_path / "c.ome.tif").shape == lab.shape
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[2:4, 2:4] = (255, 0, 0)
    rgb[4:6, 4:6] = (0, 255, 0)
    iio.imwrite(tmp_path / "rgb.png", rgb)
    with pytest.raises(InvalidInput, match=r"rgb\.png: a colour image"):
        read_labels(tmp_path / "rgb.png")
    assert np.unique(read_labels(tmp_path / "rgb.png", colour="code")).size == 3
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(CorruptFile, match=r"bad\.tif: cannot read"):
        read_labels(tmp_path / "bad.tif")
    with pytest.raises(NotFound):
        read_labels(tmp_path / "missing.tif")


def test_pair_folders_names_unpaired_files(tmp_path: Path) -> None:
    images, labels = tmp_path / "img", tmp_path / "lab"
    images.mkdir()
    labels.mkdir()
    for n in ("x1", "x2"):
        tifffile.imwrite(images / f"{n}.tif", np.zeros((4, 4), np.uint16))
    tifffile.imwrite(labels / "x1_mask.tif", np.zeros((4, 4), np.uint16))
    with pytest.raises(
        InvalidInput, match=r"no label image for 1 image of .*x2\.tif \(expected x2_mask"
    ):
        pair_folders(labels, images, "{name}_mask")
    tifffile.imwrite(labels / "x2_mask.tif", np.zeros((4, 4), np.uint16))
    tifffile.imwrite(labels / "x3_mask.tif", np.zeros((4, 4), np.uint16))
    with pytest.raises(InvalidInput, match=r"no image for 1 label file of .*x3_mask\.tif"):
        pair_folders(labels, images, "{name}_mask")
    (labels / "x3_mask.tif").unlink()
    pairs = pair_folders(labels, images, "{name}_mask")
    assert [(n, i.name, lab.name) for n, i, lab in pairs] == [
        ("x1", "x1.tif", "x1_mask.tif"),
        ("x2", "x2.tif", "x2_mask.tif"),
    ]
    assert [n for n, _, _ in pair_folders(labels, None, "{name}_mask")] == ["x1", "x2"]
    with pytest.raises(InvalidInput, match="do not fit"):
        pair_folders(labels, None, "{name}_cells")
