"""``repo.runs`` gives typed records (issue 13 point 4): frozen dataclasses whose fields are the
catalog's columns, and whose ``to_dict()`` is the catalog row as it was given before (datetimes
in UTC, a run's software and spec parsed from JSON), in the columns' order."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from _analysis_support import FAIL_LIST_ENV, pipeline_text
from quantscope.analysis import parse_pipeline, run_pipeline
from quantscope.catalog import (
    ArtifactInput,
    ArtifactRecord,
    Repository,
    RunRecord,
    StepRecord,
)
from quantscope.catalog import _schema_analysis as A

pytestmark = pytest.mark.usefixtures("analysis_tools")


def _aware(row: Any) -> dict[str, Any]:
    return {
        k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v
        for k, v in dict(row).items()
    }


def _rows(repo: Repository, table: sa.Table, *order: sa.Column[Any]) -> list[dict[str, Any]]:
    with repo.engine.connect() as conn:
        return [_aware(r) for r in conn.execute(sa.select(table).order_by(*order)).mappings()]


def test_runs_steps_artifacts_and_inputs_are_records_of_the_catalog_rows(
    analysis_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = analysis_repo.images.all()[0].id
    monkeypatch.setenv(FAIL_LIST_ENV, bad)
    report = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    runs = analysis_repo.runs

    (run,) = runs.all()
    assert isinstance(run, RunRecord) and runs.get(report.run_id[:6]) == run
    (raw,) = _rows(analysis_repo, A.analysis_runs)
    software, spec = json.loads(raw.pop("software_json")), json.loads(raw.pop("spec_json"))
    assert run.to_dict() == {**raw, "software": software, "spec": spec}
    assert list(run.to_dict()) == [*raw, "software", "spec"]
    assert run.started_at.tzinfo is not None and run.spec["name"] == "test"

    steps = runs.steps(run.id)
    s = A.analysis_steps
    assert all(isinstance(x, StepRecord) for x in steps)
    assert [x.to_dict() for x in steps] == _rows(analysis_repo, s, s.c.image_id, s.c.step)
    assert [x.to_dict() for x in runs.failed_steps(run.id)] == [
        x for x in _rows(analysis_repo, s, s.c.image_id, s.c.step) if x["status"] == "failed"
    ]
    assert [(x.image_id, x.step) for x in runs.failed_steps(run.id)] == [(bad, "seg")]

    arts = runs.artifacts(run.id)
    a = A.analysis_artifacts
    assert arts and all(isinstance(x, ArtifactRecord) for x in arts)
    assert [x.to_dict() for x in arts] == _rows(
        analysis_repo, a, a.c.image_id, a.c.step, a.c.output
    )
    assert runs.artifact(arts[0].path) == runs.artifact(arts[0].key[:8]) == arts[0]
    assert runs.registered_artifacts([x.key for x in arts] + ["0" * 64]) == {x.key: x for x in arts}

    used = runs.artifact_inputs(arts[0].key)
    i = A.analysis_artifact_inputs
    assert used and all(isinstance(u, ArtifactInput) for u in used)
    assert [u.to_dict() for u in used] == [
        r for r in _rows(analysis_repo, i, i.c.role) if r["artifact_key"] == arts[0].key
    ]


def test_records_are_frozen(analysis_repo: Repository) -> None:
    report = run_pipeline(analysis_repo, parse_pipeline(pipeline_text()))
    run = analysis_repo.runs.get(report.run_id)
    art = analysis_repo.runs.artifacts(report.run_id)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = "completed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        art.path = "elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError, match="not subscriptable"):
        run["id"]  # type: ignore[index]
