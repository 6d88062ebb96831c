"""Where the methods of the old one-object :class:`~quantscope.catalog.Repository` live now.

Until issue 13 the repository handle was one object of about seventy methods built from mixins
(``repo.images()``, ``repo.quality_metrics()``, ``repo.run_artifacts()``, ...). They now live
in namespaced parts (``repo.images.all()``, ``repo.quality.metrics()``,
``repo.runs.artifacts()``). :data:`MOVED` maps each old name to its part and new name, so that
the error for an old name says where to look (:func:`moved_hint`).
"""

from __future__ import annotations

__all__ = ["CALLED_PARTS", "MOVED", "moved_hint"]

MOVED: dict[str, tuple[str, str]] = {
    # repo.images
    "register": ("images", "register"),
    "register_many": ("images", "register_many"),
    "delete_image": ("images", "delete"),
    "known_sources": ("images", "known_sources"),
    "image_at": ("images", "at"),
    "move_image_folders": ("images", "move_folders"),
    "store_paths": ("images", "store_paths"),
    "plate_positions": ("images", "plate_positions"),
    "well_folders": ("images", "well_folders"),
    "image": ("images", "get"),
    "stored_files": ("images", "stored_files"),
    "plates": ("images", "plates"),
    "image_names": ("images", "names"),
    # repo.quality
    "set_quality": ("quality", "set_metrics"),
    "set_quality_status": ("quality", "set_status"),
    "quality_metrics": ("quality", "metrics"),
    "quality_groups": ("quality", "groups"),
    "quality_peers": ("quality", "peers"),
    "quality_plates": ("quality", "plates"),
    "unchecked_images": ("quality", "unchecked"),
    "quality_status": ("quality", "status"),
    "quality_flags": ("quality", "flags"),
    "set_illumination_profile": ("quality", "set_illumination_profile"),
    "illumination_profiles": ("quality", "illumination_profiles"),
    # repo.annotations
    "annotate": ("annotations", "add"),
    "set_annotation": ("annotations", "set"),
    "tag": ("annotations", "tag"),
    "untag": ("annotations", "untag"),
    "remove_annotations": ("annotations", "remove"),
    "image_annotations": ("annotations", "of_images"),
    "tags": ("annotations", "tags"),
    "resolve_targets": ("annotations", "resolve_targets"),
    "add_to_dataset": ("annotations", "add_to_dataset"),
    "remove_from_dataset": ("annotations", "remove_from_dataset"),
    "datasets": ("annotations", "datasets"),
    "effective_annotations": ("annotations", "effective"),
    "apply_sidecar": ("annotations", "apply_sidecar"),
    "apply_sidecars": ("annotations", "apply_sidecars"),
    # repo.query
    "find": ("query", "find"),
    "find_ids": ("query", "find_ids"),
    "fields": ("query", "fields"),
    # repo.runs
    "start_run": ("runs", "start"),
    "interrupt_stale_runs": ("runs", "interrupt_stale"),
    "record_image_results": ("runs", "record_image_results"),
    "forget_artifacts": ("runs", "forget_artifacts"),
    "finish_run": ("runs", "finish"),
    "registered_artifacts": ("runs", "registered_artifacts"),
    "analysis_run": ("runs", "get"),
    "run_steps": ("runs", "steps"),
    "run_artifacts": ("runs", "artifacts"),
    "artifact": ("runs", "artifact"),
    "artifact_inputs": ("runs", "artifact_inputs"),
    "failed_steps": ("runs", "failed_steps"),
    # repo.bench
    "add_bench_set": ("bench", "add_set"),
    "delete_bench_set": ("bench", "delete_set"),
    "bench_sets": ("bench", "sets"),
    "bench_set": ("bench", "get_set"),
    "add_bench_run": ("bench", "add_run"),
    "bench_runs": ("bench", "runs"),
    "bench_run": ("bench", "get_run"),
    "bench_results": ("bench", "results"),
    "bench_scores": ("bench", "scores"),
    "delete_bench_run": ("bench", "delete_run"),
}

# old methods whose name is now the name of a part (by the part's class): what to call instead
CALLED_PARTS: dict[str, tuple[str, str]] = {
    "ImageRecords": ("images", "repo.images.all(ids)"),
    "AnnotationRecords": ("annotations", "repo.annotations.all(kind, ids, key)"),
    "RunRecords": ("runs", "repo.runs.all()"),
}


def moved_hint(name: str) -> str | None:
    """Where the old repository method ``name`` lives now (None: it never was one)."""
    if name not in MOVED:
        return None
    part, new = MOVED[name]
    return f"Repository.{name}() moved to repo.{part}.{new}() (issue 13)"
