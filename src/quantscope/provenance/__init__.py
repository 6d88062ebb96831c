"""Provenance of analysis results, in W3C PROV terms.

- :func:`lineage`: any registered output (label image, table) or a whole run back to the
  source files, with every tool, version, package and parameter set on the way
  (:func:`run_lineage` for a run);
- :func:`run_document`: one run as a PROV-JSON document (``used``, ``wasGeneratedBy``,
  ``wasAssociatedWith``, ``wasDerivedFrom``) that the ``prov`` package validates;
- :func:`resolve_run`: a run by id, prefix or ``"latest"``; :func:`tool_package`: the package
  (and version) that provided a tool in a run.

The records themselves are written by :func:`quantscope.analysis.run_pipeline` into the
catalog (``analysis_runs``, ``analysis_artifacts``, ``analysis_artifact_inputs``,
``analysis_steps``).
"""

from ._lineage import lineage, resolve_run, run_document, run_lineage, tool_package

__all__ = ["lineage", "resolve_run", "run_document", "run_lineage", "tool_package"]
