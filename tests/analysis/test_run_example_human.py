"""CellProfiler's ExampleHuman runs end to end through pipelines/example_human.yaml: three
channel files ingested as one image, nuclei, PH3 objects, cells, cytoplasm, measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantscope.analysis import load_pipeline, read_labels, read_table, run_pipeline
from quantscope.catalog import Repository
from quantscope.ingestion import ingest

pytestmark = pytest.mark.slow

PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "example_human.yaml"


def test_example_human_end_to_end(data_root: Path, tmp_path: Path) -> None:
    images = data_root / "cellprofiler_examples" / "ExampleHuman" / "images"
    with Repository.init(tmp_path / "repo") as repo:
        added = ingest(repo, [images], pattern="{plate}_{well}f{field0}d{channel}", qc=False).added
        assert len(added) == 1 and added[0].shape[1] == 3
        report = run_pipeline(repo, load_pipeline(PIPELINE), jobs=2)
        assert report.ok and report.computed == 7, report.failures
        arts = {a.output: a for a in repo.runs.artifacts(report.run_id)}
        nuclei = read_labels(repo.root, arts["Nuclei"].path)
        cells = read_labels(repo.root, arts["Cells"].path)
        cyto = read_labels(repo.root, arts["Cytoplasm"].path)
        ph3 = read_labels(repo.root, arts["PH3_objects"].path)
        # a few hundred nuclei (CellProfiler finds about 290 in this field), few mitotic
        n = len(np.unique(nuclei)) - 1
        assert 200 <= n <= 400, n
        assert 1 <= len(np.unique(ph3)) - 1 < n / 4
        # cells are numbered as their nuclei and contain them; cytoplasm = cell - nucleus
        assert set(np.unique(cells)) == set(np.unique(nuclei))
        inside = nuclei > 0
        assert np.array_equal(cells[inside], nuclei[inside])
        assert not (cyto[inside] > 0).any()
        assert ((cyto > 0) <= (cells > 0)).all()
        assert (cells > 0).sum() > 2 * inside.sum()
        # nuclei touching the border are discarded, as in the .cppipe
        edge = np.concatenate([nuclei[0], nuclei[-1], nuclei[:, 0], nuclei[:, -1]])
        assert not edge.any()
        for name, labels in (("Nuclei", nuclei), ("Cells", cells), ("Cytoplasm", cyto)):
            t = read_table(repo.root, report.tables[f"{name}_features"])
            assert len(t) == len(np.unique(labels)) - 1
            for col in (
                "AreaShape_Area",
                "AreaShape_Zernike_0_0",
                "Intensity_IntegratedIntensity_DNA",
                "Intensity_MeanIntensity_PH3",
            ):
                assert col in t.columns, (name, col)
            assert "AreaShape_SpatialMoment_0_0" not in t.columns  # advanced features: No
            areas = dict(zip(t["ObjectNumber"], t["AreaShape_Area"], strict=True))
            counts = np.bincount(labels.ravel())
            assert all(areas[k] == counts[k] for k in list(areas)[:20])
