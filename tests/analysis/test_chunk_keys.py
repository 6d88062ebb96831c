"""One chunk-key encoding for every array quantscope writes (issue 12, item 15): images,
pyramid levels, illumination profiles and label images all use the image writer's
``{"name": "default", "configuration": {"separator": "."}}``."""

from __future__ import annotations

import json
from pathlib import Path

from quantscope.analysis import parse_pipeline, run_pipeline
from quantscope.catalog import Repository

PIPELINE = """\
name: keys
channels:
  DNA: [DNA, d0, 0]
  PH3: [PH3, d1, 1]
steps:
  - id: nuclei
    tool: segment-nuclei
    inputs: {image: DNA}
    outputs: {labels: Nuclei}
  - id: ph3
    tool: segment-nuclei
    inputs: {image: PH3}
    outputs: {labels: PH3_objects}
"""

DOT = {"name": "default", "configuration": {"separator": "."}}


def _encodings(root: Path) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for f in sorted(root.rglob("zarr.json")):
        doc = json.loads(f.read_text())
        if doc.get("node_type") == "array":
            key = json.dumps(doc["chunk_key_encoding"], sort_keys=True)
            seen.setdefault(key, []).append(str(f.relative_to(root)))
    return seen


def test_images_and_labels_share_one_chunk_key_encoding(data_root: Path, tmp_path: Path) -> None:
    from quantscope.ingestion import ingest

    images = data_root / "cellprofiler_examples" / "ExampleHuman" / "images"
    with Repository.init(tmp_path / "repo") as repo:
        ingest(repo, [images], pattern="{plate}_{well}f{field0}d{channel}", qc=False)
        report = run_pipeline(repo, parse_pipeline(PIPELINE), jobs=2, pixel_size_um=1.0)
        assert report.ok, report.failures
        seen = _encodings(repo.root)
    labels = [p for paths in seen.values() for p in paths if "/labels/" in p]
    assert len(labels) >= 2  # both label images, every level
    assert list(seen) == [json.dumps(DOT, sort_keys=True)], {k: v[:3] for k, v in seen.items()}


def test_label_chunks_are_files_named_as_the_image_writer_names_them(tmp_path: Path) -> None:
    import numpy as np

    from quantscope.analysis import write_labels
    from quantscope.ingestion import ingest
    from quantscope.io._zarr_writer import chunk_path
    from quantscope.synth import synth_plate

    synth_plate(tmp_path / "p", plate="1x1", fields=1, size=64, seed=1, channels=("DAPI",))
    with Repository.init(tmp_path / "repo") as repo:
        (img,) = ingest(repo, [tmp_path / "p" / "images"], qc=False).added
        lab = np.zeros(img.shape[3:], np.int32)
        lab[5:20, 5:20] = 1
        out = write_labels(repo.root, img.store_path, "Nuclei", lab)
        assert (repo.root / out.path / chunk_path(0, (0, 0, 0, 0, 0))).is_file()
        assert (repo.root / img.store_path / chunk_path(0, (0, 0, 0, 0, 0))).is_file()
