"""Fixtures of the QC orchestration tests: real data, a synthetic plate with blurred fields, and
repositories ingested once per module (ingest and QC are the slow part)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Fields (index into SynthResult.fields) replaced by their defocused (blur 4 px) versions.
BLURRED = (1, 6)


@pytest.fixture(scope="module")
def synth_blurred(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A 2x3 plate, 2 fields per well, DAPI + GFP, 256 px, seed 5: 12 fields, of which two
    (A01 s2, B01 s1) are the same cells rendered with 4 px of extra defocus blur.

    Returns the images folder and the names of the blurred fields (``synth_A01_s2``...).
    Seed 5 gives a clean plate with no flag at all (other seeds give a few false warnings from
    the calibration of the quality library, which is not what these tests are about).
    """
    from quantscope.synth import SynthOptions, synth_plate

    base = tmp_path_factory.mktemp("synth")
    opts = SynthOptions(plate="2x3", fields=2, size=256, seed=5)
    sharp = synth_plate(base / "sharp", opts)
    blurred = synth_plate(base / "blurred", opts, blur=4.0)
    names = set()
    for i in BLURRED:
        names.add(blurred.fields[i].name)
        for p in blurred.fields[i].images:
            shutil.copy(p, sharp.images_dir / p.name)
    return sharp.images_dir, names
