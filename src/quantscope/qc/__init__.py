"""QC of a repository: measuring process, verdicts, report.

Quality control of the images *stored in a repository*: measure them, flag them, keep their
illumination profiles, report. The metrics themselves are pure functions of pixels in
:mod:`quantscope.quality`; this package is the workflow around them (catalog, stored
OME-Zarr, the measuring process with its sockets and shared memory, the HTML report):

- :func:`measure_image` reads one stored OME-Zarr (the QC pyramid level, :func:`qc_level`) and
  computes every metric of every channel (best-focus plane for z-stacks); :func:`measure_planes`
  does the same from planes in memory (ingest measures what it writes, without reading back,
  in the :class:`MeasuringProcess` of :func:`shared_process` where it can run);
- :func:`run_qc` measures a selection of images, stores the metrics in the catalog, flags every
  image against the absolute limits and against its peers of the same plate and channel, and
  stores the pass / warn / fail verdicts; thresholds come from the ``[qc]`` table of
  quantscope.toml (:func:`load_thresholds`);
- :func:`estimate_profiles` and :func:`load_profile`: per-plate, per-channel illumination
  profiles stored as small OME-Zarr images under ``profiles/``; :func:`profile_gaps`: which
  plate channels have none, and why;
- :func:`collect_report_data` / :func:`write_html_report`: everything the HTML report shows;
  :func:`report_sections`: the context of its header, plate heatmaps and histograms (the web
  portal's QC dashboard shows them live with the report's templates).

Ingest runs :func:`run_qc` on the images it adds (``ingest(..., qc=True)``, the default).

Examples
--------
>>> from quantscope.catalog import Repository  # doctest: +SKIP
>>> report = run_qc(Repository.open("myrepo"))  # doctest: +SKIP
>>> report.counts()  # doctest: +SKIP
{'pass': 38, 'warn': 2, 'fail': 0}
"""

from ._collect import collect_report_data, report_sections, write_html_report
from ._data import ImageQCRecord, MetricDescription, ProfileRecord, QCReportData
from ._measure import (
    BEST_FOCUS_PLANE,
    QC_MAX_EDGE,
    alpha_channels,
    measure_image,
    measure_planes,
    qc_level,
    significant_bits,
)
from ._process import MeasuringProcess, process_for_ingest, running_process, shared_process
from ._profiles import (
    PROFILES_DIR,
    MissingProfile,
    StoredProfile,
    estimate_profiles,
    load_profile,
    profile_gaps,
)
from ._run import ImageQC, QCProgress, QCRunReport, load_thresholds, run_qc

__all__ = [
    "BEST_FOCUS_PLANE",
    "PROFILES_DIR",
    "QC_MAX_EDGE",
    "ImageQC",
    "ImageQCRecord",
    "MeasuringProcess",
    "MetricDescription",
    "MissingProfile",
    "ProfileRecord",
    "QCProgress",
    "QCReportData",
    "QCRunReport",
    "StoredProfile",
    "alpha_channels",
    "collect_report_data",
    "estimate_profiles",
    "load_profile",
    "load_thresholds",
    "measure_image",
    "measure_planes",
    "process_for_ingest",
    "profile_gaps",
    "qc_level",
    "report_sections",
    "run_qc",
    "running_process",
    "shared_process",
    "significant_bits",
    "write_html_report",
]
