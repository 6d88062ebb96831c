"""Provenance of analysis results, in W3C PROV terms.

- :func:`lineage`: any registered output (label image, table) back to the source files, with
  every tool, version and parameter set on the way;
- :func:`run_document`: one run as a PROV-JSON document (``used``, ``wasGeneratedBy``,
  ``wasAssociatedWith``, ``wasDerivedFrom``).

The records themselves are written by :func:`quantscope.analysis.run_pipeline` into the
catalog (``analysis_runs``, ``analysis_artifacts``, ``analysis_artifact_inputs``,
``analysis_steps``).
"""

from ._lineage import lineage, run_document

__all__ = ["lineage", "run_document"]
