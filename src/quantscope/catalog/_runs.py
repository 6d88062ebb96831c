"""Analysis runs, their artifacts and provenance records.

:class:`RunRecords` is the ``runs`` part of a :class:`~quantscope.catalog.Repository`
(``repo.runs``). What it reads comes back as frozen records: :class:`RunRecord` (a run),
:class:`StepRecord` (what a run did for one image and step), :class:`ArtifactRecord` (a
registered output) and :class:`ArtifactInput` (what an artifact used). Their fields are the
catalog's columns (a run's software and spec parsed from JSON); ``to_dict()`` gives them as a
plain dict, in that order, for JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Self

import sqlalchemy as sa

from ..errors import CatalogError, InvalidInput, NotFound
from . import _schema_analysis as A
from ._ids import ambiguous, lookup_prefix
from ._part import Part

__all__ = ["ArtifactInput", "ArtifactRecord", "RunRecord", "RunRecords", "StepRecord"]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(v: Any) -> Any:
    # SQLite gives naive datetimes back; everything stored is UTC
    if isinstance(v, datetime) and v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    return v


@dataclass(frozen=True)
class _Record:
    """What the records of this module share: made from a catalog row, given back as a dict."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Self:
        """The record of a catalog row (naive datetimes read as UTC)."""
        return cls(**{k: _aware(v) for k, v in row.items()})

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict, in their order (for JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RunRecord(_Record):
    """One analysis run (``quantscope run``): the PROV activity."""

    id: str
    pipeline_name: str
    spec_hash: str  # SHA-256 of the normalized pipeline spec
    spec_path: str | None
    selection: str | None  # the --where query, if any
    status: str  # running, completed, partial, failed, interrupted
    started_at: datetime
    ended_at: datetime | None
    host: str
    user_name: str
    scheduler: str
    n_images: int
    n_computed: int
    n_reused: int
    n_failed: int
    software: dict[str, Any]  # {package: version, "tool:<name>": "<package> <version>"}
    spec: dict[str, Any]  # the normalized pipeline spec

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Self:
        """The record of an ``analysis_runs`` row (software and spec parsed from JSON)."""
        d = {k: _aware(v) for k, v in row.items()}
        d["software"] = json.loads(d.pop("software_json") or "{}")
        d["spec"] = json.loads(d.pop("spec_json") or "{}")
        return cls(**d)


@dataclass(frozen=True)
class StepRecord(_Record):
    """What a run did for one image and step."""

    run_id: str
    image_id: str
    step: str
    tool: str
    tool_version: str
    params_hash: str
    key: str  # the step's cache key
    status: str  # computed, reused, not-needed, failed, skipped
    error_type: str | None
    error: str | None
    seconds: float | None


@dataclass(frozen=True)
class ArtifactRecord(_Record):
    """A registered analysis output (a label image, a per-image table)."""

    key: str  # digest of the inputs' checksums, the tool, its version and the parameters
    kind: str  # labels, table
    image_id: str
    step: str
    step_key: str  # the key of the step that made it
    output: str
    tool: str
    tool_version: str
    params_json: str
    params_hash: str
    path: str  # relative to the repository root
    sha256: str
    size: int
    n_objects: int | None
    run_id: str  # the run that generated it
    started_at: datetime
    ended_at: datetime


@dataclass(frozen=True)
class ArtifactInput(_Record):
    """What an artifact used (PROV ``used``)."""

    artifact_key: str  # the artifact (or in-memory value) that used it
    role: str  # the tool's input name (+ "[i]" for lists)
    kind: str  # channel, artifact, profile, setting, derived
    ref: str  # image_id:c<channel>, artifact key, profile path, setting or derivation (JSON)
    sha256: str  # checksum of what was used


class RunRecords(Part):
    """``repo.runs``: analysis runs, their steps and artifacts."""

    # ------------------------------------------------------------------ writes
    def start(self, record: dict[str, Any]) -> None:
        """Insert a run row (``status`` normally ``"running"``)."""
        row = {
            "n_images": 0,
            "n_computed": 0,
            "n_reused": 0,
            "n_failed": 0,
            "ended_at": None,
            **record,
        }
        with self.engine.begin() as conn:
            conn.execute(A.analysis_runs.insert().values(**row))

    def interrupt_stale(self) -> list[str]:
        """Mark runs left ``running`` by a killed process as ``interrupted``; their ids.

        Call while holding the write lock: then no run of another process is really running.
        """
        r = A.analysis_runs
        with self.engine.begin() as conn:
            ids = list(conn.execute(sa.select(r.c.id).where(r.c.status == "running")).scalars())
            if ids:
                conn.execute(
                    r.update().where(r.c.id.in_(ids)).values(status="interrupted", ended_at=_now())
                )
        return ids

    def record_image_results(
        self,
        run_id: str,
        steps: Sequence[dict[str, Any]],
        artifacts: Sequence[dict[str, Any]],
        inputs: Sequence[dict[str, Any]],
    ) -> None:
        """Record what a run did for one image, in one transaction: step rows, and the new
        artifacts with what they used. An artifact whose key is already registered (the same
        inputs, tool version and parameters) is kept as it is."""
        try:
            with self.engine.begin() as conn:
                keys = [a["key"] for a in artifacts]
                known = set(
                    conn.execute(
                        sa.select(A.analysis_artifacts.c.key).where(
                            A.analysis_artifacts.c.key.in_(keys)
                        )
                    ).scalars()
                )
                new = [dict(a, run_id=run_id) for a in artifacts if a["key"] not in known]
                if new:
                    conn.execute(A.analysis_artifacts.insert(), new)
                    new_keys = {a["key"] for a in new}
                    rows = [i for i in inputs if i["artifact_key"] in new_keys]
                    if rows:
                        conn.execute(A.analysis_artifact_inputs.insert(), rows)
                if steps:
                    conn.execute(A.analysis_steps.insert(), [dict(s, run_id=run_id) for s in steps])
        except sa.exc.IntegrityError as e:
            reason = str(e.orig).strip().splitlines()[0]
            raise CatalogError(f"run {run_id}: results cannot be recorded: {reason}") from e

    def forget_artifacts(self, keys: Sequence[str]) -> None:
        """Unregister artifacts (whose files are gone), with what they used."""
        t = A.analysis_artifacts
        with self.engine.begin() as conn:
            for i in range(0, len(keys), 500):
                part = list(keys[i : i + 500])
                conn.execute(
                    A.analysis_artifact_inputs.delete().where(
                        A.analysis_artifact_inputs.c.artifact_key.in_(part)
                    )
                )
                conn.execute(t.delete().where(t.c.key.in_(part)))

    def finish(self, run_id: str, status: str, **counts: int) -> None:
        """Set a run's final status, end time and counts."""
        r = A.analysis_runs
        with self.engine.begin() as conn:
            conn.execute(
                r.update().where(r.c.id == run_id).values(status=status, ended_at=_now(), **counts)
            )

    # ------------------------------------------------------------------ reads
    def registered_artifacts(self, keys: Iterable[str]) -> dict[str, ArtifactRecord]:
        """Registered artifacts among ``keys``, by key."""
        keys = list(set(keys))
        out: dict[str, ArtifactRecord] = {}
        t = A.analysis_artifacts
        with self.engine.connect() as conn:
            for i in range(0, len(keys), 500):
                q = sa.select(t).where(t.c.key.in_(keys[i : i + 500]))
                out.update(
                    {r["key"]: ArtifactRecord.from_row(r) for r in conn.execute(q).mappings()}
                )
        return out

    def all(self) -> list[RunRecord]:
        """Every analysis run, newest first."""
        r = A.analysis_runs
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(r).order_by(r.c.started_at.desc())).mappings().all()
        return [RunRecord.from_row(x) for x in rows]

    def get(self, run_id: str) -> RunRecord:
        """One run by id (or a unique prefix of at least 3 characters)."""
        r = A.analysis_runs
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(r).where(r.c.id == run_id)).mappings().all()
            if not rows:
                ids = lookup_prefix(conn, r.c.id, run_id)
                if len(ids) > 1:
                    raise InvalidInput(f"{self.root}: {ambiguous('run id', run_id, ids)}")
                rows = conn.execute(sa.select(r).where(r.c.id.in_(ids))).mappings().all()
        if not rows:
            raise NotFound(
                f"{self.root}: no analysis run {run_id!r} (runs are listed by `quantscope runs`)"
            )
        return RunRecord.from_row(rows[0])

    def steps(self, run_id: str) -> list[StepRecord]:
        """What a run did per image and step (status, key, error)."""
        s = A.analysis_steps
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s).where(s.c.run_id == run_id).order_by(s.c.image_id, s.c.step)
            ).mappings()
            return [StepRecord.from_row(x) for x in rows]

    def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """The artifacts a run produced or reused (one per image, step and stored output)."""
        a, s = A.analysis_artifacts, A.analysis_steps
        q = (
            sa.select(a)
            .join(s, sa.and_(s.c.key == a.c.step_key, s.c.image_id == a.c.image_id))
            .where(s.c.run_id == run_id, s.c.status.in_(["computed", "reused"]))
            .order_by(a.c.image_id, a.c.step, a.c.output)
        )
        with self.engine.connect() as conn:
            return [ArtifactRecord.from_row(x) for x in conn.execute(q).mappings()]

    def artifacts_of_image(self, image_id: str, *, limit: int = 100) -> list[ArtifactRecord]:
        """The artifacts registered for image ``image_id`` (its label images and per-image
        tables), newest first, at most ``limit`` (one indexed query; what the image page lists
        as the provenance of its derived outputs)."""
        a = A.analysis_artifacts
        q = (
            sa.select(a)
            .where(a.c.image_id == image_id)
            .order_by(a.c.ended_at.desc(), a.c.step, a.c.output)
            .limit(max(0, int(limit)))
        )
        with self.engine.connect() as conn:
            return [ArtifactRecord.from_row(x) for x in conn.execute(q).mappings()]

    def artifact(self, ref: str) -> ArtifactRecord:
        """One artifact by key (or a unique prefix of at least 3 characters) or by its path
        relative to the repository root."""
        a = A.analysis_artifacts
        ref = ref.strip()
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(a).where(sa.or_(a.c.key == ref, a.c.path == ref.rstrip("/")))
                )
                .mappings()
                .all()
            )
            if not rows and all(ch in "0123456789abcdef" for ch in ref):
                keys = lookup_prefix(conn, a.c.key, ref)
                if len(keys) > 1:
                    raise InvalidInput(f"{self.root}: {ambiguous('artifact key', ref, keys)}")
                rows = conn.execute(sa.select(a).where(a.c.key.in_(keys))).mappings().all()
        if len(rows) > 1:
            raise InvalidInput(f"{self.root}: artifact reference {ref!r} is ambiguous")
        if not rows:
            raise NotFound(
                f"{self.root}: no registered analysis artifact {ref!r} (give its key, a prefix "
                "of it, or its path relative to the repository)"
            )
        return ArtifactRecord.from_row(rows[0])

    def artifact_inputs(self, key: str) -> list[ArtifactInput]:
        """What an artifact used: role, kind (channel, artifact, profile), ref, SHA-256."""
        i = A.analysis_artifact_inputs
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(i).where(i.c.artifact_key == key).order_by(i.c.role)
            ).mappings()
            return [ArtifactInput.from_row(x) for x in rows]

    def failed_steps(self, run_id: str) -> list[StepRecord]:
        """Steps of a run that failed, with their error."""
        return [s for s in self.steps(run_id) if s.status == "failed"]
