"""``quantscope synth`` -> ``ingest`` -> ``run pipelines/nuclei.yaml`` (what ``make demo`` does):
object counts and areas match the synthetic plate's exact ground truth.

Tolerances: the number of nuclei per field is exact; every true nucleus is matched one-to-one by
its largest overlap; per-nucleus area (``AreaShape_Area``, px) within 5 % in the median and 12 %
at the 90th percentile (the rendered nuclei have blurred, noisy edges, so the outline found by
thresholding moves by about half a pixel); total area per field within 5 %.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import Result

from quantscope.analysis import read_labels, read_table
from quantscope.catalog import Repository

pytestmark = pytest.mark.slow

NUCLEI = Path(__file__).resolve().parents[2] / "pipelines" / "nuclei.yaml"


def test_synthetic_plate_counts_and_areas_match_the_ground_truth(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    from quantscope.synth import synth_plate

    plate = tmp_path / "plate"
    res = cli("synth", plate, "--plate", "1x3", "--fields", "1", "--size", "256", "--seed", "11")
    assert res.exit_code == 0, res.output
    truth = synth_plate(tmp_path / "again", plate="1x3", fields=1, size=256, seed=11)
    assert cli("init", tmp_path / "repo").exit_code == 0
    res = cli("ingest", tmp_path / "repo", plate / "images", "--no-qc")
    assert res.exit_code == 0, res.output
    res = cli("run", tmp_path / "repo", NUCLEI, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["images"] == 3 and report["failed"] == 0

    with Repository.open(tmp_path / "repo") as repo:
        table = read_table(repo.root, report["tables"]["Nuclei_features"])
        summary = read_table(repo.root, report["tables"]["Image"])
        images = {i.id: i for i in repo.images.all()}
        arts = [a for a in repo.runs.artifacts(report["run_id"]) if a.kind == "labels"]
        assert len(arts) == 3
        for a in arts:
            img = images[a.image_id]
            assert img.position is not None
            field = next(f for f in truth.fields if f.well == img.position.well)
            true_labels = tifffile.imread(field.nuclei_labels)
            seg = read_labels(repo.root, a.path)
            rows = table[table["image_id"] == img.id].set_index("ObjectNumber")
            assert len(rows) == a.n_objects == field.n_objects
            assert summary.loc[summary["image_id"] == img.id, "Count"].item() == field.n_objects
            matched = []
            errors = []
            for k, area in enumerate(field.nucleus_areas, start=1):
                ids, counts = np.unique(seg[true_labels == k], return_counts=True)
                counts, ids = counts[ids > 0], ids[ids > 0]
                assert len(ids), f"{img.name}: true nucleus {k} not found"
                best = int(ids[counts.argmax()])
                matched.append(best)
                errors.append(rows.loc[best, "AreaShape_Area"] / area - 1)
            assert len(set(matched)) == len(matched), "two true nuclei share one object"
            errors_abs = np.abs(errors)
            assert np.median(errors_abs) <= 0.05, (img.name, np.median(errors_abs))
            assert np.percentile(errors_abs, 90) <= 0.12, (img.name, np.percentile(errors_abs, 90))
            total = rows["AreaShape_Area"].sum() / sum(field.nucleus_areas)
            assert abs(total - 1) <= 0.05, (img.name, total)
