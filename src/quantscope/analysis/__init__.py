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
- :func:`write_labels`, :func:`read_labels`, :func:`read_table`: the stored outputs.
"""

from ._executor import RunReport, StepFailure, run_pipeline, software_versions
from ._outputs import (
    export_table,
    labels_digest,
    read_labels,
    read_table,
    run_table,
    to_anndata,
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

__all__ = [
    "ENTRY_POINT_GROUP",
    "BaseTool",
    "Pipeline",
    "Port",
    "RunReport",
    "Step",
    "StepFailure",
    "Tool",
    "ToolContext",
    "ToolEntry",
    "ToolLoadWarning",
    "ToolUnavailable",
    "describe_parameters",
    "describe_tool",
    "export_table",
    "get_tool",
    "installed_tools",
    "labels_digest",
    "load_pipeline",
    "params_hash",
    "parse_pipeline",
    "read_labels",
    "read_table",
    "register_tool",
    "run_pipeline",
    "run_table",
    "software_versions",
    "to_anndata",
    "tool_diagnostics",
    "unregister_tool",
    "write_labels",
    "write_table",
]
