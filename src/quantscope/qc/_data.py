"""What a QC report shows: plain data collected from the catalog and the store.

:class:`QCReportData` is the contract between the QC orchestration (this package) and the HTML
report writer (``quantscope.qc._report.write_report(path, data)``): the writer receives one
:class:`QCReportData` and needs nothing else (no catalog, no store access). The records are
filled by :func:`quantscope.qc.collect_report_data` (``._collect``, which imports this module;
this module imports nothing of the package but, for type checking, ``._profiles``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ..quality import QCFlag
    from ._profiles import MissingProfile

__all__ = [
    "ImageQCRecord",
    "MetricDescription",
    "ProfileRecord",
    "QCReportData",
]

#: Largest edge (px) of a thumbnail in :attr:`ImageQCRecord.thumbnails`.
THUMBNAIL_PX = 128


@dataclass(frozen=True)
class MetricDescription:
    """One entry of the metric registry (:data:`quantscope.quality.METRICS`), for legends.

    Attributes
    ----------
    name : str
        Stable metric key, as in :attr:`ImageQCRecord.metrics` (e.g. ``"focus_plls"``).
    category : str
        ``"focus"``, ``"saturation"``, ``"intensity"``, ``"illumination"``, ``"content"`` or
        ``"input"``.
    description : str
        One sentence (says when the value is NaN).
    unit : str
        ``"1"`` (dimensionless), ``"%"``, ``"ADU"`` (raw intensity units), ``"FS"`` ...
    direction : {"higher", "lower", "none"}
        Which way is better.
    reference : str
        Where the definition comes from (may be empty).
    """

    name: str
    category: str
    description: str
    unit: str
    direction: str
    reference: str = ""


@dataclass(frozen=True)
class ImageQCRecord:
    """QC of one image: where it sits, its verdict, its metrics and small previews.

    Attributes
    ----------
    id : str
        Image id in the catalog.
    name : str
        Image name (usually from the source file).
    plate : str or None
        Plate name, None for a loose image.
    well : str or None
        Well name such as ``"B03"`` (None without a plate).
    row, column : int or None
        0-based plate row and column of the well (None without a plate).
    field : int or None
        0-based field (site) within the well (None without a plate).
    channels : tuple of str
        Channel names, in channel-index order (``channels[i]`` is channel ``i``).
    status : {"pass", "warn", "fail"} or None
        QC verdict of the whole image (the worst over its channels); None when QC has never
        been run on it.
    flags : tuple of quantscope.quality.QCFlag
        Why the status is warn / fail, fails first within each channel: the flag records as
        stored (:meth:`Repository.quality.flags <quantscope.catalog.Repository.quality_flags>`),
        each naming its channel, or a single ``"error"`` flag when the stored image could not
        be measured. Empty for ``"pass"``.
    metrics : dict of int to dict of str to float
        ``{channel index: {metric name: value}}``; undefined values are NaN. For z-stacks a
        channel also has ``"best_focus_plane"`` (0-based z index of the plane measured).
    thumbnails : tuple of numpy.ndarray
        One 2-D ``uint8`` array per channel (same order as ``channels``), at most
        :data:`THUMBNAIL_PX` px on its longer edge, from the lowest-resolution pyramid level
        (t = 0, middle or best-focus z), contrast-stretched from the 1st to the 99.8th
        percentile. Empty when the stored image cannot be read.
    reasons : tuple of str
        Derived: one sentence per flag, as a person reads it (starting with ``"ch <channel
        name>: "``, or ``"quality could not be measured: ..."``).
    """

    id: str
    name: str
    plate: str | None
    well: str | None
    row: int | None
    column: int | None
    field: int | None
    channels: tuple[str, ...]
    status: str | None
    flags: tuple[QCFlag, ...]
    metrics: dict[int, dict[str, float]]
    thumbnails: tuple[npt.NDArray[np.uint8], ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """One sentence per flag (:func:`quantscope.quality.describe_flag`)."""
        return tuple(f.message for f in self.flags)


@dataclass(frozen=True)
class ProfileRecord:
    """A stored illumination profile of one channel of one plate.

    Attributes
    ----------
    plate : str
        Plate name.
    channel : int
        Channel index.
    channel_name : str
        Channel name.
    n_images : int
        Number of images the profile was estimated from.
    flat : numpy.ndarray
        2-D ``float32`` flat field, normalized to mean 1 (brighter = more light).
    dark : numpy.ndarray or None
        2-D ``float32`` dark field (ADU) when it was estimated, else None.
    store_path : str
        Where the profile is stored, relative to the repository root.
    """

    plate: str
    channel: int
    channel_name: str
    n_images: int
    flat: npt.NDArray[np.float32]
    dark: npt.NDArray[np.float32] | None
    store_path: str = ""


@dataclass(frozen=True)
class QCReportData:
    """Everything an HTML QC report of a repository shows.

    Attributes
    ----------
    root : pathlib.Path
        Repository root folder.
    images : list of ImageQCRecord
        One record per image, ordered by plate, row, column, field, then name.
    metrics : list of MetricDescription
        The metric registry, in its stable order (column order for tables).
    profiles : list of ProfileRecord
        Stored illumination profiles, ordered by plate then channel.
    created : datetime.datetime
        When the data were collected (timezone-aware, UTC).
    problems : list of str
        What could not be collected and why (a damaged stored profile, an image whose
        thumbnail could not be read), one message each; shown at the top of the report.
    missing_profiles : list of MissingProfile
        The plate channels without an illumination profile, and why
        (:func:`quantscope.qc.profile_gaps`); shown with the profiles.
    """

    root: Path
    images: list[ImageQCRecord]
    metrics: list[MetricDescription]
    profiles: list[ProfileRecord] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    problems: list[str] = field(default_factory=list)
    missing_profiles: list[MissingProfile] = field(default_factory=list)
