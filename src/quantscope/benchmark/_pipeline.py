"""Predictions of a quantscope pipeline on the images of a ground-truth set, and
:func:`run_and_score`: run the pipeline and score it in one call.

The pipeline runs through :func:`quantscope.analysis.run_pipeline` on the set's ingested
images (incremental: label images already computed with the same tool, version, parameters
and inputs are reused), and the stored label output of the chosen step is read back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._text import plural
from ..errors import InvalidInput
from ._instance import DSB_THRESHOLDS

if TYPE_CHECKING:
    from ..catalog import Repository
    from ._records import BenchRun

__all__ = ["PipelinePredictions", "pipeline_predictions", "run_and_score"]


@dataclass
class PipelinePredictions:
    """Label images of a pipeline run, keyed by set item, with what made them."""

    labels: dict[str, np.ndarray]
    method: str
    tool: str
    tool_version: str
    parameters: dict[str, Any]
    analysis_run_id: str
    failures: dict[str, str] = field(default_factory=dict)


def _labels_output(pipeline: Any, output: str | None) -> tuple[Any, str, str]:
    """(step, port, output name) of the label output to score."""
    cands = [
        (step, port, name)
        for step in pipeline.steps
        for port, (name, kind) in step.outputs.items()
        if kind == "labels"
    ]
    if not cands:
        raise InvalidInput(f"pipeline {pipeline.name!r}: no step produces a label image")
    if output is not None:
        chosen = [c for c in cands if output in (c[2], c[0].id)]
        if not chosen:
            raise InvalidInput(
                f"pipeline {pipeline.name!r}: no label output {output!r}; label outputs: "
                + ", ".join(c[2] for c in cands)
            )
        return chosen[0]
    if len(cands) == 1:
        return cands[0]
    nuclei = [c for c in cands if c[2].lower() == "nuclei"]
    if len(nuclei) == 1:
        return nuclei[0]
    raise InvalidInput(
        f"pipeline {pipeline.name!r} has several label outputs ("
        + ", ".join(c[2] for c in cands)
        + "); choose one (output=...)"
    )


def _with_overrides(path: str | os.PathLike[str], overrides: Mapping[str, Any]) -> Any:
    """The pipeline of ``path`` with ``{"step.param": value}`` applied to its parameters."""
    import yaml

    from ..analysis import parse_pipeline
    from ..errors import NotFound

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{p}: pipeline file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise InvalidInput(f"{p}: cannot be read as a pipeline ({e})") from e
    steps = doc.get("steps") if isinstance(doc, dict) else None
    if not isinstance(steps, list):
        raise InvalidInput(f"{p}: a pipeline is a YAML mapping with 'steps'")
    by_id = {st.get("id"): st for st in steps if isinstance(st, dict)}
    for key, value in overrides.items():
        sid, _, param = key.partition(".")
        if not param:
            raise InvalidInput(f"override {key!r}: expected STEP.PARAMETER=VALUE")
        if sid not in by_id:
            raise InvalidInput(
                f"override {key!r}: {p} has no step {sid!r} (steps: "
                + ", ".join(str(k) for k in by_id)
                + ")"
            )
        by_id[sid].setdefault("parameters", {})[param] = value
    return parse_pipeline(
        yaml.safe_dump(doc, sort_keys=False), source=f"{p} (with overrides)", path=p.absolute()
    )


def pipeline_predictions(
    repo: Repository,
    set_name: str,
    pipeline_path: str | os.PathLike[str],
    *,
    output: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    jobs: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> PipelinePredictions:
    """Run a pipeline on the images of a set and collect the label images it produced.

    Parameters
    ----------
    repo : Repository
        The repository holding the set (its images must have been ingested).
    set_name : str
        The ground-truth set.
    pipeline_path : path
        Pipeline YAML (see :func:`quantscope.analysis.load_pipeline`).
    output : str, optional
        Label output (pipeline output name or step id) to score; default the only one, or the
        one named ``Nuclei``.
    overrides : mapping, optional
        ``{"step.parameter": value}``: parameters changed from the spec file (for comparing
        parameter settings without editing it).
    jobs : int
        Threads of the pipeline run.

    Returns
    -------
    PipelinePredictions
        Images whose step failed are absent from ``labels`` and listed in ``failures``.

    Raises
    ------
    InvalidInput
        The set holds image references only (registered without ingest), or the pipeline has
        no (or an ambiguous) label output.
    """
    from ..analysis import load_pipeline, read_labels, run_pipeline

    pipeline = (
        _with_overrides(pipeline_path, overrides) if overrides else load_pipeline(pipeline_path)
    )
    step, _port, out_name = _labels_output(pipeline, output)
    bset = repo.bench.get_set(set_name)
    no_image = [i.name for i in bset.items if not i.image_id]
    if no_image:
        raise InvalidInput(
            f"set {set_name!r}: {plural(len(no_image), 'item')} "
            f"{'has' if len(no_image) == 1 else 'have'} no repository image (e.g. "
            f"{no_image[0]}); pipelines run on ingested images: register the set with its "
            "images (without --no-ingest), or score predictions with --predictions"
        )
    by_image = {i.image_id: i.name for i in bset.items if i.image_id}

    def prog(done: int, total: int, _name: str) -> None:
        if progress:
            progress("pipeline", done, total)

    report = run_pipeline(repo, pipeline, image_ids=list(by_image), jobs=jobs, progress=prog)
    labels: dict[str, np.ndarray] = {}
    for art in repo.runs.artifacts(report.run_id):
        if art.kind != "labels" or art.step != step.id:
            continue
        item = by_image.get(art.image_id)
        if item is not None:
            labels[item] = read_labels(repo.root, art.path)
    failures = {
        by_image.get(f.image_id, f.image_name): f"{f.step}: {f.status} ({f.message})"
        for f in report.failures
    }
    params = step.params.model_dump(mode="json")
    changed = step.params.model_dump(mode="json", exclude_defaults=True)
    method = pipeline.name + (
        "(" + ", ".join(f"{k}={v}" for k, v in changed.items()) + ")" if changed else ""
    )
    return PipelinePredictions(
        labels=labels,
        method=method,
        tool=f"{step.tool.name} (pipeline {pipeline.name}, output {out_name})",
        tool_version=str(getattr(step.tool, "version", "")),
        parameters={"pipeline": str(Path(pipeline_path).resolve()), **params},
        analysis_run_id=report.run_id,
        failures=failures,
    )


def run_and_score(
    repo: Repository,
    set_name: str,
    pipeline_path: str | os.PathLike[str],
    *,
    output: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    jobs: int = 1,
    method: str | None = None,
    tool: str | None = None,
    tool_version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    missing: str = "error",
    thresholds: Sequence[float] = DSB_THRESHOLDS,
    n_resamples: int = 2000,
    progress: Callable[[str, int, int], None] | None = None,
) -> BenchRun:
    """Run a pipeline on the images of a set and score its label output: one benchmark run,
    stored with the analysis run it came from (what ``quantscope bench run --pipeline`` does).

    Parameters
    ----------
    repo, set_name, pipeline_path, output, overrides, jobs
        As for :func:`pipeline_predictions`.
    method, tool, tool_version
        Names on the leaderboard; default what the pipeline says (its name with the
        parameters changed by ``overrides``, the step's tool and version).
    parameters
        Extra parameters stored with the run (over the step's own).
    missing
        ``"error"`` (default): an image the pipeline failed on is an error; ``"empty"``: it is
        scored as an empty prediction.
    thresholds, n_resamples, progress
        As for :func:`run_benchmark` (``progress`` sees the phases ``pipeline`` and ``score``).

    Returns
    -------
    BenchRun
        The stored run, as :func:`run_benchmark` returns it.

    Raises
    ------
    InvalidInput
        The pipeline failed on an image (unless ``missing="empty"``), a bad pipeline or
        output (see :func:`pipeline_predictions`), a bad ``missing``.
    NotFound
        No such set or pipeline file.
    """
    from ._runs import _MISSING, run_benchmark

    if missing not in _MISSING:
        raise InvalidInput(f"missing: {missing!r} is not one of {', '.join(_MISSING)}")
    pred = pipeline_predictions(
        repo,
        set_name,
        pipeline_path,
        output=output,
        overrides=overrides,
        jobs=jobs,
        progress=progress,
    )
    if pred.failures and missing == "error":
        first = next(iter(pred.failures.items()))
        raise InvalidInput(
            f"pipeline {pipeline_path} failed on {plural(len(pred.failures), 'image')} of set "
            f"{set_name!r}, e.g. {first[0]}: {first[1]}; fix it, or score those "
            "images as empty predictions (--missing empty)"
        )
    return run_benchmark(
        repo,
        set_name,
        pred.labels,
        method=method or pred.method,
        tool=tool or pred.tool,
        tool_version=tool_version or pred.tool_version,
        parameters={**pred.parameters, **(parameters or {})},
        missing=missing,
        thresholds=thresholds,
        source_kind="pipeline",
        source=str(Path(pipeline_path).resolve()),
        analysis_run_id=pred.analysis_run_id,
        n_resamples=n_resamples,
        progress=progress,
    )
