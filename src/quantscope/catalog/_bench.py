"""Benchmark ground-truth sets, runs and scores (tables of ``_schema_bench``).

Rows only: reading label files, scoring and aggregating live in :mod:`quantscope.benchmark`.
:class:`BenchmarkRecords` is the ``bench`` part of a :class:`~quantscope.catalog.Repository`
(``repo.bench``); it returns typed records (:mod:`._bench_records`): :class:`BenchSetInfo`,
:class:`BenchSetRecord` with its :class:`BenchItemRecord` items, :class:`BenchRunRecord` and
:class:`BenchResultRecord`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import CatalogError, InvalidInput, NotFound
from . import _schema_bench as B
from ._bench_records import (
    BenchItemRecord,
    BenchResultRecord,
    BenchRunRecord,
    BenchSetInfo,
    BenchSetRecord,
)
from ._part import Part

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["BenchmarkRecords"]


def _set_fields(r: Any) -> dict[str, Any]:
    """The fields of :class:`BenchSetInfo` from a ``bench_sets`` row."""
    return {
        "id": r.id,
        "name": r.name,
        "kind": r.kind,
        "description": r.description,
        "license": r.license,
        "provenance": json.loads(r.provenance_json),
        "n_items": r.n_items,
        "n_objects": r.n_objects,
        "created_at": r.created_at,
    }


def _item_row(r: Any) -> BenchItemRecord:
    return BenchItemRecord(
        name=r.name,
        image_id=r.image_id,
        image_path=r.image_path,
        image_sha256=r.image_sha256,
        labels_path=r.labels_path,
        labels_sha256=r.labels_sha256,
        source_labels_path=r.source_labels_path,
        shape=tuple(json.loads(r.shape_json)),
        n_objects=r.n_objects,
    )


def _run_row(r: Any, set_name: str) -> BenchRunRecord:
    return BenchRunRecord(
        id=r.id,
        set_id=r.set_id,
        set=set_name,
        method=r.method,
        tool=r.tool,
        tool_version=r.tool_version,
        parameters=json.loads(r.parameters_json),
        source_kind=r.source_kind,
        source=r.source,
        analysis_run_id=r.analysis_run_id,
        thresholds=tuple(json.loads(r.thresholds_json)),
        software=json.loads(r.software_json),
        host=r.host,
        user=r.user_name,
        created_at=r.created_at,
        n_images=r.n_images,
        summary=json.loads(r.summary_json),
    )


def _result_row(x: Any) -> BenchResultRecord:
    return BenchResultRecord(
        item=x.item,
        pred_path=x.pred_path,
        pred_sha256=x.pred_sha256,
        source_pred_path=x.source_pred_path,
        counts=json.loads(x.counts_json),
    )


class BenchmarkRecords(Part):
    """``repo.bench``: benchmark ground-truth sets, runs and scores."""

    # ------------------------------------------------------------------ sets
    def _set_id(self, conn: Connection, name: str) -> int:
        sid = conn.execute(sa.select(B.bench_sets.c.id).where(B.bench_sets.c.name == name)).scalar()
        if sid is None:
            known = conn.execute(sa.select(B.bench_sets.c.name).order_by(B.bench_sets.c.name))
            names = [r[0] for r in known]
            raise NotFound(
                f"benchmark set {name!r} does not exist in {self.root}; "
                + (f"known sets: {', '.join(names)}" if names else "add one with 'bench add-set'")
            )
        return int(sid)

    def add_set(
        self,
        name: str,
        *,
        kind: str,
        license: str,
        provenance: Mapping[str, Any],
        items: Sequence[Mapping[str, Any]],
        description: str | None = None,
        replace: bool = False,
    ) -> int:
        """Register a ground-truth set and its items in one transaction; returns its id.

        Each item has ``name``, ``labels_path``, ``labels_sha256``, ``source_labels_path``,
        ``shape`` (list of int), ``n_objects`` and optionally ``image_id``, ``image_path``,
        ``image_sha256``.

        Raises
        ------
        InvalidInput
            A set of that name exists and ``replace`` is false, or there are no items.
        """
        if not items:
            raise InvalidInput(f"benchmark set {name!r}: no items to register")
        now = datetime.now(UTC)
        s = B.bench_sets
        with self.engine.begin() as conn:
            old = conn.execute(sa.select(s.c.id).where(s.c.name == name)).scalar()
            if old is not None:
                if not replace:
                    raise InvalidInput(
                        f"benchmark set {name!r} already exists in {self.root}; choose another "
                        "name or replace it (--replace), which deletes its runs"
                    )
                self._delete_set_rows(conn, int(old))
            sid = conn.execute(
                s.insert().values(
                    name=name,
                    kind=kind,
                    description=description,
                    license=license,
                    provenance_json=json.dumps(dict(provenance), default=str),
                    n_items=len(items),
                    n_objects=int(sum(int(i["n_objects"]) for i in items)),
                    created_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(
                B.bench_items.insert(),
                [
                    {
                        "set_id": sid,
                        "name": i["name"],
                        "image_id": i.get("image_id"),
                        "image_path": i.get("image_path"),
                        "image_sha256": i.get("image_sha256"),
                        "labels_path": i["labels_path"],
                        "labels_sha256": i["labels_sha256"],
                        "source_labels_path": i["source_labels_path"],
                        "shape_json": json.dumps([int(v) for v in i["shape"]]),
                        "n_objects": int(i["n_objects"]),
                    }
                    for i in items
                ],
            )
        return int(sid)

    @staticmethod
    def _delete_set_rows(conn: Connection, sid: int) -> None:
        runs = sa.select(B.bench_runs.c.id).where(B.bench_runs.c.set_id == sid)
        conn.execute(B.bench_scores.delete().where(B.bench_scores.c.run_id.in_(runs)))
        conn.execute(B.bench_results.delete().where(B.bench_results.c.run_id.in_(runs)))
        conn.execute(B.bench_runs.delete().where(B.bench_runs.c.set_id == sid))
        conn.execute(B.bench_items.delete().where(B.bench_items.c.set_id == sid))
        conn.execute(B.bench_sets.delete().where(B.bench_sets.c.id == sid))

    def delete_set(self, name: str) -> None:
        """Remove a set with its items, runs and scores (files are left to the caller)."""
        with self.engine.begin() as conn:
            self._delete_set_rows(conn, self._set_id(conn, name))

    def sets(self) -> list[BenchSetInfo]:
        """Every registered set (without items), by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(B.bench_sets).order_by(B.bench_sets.c.name))
            return [BenchSetInfo(**_set_fields(r)) for r in rows]

    def get_set(self, name: str) -> BenchSetRecord:
        """One set with its items (by name).

        Raises
        ------
        NotFound
            No set of that name (the message lists the known sets).
        """
        with self.engine.connect() as conn:
            sid = self._set_id(conn, name)
            row = conn.execute(sa.select(B.bench_sets).where(B.bench_sets.c.id == sid)).one()
            it = B.bench_items
            rows = conn.execute(sa.select(it).where(it.c.set_id == sid).order_by(it.c.name))
            items = tuple(_item_row(r) for r in rows)
        return BenchSetRecord(**_set_fields(row), items=items)

    # ------------------------------------------------------------------ runs
    def add_run(
        self,
        run: Mapping[str, Any],
        results: Sequence[Mapping[str, Any]],
        scores: Mapping[str, Mapping[str, float | None]],
    ) -> None:
        """Store a benchmark run, its per-item results and per-item metric values together.

        ``run`` has the columns of ``bench_runs`` with ``set`` (the set name) instead of
        ``set_id`` and ``parameters``, ``thresholds``, ``software``, ``summary`` as objects;
        ``results`` the columns of ``bench_results`` (``counts`` as an object); ``scores`` maps
        item -> metric -> value (None or NaN stored as NULL).
        """

        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(float(v)) else float(v)

        with self.engine.begin() as conn:
            sid = self._set_id(conn, str(run["set"]))
            try:
                conn.execute(
                    B.bench_runs.insert().values(
                        id=run["id"],
                        set_id=sid,
                        method=run["method"],
                        tool=run["tool"],
                        tool_version=run.get("tool_version"),
                        parameters_json=json.dumps(run.get("parameters", {}), default=str),
                        source_kind=run["source_kind"],
                        source=run["source"],
                        analysis_run_id=run.get("analysis_run_id"),
                        thresholds_json=json.dumps(list(run["thresholds"])),
                        software_json=json.dumps(run.get("software", {})),
                        host=run["host"],
                        user_name=run["user"],
                        created_at=run.get("created_at") or datetime.now(UTC),
                        n_images=len(results),
                        summary_json=json.dumps(run["summary"], default=str),
                    )
                )
            except sa.exc.IntegrityError as e:  # pragma: no cover - ids are random
                raise CatalogError(f"benchmark run {run['id']}: cannot store it ({e})") from e
            if results:
                conn.execute(
                    B.bench_results.insert(),
                    [
                        {
                            "run_id": run["id"],
                            "item": r["item"],
                            "pred_path": r["pred_path"],
                            "pred_sha256": r["pred_sha256"],
                            "source_pred_path": r.get("source_pred_path"),
                            "counts_json": json.dumps(r["counts"], default=str),
                        }
                        for r in results
                    ],
                )
            rows = [
                {"run_id": run["id"], "item": item, "metric": m, "value": num(v)}
                for item, values in scores.items()
                for m, v in values.items()
            ]
            if rows:
                conn.execute(B.bench_scores.insert(), rows)

    def runs(self, set_name: str | None = None) -> list[BenchRunRecord]:
        """Runs (of one set, or all), oldest first."""
        r, s = B.bench_runs, B.bench_sets
        sel = sa.select(r, s.c.name.label("set_name")).join(s, s.c.id == r.c.set_id)
        with self.engine.connect() as conn:
            if set_name is not None:
                sel = sel.where(r.c.set_id == self._set_id(conn, set_name))
            rows = conn.execute(sel.order_by(r.c.created_at, r.c.id))
            return [_run_row(row, row.set_name) for row in rows]

    def get_run(self, run_id: str) -> BenchRunRecord:
        """One run; ``run_id`` may be a unique prefix.

        Raises
        ------
        NotFound
            No run, or an ambiguous prefix.
        """
        r, s = B.bench_runs, B.bench_sets
        sel = sa.select(r, s.c.name.label("set_name")).join(s, s.c.id == r.c.set_id)
        with self.engine.connect() as conn:
            rows = list(conn.execute(sel.where(r.c.id.startswith(run_id, autoescape=True))))
        if len(rows) != 1:
            what = "no benchmark run" if not rows else f"{len(rows)} benchmark runs"
            raise NotFound(f"{what} with id {run_id!r} in {self.root}; see 'bench leaderboard'")
        return _run_row(rows[0], rows[0].set_name)

    def results(self, run_id: str) -> list[BenchResultRecord]:
        """Per-item results of a run (prediction copy, checksum, counts), by item."""
        b = B.bench_results
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(b).where(b.c.run_id == run_id).order_by(b.c.item))
            return [_result_row(x) for x in rows]

    def scores(self, run_ids: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
        """{run id: {item: {metric: value}}}; NULL comes back as NaN."""
        b = B.bench_scores
        out: dict[str, dict[str, dict[str, float]]] = {r: {} for r in run_ids}
        if not run_ids:
            return out
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(b.c.run_id, b.c.item, b.c.metric, b.c.value).where(
                    b.c.run_id.in_(list(run_ids))
                )
            )
            for run_id, item, metric, value in rows:
                out[run_id].setdefault(item, {})[metric] = (
                    float("nan") if value is None else float(value)
                )
        return out

    def delete_run(self, run_id: str) -> None:
        """Remove a run and its scores (files are left to the caller)."""
        with self.engine.begin() as conn:
            conn.execute(B.bench_scores.delete().where(B.bench_scores.c.run_id == run_id))
            conn.execute(B.bench_results.delete().where(B.bench_results.c.run_id == run_id))
            conn.execute(B.bench_runs.delete().where(B.bench_runs.c.id == run_id))
