"""``repo.bench`` returns typed records (issue 13 point 4): frozen dataclasses whose fields are
the keys of their JSON form, ``to_dict()`` giving that form."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from quantscope.catalog import (
    BenchItemRecord,
    BenchResultRecord,
    BenchRunRecord,
    BenchSetInfo,
    BenchSetRecord,
    Repository,
)

ITEM = {
    "name": "a",
    "image_id": None,
    "image_path": "/data/a.tif",
    "image_sha256": "1" * 64,
    "labels_path": "benchmarks/s/truth/a.tif",
    "labels_sha256": "2" * 64,
    "source_labels_path": "/data/a_masks.tif",
    "shape": [8, 9],
    "n_objects": 3,
}
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _store(repo: Repository) -> None:
    repo.bench.add_set(
        "s",
        kind="instance",
        license="CC0-1.0",
        provenance={"match": "{name}", "source_text": "LICENSE"},
        items=[ITEM, {**ITEM, "name": "b", "shape": [4, 4], "n_objects": 1}],
        description="two",
    )
    run = {
        "id": "f" * 32,
        "set": "s",
        "method": "m(k=1)",
        "tool": "m",
        "tool_version": "1.0",
        "parameters": {"k": 1},
        "source_kind": "predictions",
        "source": "/preds",
        "thresholds": [0.5, 0.75],
        "software": {"python": "3.11"},
        "host": "h",
        "user": "u",
        "created_at": WHEN,
        "summary": {"n_images": 2, "mean": {}},
    }
    results = [
        {
            "item": n,
            "pred_path": f"benchmarks/s/runs/{'f' * 32}/{n}.tif",
            "pred_sha256": "3" * 64,
            "source_pred_path": None,
            "counts": {"tp": 1},
        }
        for n in ("a", "b")
    ]
    repo.bench.add_run(run, results, {"a": {"f1": 1.0}, "b": {"f1": 0.5}})


def test_sets_and_items_are_typed_records(repo: Repository) -> None:
    _store(repo)
    (info,) = repo.bench.sets()
    assert type(info) is BenchSetInfo  # without items
    assert (info.name, info.kind, info.n_items, info.n_objects) == ("s", "instance", 2, 4)
    assert info.provenance == {"match": "{name}", "source_text": "LICENSE"}
    full = repo.bench.get_set("s")
    assert isinstance(full, BenchSetRecord) and isinstance(full, BenchSetInfo)
    assert [type(i) for i in full.items] == [BenchItemRecord, BenchItemRecord]
    a = full.items[0]
    assert (a.name, a.shape, a.n_objects, a.image_id) == ("a", (8, 9), 3, None)
    # to_dict: the set's row (sets()), with the items as dicts (get_set), keys in field order
    row = info.to_dict()
    assert list(row) == [f.name for f in dataclasses.fields(BenchSetInfo)]
    assert full.to_dict() == {
        **row,
        "items": [ITEM, {**ITEM, "name": "b", "shape": [4, 4], "n_objects": 1}],
    }
    assert a.to_dict() == ITEM and isinstance(a.to_dict()["shape"], list)
    # frozen, and to_dict hands out copies: changing one leaves the record as it was
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "t"  # type: ignore[misc]
    row["provenance"]["match"] = "changed"
    assert info.provenance["match"] == "{name}"


def test_runs_and_results_are_typed_records(repo: Repository) -> None:
    _store(repo)
    (run,) = repo.bench.runs("s")
    assert isinstance(run, BenchRunRecord)
    assert repo.bench.get_run("fff") == run  # a unique prefix
    assert (run.set, run.method, run.tool_version, run.user) == ("s", "m(k=1)", "1.0", "u")
    assert run.thresholds == (0.5, 0.75) and run.parameters == {"k": 1} and run.n_images == 2
    d = run.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(BenchRunRecord)]
    assert d["thresholds"] == [0.5, 0.75] and d["set_id"] == run.set_id and d["set"] == "s"
    json.dumps(d, default=str)  # JSON-ready but for created_at, as the CLI prints it
    results = repo.bench.results(run.id)
    assert [type(r) for r in results] == [BenchResultRecord, BenchResultRecord]
    assert [r.item for r in results] == ["a", "b"] and results[0].counts == {"tp": 1}
    assert results[1].to_dict() == {
        "item": "b",
        "pred_path": f"benchmarks/s/runs/{'f' * 32}/b.tif",
        "pred_sha256": "3" * 64,
        "source_pred_path": None,
        "counts": {"tp": 1},
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.method = "other"  # type: ignore[misc]
