"""Pipeline runs started over HTTP: which pipeline a request names, and the background job that
runs it with the CLI's executor (:func:`quantscope.analysis.run_pipeline`).

A job's progress is a small JSON file under the repository (``.quantscope.jobs/<id>.json``),
replaced atomically on every change, so that every server worker process (``serve --workers
N``) answers the same status; the run itself lands in the catalog as from ``quantscope run``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ..analysis import Pipeline
    from ..catalog import Repository

__all__ = [
    "JOBS_DIR",
    "JobStore",
    "available_pipelines",
    "resolve_pipeline",
    "start_job",
]

#: Where job progress files live, relative to the repository root.
JOBS_DIR = ".quantscope.jobs"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_MAX_LOG = 200
_KEEP_JOBS = 200  # finished job files kept (the newest); older ones are removed
_MAX_SPEC = 256 * 1024


def _builtin_dir() -> Any:
    return resources.files("quantscope.server") / "_pipelines"


def available_pipelines(root: Path) -> dict[str, str]:
    """Pipeline names a request may give: the repository's ``pipelines/*.yaml`` (first) and the
    built-ins shipped with quantscope; name -> where it comes from."""
    out: dict[str, str] = {}
    folder = root / "pipelines"
    if folder.is_dir():
        for p in sorted(folder.glob("*.yaml")):
            if _NAME.match(p.stem) and p.is_file():
                out.setdefault(p.stem, "repository")
    builtin = _builtin_dir()
    if builtin.is_dir():
        for entry in sorted(builtin.iterdir(), key=lambda e: e.name):
            stem = entry.name.removesuffix(".yaml")
            if entry.name.endswith(".yaml") and _NAME.match(stem):
                out.setdefault(stem, "built-in")
    return out


def resolve_pipeline(root: Path, spec: str) -> tuple[Pipeline, str]:
    """The pipeline of a request: a name (the repository's ``pipelines/NAME.yaml``, else a
    built-in) or the YAML text of a spec; validated (tools, ports, parameters) before any run
    starts. Returns the pipeline and the YAML text.

    Raises
    ------
    InvalidInput
        An unknown name, bad YAML, an unknown tool, a bad parameter (the parser's message,
        with the line).
    """
    from ..analysis import parse_pipeline

    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInput("pipeline: give a pipeline name or the YAML text of a spec")
    if len(spec) > _MAX_SPEC:
        raise InvalidInput(f"pipeline: the spec is over {_MAX_SPEC // 1024} KiB")
    name = spec.strip()
    if _NAME.match(name) and "\n" not in spec and ":" not in name:
        known = available_pipelines(root)
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise InvalidInput(f"pipeline {name!r}: no such pipeline (available: {names})")
        local = root / "pipelines" / f"{name}.yaml"
        if known[name] == "repository":
            text = local.read_text(encoding="utf-8")
            source = f"pipelines/{name}.yaml"
        else:
            text = (_builtin_dir() / f"{name}.yaml").read_text(encoding="utf-8")
            source = f"<built-in {name}>"
        return parse_pipeline(text, source=source), text
    _check_no_aliases(spec)
    return parse_pipeline(spec, source="<request>"), spec


def _check_no_aliases(text: str) -> None:
    """Refuse YAML aliases in a spec sent over HTTP: a few nested aliases ("billion laughs")
    expand to millions of nodes that validation would walk (a pipeline needs none). Scanning
    the events is linear in the text's length."""
    import yaml

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise InvalidInput(
                    f"<request>:{line}: YAML aliases (*name) are not accepted in a pipeline sent "
                    "over HTTP; write the values out"
                )
    except yaml.YAMLError:
        return  # the parser reports bad YAML with its line


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobStore:
    """Jobs of one repository, as JSON files written atomically (tmp + rename)."""

    def __init__(self, root: Path) -> None:
        self.folder = root / JOBS_DIR

    def path(self, job_id: str) -> Path:
        if not _JOB_ID.match(job_id):
            raise NotFound(f"no run or job with id {job_id[:80]!r}")
        return self.folder / f"{job_id}.json"

    def write(self, job: dict[str, Any]) -> None:
        self.folder.mkdir(exist_ok=True)
        path = self.path(job["id"])
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        tmp.write_text(json.dumps(job), encoding="utf-8")
        os.replace(tmp, path)

    def read(self, job_id: str) -> dict[str, Any]:
        """The job ``job_id``; one whose server process died while it ran reads as failed."""
        path = self.path(job_id)
        try:
            job: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"no run or job with id {job_id!r}") from None
        except (OSError, ValueError) as e:
            raise NotFound(f"job {job_id!r}: unreadable progress file ({e})") from None
        if (
            job.get("state") in ("queued", "running")
            and job.get("host") == socket.gethostname()
            and not _pid_alive(int(job.get("pid") or 0))
        ):
            job["state"] = "failed"
            job["error"] = "the server process running this job stopped"
        return job

    def prune(self, keep: int = _KEEP_JOBS) -> None:
        """Remove the files of finished jobs beyond the newest ``keep``."""
        old = self.all()[keep:]
        for job in old:
            if job.get("state") in ("done", "failed"):
                self.path(job["id"]).unlink(missing_ok=True)

    def all(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        if not self.folder.is_dir():
            return []
        out = []
        for p in self.folder.glob("*.json"):
            try:
                out.append(self.read(p.stem))
            except NotFound:
                continue
        return sorted(out, key=lambda j: j.get("created", 0), reverse=True)


class _Job:
    """One background run: its record, updated and persisted as the run advances."""

    def __init__(self, store: JobStore, record: dict[str, Any]) -> None:
        self.store = store
        self.record = record
        self._last = 0.0
        self._lock = threading.RLock()

    def log(self, line: str) -> None:
        lines = self.record["log"]
        lines.append(f"{time.strftime('%H:%M:%S')} {line}")
        del lines[:-_MAX_LOG]

    def save(self, force: bool = True) -> None:
        now = time.monotonic()
        with self._lock:
            if force or now - self._last > 0.25:
                self._last = now
                self.store.write(self.record)

    def progress(self, done: int, total: int, name: str) -> None:
        with self._lock:
            self.record.update(state="running", done=done, total=total)
            self.log(f"{done}/{total} {name}")
        self.save(force=done >= total)


def start_job(
    root: Path,
    pipeline: Pipeline,
    image_ids: list[str],
    *,
    query: str | None,
    user: str,
    scheduler: str | None = None,
    jobs: int = 2,
) -> dict[str, Any]:
    """Run ``pipeline`` on ``image_ids`` in a background thread (its own handle on the
    repository at ``root``); returns the job's first record (state ``queued``)."""
    store = JobStore(root)
    store.prune()
    job_id = uuid.uuid4().hex
    record: dict[str, Any] = {
        "id": job_id,
        "state": "queued",
        "done": 0,
        "total": len(image_ids),
        "log": [],
        "run_id": None,
        "pipeline": pipeline.name,
        "query": query,
        "user": user,
        "created": time.time(),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "error": None,
    }
    job = _Job(store, record)
    job.log(f"queued: {pipeline.name} on {len(image_ids)} image(s)")
    job.save()
    thread = threading.Thread(
        target=_run,
        args=(root, job, pipeline, image_ids, scheduler, jobs),
        name=f"quantscope-run-{job_id[:8]}",
        daemon=True,
    )
    thread.start()
    return dict(record)


def _run(
    root: Path,
    job: _Job,
    pipeline: Pipeline,
    image_ids: list[str],
    scheduler: str | None,
    jobs: int,
) -> None:
    from ..analysis import run_pipeline
    from ..catalog import Repository

    job.record["state"] = "running"
    job.log("started")
    job.save()
    try:
        repo: Repository = Repository.open(root)
        try:
            report = run_pipeline(
                repo,
                pipeline,
                image_ids=image_ids,
                jobs=jobs,
                scheduler=scheduler,
                progress=job.progress,
            )
        finally:
            repo.close()
    except Exception as e:  # the job's outcome, shown to the caller; never a crash of the server
        job.record.update(state="failed", error=f"{type(e).__name__}: {e}")
        job.log(f"failed: {type(e).__name__}: {e}")
        job.save()
        return
    for f in report.failures:
        job.log(f"{f.status}: {f.image_name} step {f.step}: {f.message}")
    job.record.update(
        state="done",
        run_id=report.run_id,
        done=report.images,
        total=report.images,
        report=report.to_dict(),
    )
    job.log(
        f"run {report.run_id[:12]} {report.status}: computed {report.computed}, reused "
        f"{report.reused}, failed {report.failed}, skipped {report.skipped} "
        f"({report.seconds:.1f} s)"
    )
    job.save()
