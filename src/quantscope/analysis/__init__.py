"""Analysis: tools as plugins, pipelines of tools, and their execution on Dask.

- :class:`Tool` (protocol) and :class:`BaseTool`: what a tool declares (name, version, input
  and output :class:`Port` s, a pydantic parameter model with defaults, ranges and units) and
  its ``run``;
- :func:`installed_tools`, :func:`get_tool`, :func:`tool_diagnostics`: tools registered
  through the entry-point group ``quantscope.tools`` (the built-ins too); a broken plugin is a
  :class:`ToolLoadWarning`, not a crash;
- :func:`load_pipeline` / :func:`parse_pipeline`: YAML pipeline specs, validated with file,
  line and step in every message, and hashed;
- :func:`run_pipeline`: runs a pipeline over a repository's images with Dask (local threads, or
  a ``distributed`` cluster), incrementally, recording provenance;
- :func:`write_labels`, :func:`read_labels`, :func:`read_table`: the stored outputs;
  :func:`run_table`, :func:`describe_run_table`, :func:`to_anndata`, :func:`export_table`: a
  run's measurements as one table, Parquet, CSV or AnnData (:data:`EXPORT_FORMATS`,
  :func:`format_for_path`), with CellProfiler's names (:func:`to_cellprofiler`, for
  pycytominer; :data:`NAMINGS`) and the family, channel and unit of every feature
  (:func:`feature_metadata`);
- the algorithms the built-in tools wrap: :func:`segment_nuclei`, :func:`segment_cells`,
  :func:`cytoplasm` (with :class:`NucleiParams`, :class:`CellParams`), :func:`measure_objects`
  and :func:`summarize_image`; imported when first used, so that listing tools stays fast.
"""

from typing import TYPE_CHECKING, Any

from ._executor import RunReport, StepFailure, run_pipeline, software_versions
from ._export import (
    EXPORT_FORMATS,
    NAMINGS,
    TableInfo,
    describe_run_table,
    export_table,
    feature_metadata,
    format_for_path,
    run_table,
    to_anndata,
    to_cellprofiler,
    uninformative_columns,
)
from ._outputs import (
    labels_digest,
    read_labels,
    read_table,
    verify_output,
    write_labels,
    write_table,
)
from ._pipeline import Pipeline, Step, load_pipeline, parse_pipeline
from ._registry import (
    ENTRY_POINT_GROUP,
    ToolEntry,
    ToolLoadWarning,
    get_tool,
    installed_tools,
    register_tool,
    tool_diagnostics,
    unregister_tool,
)
from ._tool import (
    BaseTool,
    Port,
    Tool,
    ToolContext,
    ToolUnavailable,
    describe_parameters,
    describe_tool,
    params_hash,
)

if TYPE_CHECKING:
    from ._features import measure_objects, summarize_image
    from ._segment import CellParams, NucleiParams, cytoplasm, segment_cells, segment_nuclei

_LAZY = {
    "measure_objects": "._features",
    "summarize_image": "._features",
    "CellParams": "._segment",
    "NucleiParams": "._segment",
    "cytoplasm": "._segment",
    "segment_cells": "._segment",
    "segment_nuclei": "._segment",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'quantscope.analysis' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ENTRY_POINT_GROUP",
    "EXPORT_FORMATS",
    "NAMINGS",
    "BaseTool",
    "CellParams",
    "NucleiParams",
    "Pipeline",
    "Port",
    "RunReport",
    "Step",
    "StepFailure",
    "TableInfo",
    "Tool",
    "ToolContext",
    "ToolEntry",
    "ToolLoadWarning",
    "ToolUnavailable",
    "cytoplasm",
    "describe_parameters",
    "describe_run_table",
    "describe_tool",
    "export_table",
    "feature_metadata",
    "format_for_path",
    "get_tool",
    "installed_tools",
    "labels_digest",
    "load_pipeline",
    "measure_objects",
    "params_hash",
    "parse_pipeline",
    "read_labels",
    "read_table",
    "register_tool",
    "run_pipeline",
    "run_table",
    "segment_cells",
    "segment_nuclei",
    "software_versions",
    "summarize_image",
    "to_anndata",
    "to_cellprofiler",
    "tool_diagnostics",
    "uninformative_columns",
    "unregister_tool",
    "verify_output",
    "write_labels",
    "write_table",
]
