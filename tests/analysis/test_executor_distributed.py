"""``--scheduler``: the same work on a real multi-process ``distributed.LocalCluster`` gives the
same outputs as the local scheduler."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from _analysis_support import fixture_repo
from quantscope.analysis import parse_pipeline, read_labels, read_table, run_pipeline
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput

pytestmark = pytest.mark.slow

SPEC = """\
name: distributed
pixel_size_um: 0.65
channels: {DNA: [DAPI, 0]}
steps:
  - id: nuclei
    tool: segment-nuclei
    inputs: {image: DNA}
    outputs: {labels: Nuclei}
  - id: measure
    tool: measure
    inputs: {labels: Nuclei, images: [DNA]}
    parameters: {families: [shape, intensity]}
    outputs: {table: Nuclei_features, summary: Image}
"""


def test_a_local_cluster_of_two_processes_computes_the_same_outputs(
    analysis_repo: Repository, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    spec = parse_pipeline(SPEC)
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit="1GiB",
    ) as cluster:
        report = run_pipeline(analysis_repo, spec, scheduler=cluster.scheduler_address)
        assert report.ok and (report.computed, report.images) == (6, 3)
        run = analysis_repo.runs.get(report.run_id)
        assert run.scheduler == cluster.scheduler_address
        again = run_pipeline(analysis_repo, spec, scheduler=cluster.scheduler_address)
        assert again.computed == 0 and again.reused == 6
    # the same pipeline on the local scheduler, in another copy of the repository
    local_dir = tmp_path / "local"
    local = next(fixture_repo(tmp_path_factory, local_dir))
    ref = run_pipeline(local, spec, jobs=2)
    a = read_table(analysis_repo.root, report.tables["Nuclei_features"]).sort_values(
        ["image_id", "ObjectNumber"], ignore_index=True
    )
    b = read_table(local.root, ref.tables["Nuclei_features"]).sort_values(
        ["image_id", "ObjectNumber"], ignore_index=True
    )
    pd.testing.assert_frame_equal(a, b)
    la = {x.image_id: x for x in analysis_repo.runs.artifacts(report.run_id) if x.kind == "labels"}
    for x in local.runs.artifacts(ref.run_id):
        if x.kind == "labels":
            assert la[x.image_id].sha256 == x.sha256
            assert (read_labels(local.root, x.path) > 0).any()
    local.close()


def test_an_unreachable_scheduler_is_a_clear_error(
    analysis_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantscope.analysis import _executor

    monkeypatch.setattr(_executor, "_CONNECT_TIMEOUT_S", 1)
    spec = parse_pipeline(SPEC)
    with pytest.raises(
        InvalidInput, match=r"cannot connect to the Dask scheduler at 'tcp://127\.0\.0\.1:9'"
    ):
        run_pipeline(analysis_repo, spec, scheduler="tcp://127.0.0.1:9")
    # the failed attempt is recorded as interrupted, not left running
    assert [r.status for r in analysis_repo.runs.all()] == ["interrupted"]
