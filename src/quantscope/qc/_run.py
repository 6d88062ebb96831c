"""Run quality control over a repository: measure, store, flag across peers, store verdicts."""

from __future__ import annotations

import contextlib
import math
import time
import tomllib
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput, QuantscopeError, RepositoryError
from ..model import Image
from ._measure import alpha_channels, measure_image

if TYPE_CHECKING:
    from ..catalog import Repository
    from ..catalog._quality import QualityPeer
    from ..quality import QCFlag, QCThresholds
    from ._profiles import MissingProfile, StoredProfile

__all__ = ["ImageQC", "QCProgress", "QCRunReport", "load_thresholds", "run_qc"]

QCProgress = Callable[[int, int, str], None]
"""``progress(done_bytes, total_bytes, image_name)``: pixel bytes of the images measured so far
(uncompressed, whole image), called once per image."""

_STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class ImageQC:
    """QC outcome of one image.

    Attributes
    ----------
    image_id, name : str
        The image.
    status : {"pass", "warn", "fail"}
        Worst status over its channels.
    flags : tuple of quantscope.quality.QCFlag
        Why: one record per flag, each naming its channel (:attr:`QCFlag.channel`), fails
        first within a channel; empty for pass.
    metrics : dict of int to dict of str to float
        ``{channel index: {metric: value}}`` as stored (NaN where undefined).
    error : str or None
        Why the image could not be measured (its status is then ``"warn"``).
    plate, well : str or None
        Where the image sits (None without a plate).
    field : int or None
        1-based site within the well (None without a plate).
    channels : tuple of str
        Channel names by index.
    reasons : tuple of str
        Derived: one sentence per flag (each prefixed ``"ch <channel name>: "``).
    """

    image_id: str
    name: str
    status: str
    flags: tuple[QCFlag, ...]
    metrics: dict[int, dict[str, float]]
    error: str | None = None
    plate: str | None = None
    well: str | None = None
    field: int | None = None
    channels: tuple[str, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """One sentence per flag (:func:`quantscope.quality.describe_flag`)."""
        return tuple(f.message for f in self.flags)

    def to_dict(self) -> dict[str, Any]:
        """The outcome as plain data, as ``quantscope qc --json`` prints it (NaN as None)."""
        from ..quality import finite_or_none

        return {
            "id": self.image_id,
            "name": self.name,
            "plate": self.plate,
            "well": self.well,
            "field": self.field,
            "status": self.status,
            "reasons": list(self.reasons),
            "error": self.error,
            "channels": [
                {
                    "index": c,
                    "name": _channel_name(self.channels, c),
                    "metrics": {k: finite_or_none(v) for k, v in values.items()},
                }
                for c, values in sorted(self.metrics.items())
            ],
            "flags": [f.to_dict() for f in self.flags],
        }


@dataclass
class QCRunReport:
    """What one :func:`run_qc` did.

    Attributes
    ----------
    images : dict of str to ImageQC
        The selected images, by id, in catalog order.
    measured : int
        Images whose metrics were computed in this run.
    errors : dict of str to str
        Image id to the reason it could not be measured.
    seconds : float
        Wall time of the run (s).
    measure_seconds : float
        Wall time spent measuring (s).
    small_groups : dict of str to int
        Selected images compared with no peers for at least one channel, with the size of
        that channel's peer group (:func:`peer_group`): groups of fewer than
        ``thresholds.outlier_min_group`` images (8 by default) are too small for robust
        statistics and are not outlier-tested (absolute limits still apply).
    outlier_min_group : int
        That smallest group size, of the thresholds the run used.
    profiles : list of StoredProfile
        Illumination profiles estimated with the run (by the caller,
        :func:`estimate_profiles`); empty by default.
    missing_profiles : list of MissingProfile
        Plate channels left without a profile, and why (:func:`profile_gaps`).
    report : pathlib.Path or None
        The HTML report written with the run, if any.
    report_problems : list of str
        What the report could not show (:attr:`QCReportData.problems`).
    """

    images: dict[str, ImageQC] = field(default_factory=dict)
    measured: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    measure_seconds: float = 0.0
    small_groups: dict[str, int] = field(default_factory=dict)
    outlier_min_group: int = 8
    profiles: list[StoredProfile] = field(default_factory=list)
    missing_profiles: list[MissingProfile] = field(default_factory=list)
    report: Path | None = None
    report_problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of images per status (every status present, possibly 0)."""
        out = dict.fromkeys(_STATUS_RANK, 0)
        for r in self.images.values():
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The run as plain data: what ``quantscope qc --json`` prints (NaN and inf as None;
        each image's flags as records, :meth:`quantscope.quality.QCFlag.to_dict`)."""
        from ..quality import finite_or_none

        return {
            "images": [r.to_dict() for r in self.images.values()],
            "counts": self.counts(),
            "profiles": [
                {
                    "plate": p.plate,
                    "channel": p.channel,
                    "channel_name": p.channel_name,
                    "n_images": p.n_images,
                    "store_path": p.store_path,
                    "corner_center_ratio": finite_or_none(p.corner_center_ratio),
                    "flatness": finite_or_none(p.flatness),
                }
                for p in self.profiles
            ],
            "missing_profiles": [
                {
                    "plate": g.plate,
                    "channel": g.channel,
                    "channel_name": g.channel_name,
                    "reason": g.reason,
                }
                for g in self.missing_profiles
            ],
            "report": str(self.report) if self.report is not None else None,
            "report_problems": list(self.report_problems),
            "seconds": self.seconds,
            "outlier_min_group": self.outlier_min_group,
            "small_groups": dict(self.small_groups),
        }


def load_thresholds(repo: Repository) -> QCThresholds:
    """The thresholds of ``repo``: the ``[qc]`` table of its quantscope.toml over the defaults.

    The table takes the attributes of :class:`quantscope.quality.QCThresholds`, e.g.::

        [qc]
        outlier_warn_z = 4.0
        [qc.limits.snr]
        warn_below = 10
        fail_below = 3

    Raises
    ------
    quantscope.errors.InvalidInput
        A malformed table; the message names the file and the key.
    """
    from ..catalog import CONFIG_NAME
    from ..quality import QCThresholds

    path = repo.root / CONFIG_NAME
    try:
        cfg = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RepositoryError(f"{path}: cannot be read ({e.strerror or e})") from e
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"{path}: invalid TOML ({e})") from e
    table = cfg.get("qc")
    if table is None:
        return QCThresholds()
    return QCThresholds.from_dict(table, where=f"{path} [qc]")


def _ordered(
    stored: dict[str, dict[int, dict[str, float]]],
) -> dict[str, dict[int, dict[str, float]]]:
    """Metrics in the registry's order (extras such as ``best_focus_plane`` last)."""
    from ..quality import METRICS

    order = {name: i for i, name in enumerate(METRICS)}
    return {
        image_id: {
            c: dict(sorted(values.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
            for c, values in sorted(channels.items())
        }
        for image_id, channels in stored.items()
    }


def _rank(status: str) -> int:
    return _STATUS_RANK.get(status, 1)


def _pixel_bytes(img: Image) -> int:
    return int(np.prod(img.shape)) * np.dtype(img.dtype).itemsize


def _measure_all(
    repo: Repository,
    images: Sequence[Image],
    jobs: int,
    progress: QCProgress | None,
) -> tuple[dict[str, dict[int, dict[str, float]]], dict[str, str]]:
    measured: dict[str, dict[int, dict[str, float]]] = {}
    errors: dict[str, str] = {}
    total = sum(_pixel_bytes(i) for i in images)
    done = 0

    def one(img: Image) -> dict[int, dict[str, float]]:
        return measure_image(repo.root / img.store_path, img)

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [(img, pool.submit(one, img)) for img in images]
        for img, fut in futures:
            try:
                measured[img.id] = fut.result()
            except QuantscopeError as e:
                errors[img.id] = str(e)
            except (OSError, ValueError, RuntimeError, TypeError, MemoryError) as e:
                errors[img.id] = f"{type(e).__name__}: {e}"
            done += _pixel_bytes(img)
            if progress is not None:
                progress(done, total, img.name)
    return measured, errors


def _channel_name(names: Sequence[str], c: int) -> str:
    return names[c] if c < len(names) else f"C{c}"


def peer_group(peer: QualityPeer, channel: int) -> Hashable:
    """The group an image channel is compared with for dataset-level outliers.

    * on a plate: the plate and the channel index (one acquisition);
    * else in a dataset (the annotation ``dataset``,
      :meth:`Repository.annotations.add_to_dataset`): the dataset (the first by name when the
      image is in several) and the channel index: the user declared these images comparable;
    * else: images of the same instrument (manufacturer and model), channel name, size
      (y, x) and dtype; when the instrument is unknown, of the same source format and source
      folder too (files of one folder from one acquisition), so that unrelated files from
      other instruments are never each other's peers.
    """
    if peer.plate is not None:
        return ("plate", peer.plate, channel)
    if peer.datasets:
        return ("dataset", peer.datasets[0], channel)
    where: Hashable = (
        ("instrument", *peer.instrument)
        if peer.instrument is not None
        else ("unknown instrument", peer.source_format, peer.source_folder)
    )
    return ("loose", where, _channel_name(peer.channels, channel), peer.shape, peer.dtype)


def _same(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Whether two channels' metrics are identical (NaN equal to NaN): equal planes."""
    if a.keys() != b.keys() or not a:
        return False
    for k, x in a.items():
        y = b[k]
        if not (x == y or (math.isnan(x) and math.isnan(y))):
            return False
    return True


def merged_channels(channels: Mapping[int, Mapping[str, float]]) -> dict[int, list[int]]:
    """``{first channel: [it and the later channels measuring the same]}``.

    Channels whose metrics are all identical measure the same pixels (the metrics are a
    deterministic function of the plane): a grey image stored as R = G = B (a PNG or RGB TIFF
    of a grey camera) is evaluated as one grey channel, not three times.
    """
    out: dict[int, list[int]] = {}
    for c in sorted(channels):
        for first, members in out.items():
            if _same(channels[first], channels[c]):
                members.append(c)
                break
        else:
            out[c] = [c]
    return out


def _evaluate_repository(
    repo: Repository,
    thresholds: QCThresholds,
    extra: Mapping[str, tuple[str, list[QCFlag]]],
    peers: Mapping[str, QualityPeer],
    plates: Collection[str | None] | None = None,
) -> tuple[
    dict[str, tuple[str, list[QCFlag]]],
    dict[str, dict[int, dict[str, float]]],
    dict[str, int],
]:
    """Flags of every image with stored metrics among ``peers`` (the images on ``plates``,
    None standing for no plate; default: every image), outliers computed among the images of
    one :func:`peer_group`; the stored metrics of those images (read once, for the report
    too); and, per image, the size of the smallest group of its channels that had fewer
    images than ``thresholds.outlier_min_group`` (not outlier-tested)."""
    from ..quality import evaluate

    stored = repo.quality.metrics(plates=plates)
    keyed: dict[tuple[str, int], Mapping[str, float]] = {}
    groups: dict[tuple[str, int], Hashable] = {}
    labels: dict[tuple[str, int], str] = {}
    for image_id, channels in stored.items():
        peer = peers.get(image_id)
        if peer is None:
            continue
        for c, members in merged_channels(channels).items():
            keyed[(image_id, c)] = channels[c]
            groups[(image_id, c)] = peer_group(peer, c)
            labels[(image_id, c)] = "=".join(_channel_name(peer.channels, m) for m in members)
    sizes: dict[Hashable, int] = {}
    for g in groups.values():
        sizes[g] = sizes.get(g, 0) + 1
    small: dict[str, int] = {}
    for (image_id, _c), g in groups.items():
        if sizes[g] < thresholds.outlier_min_group:
            small[image_id] = min(small.get(image_id, sizes[g]), sizes[g])
    results = evaluate(keyed, thresholds, groups)
    verdicts: dict[str, tuple[str, list[QCFlag]]] = {}
    for key, res in results.items():
        image_id = key[0]
        status, flags = verdicts.get(image_id, ("pass", []))
        if _rank(res.status) > _rank(status):
            status = res.status
        named = [replace(f, channel=labels[key], channel_index=key[1]) for f in res.flags]
        verdicts[image_id] = (status, flags + named)
    for image_id, (status, flags) in extra.items():
        if image_id in peers:
            verdicts[image_id] = (status, flags)
    return verdicts, stored, small


def run_qc(
    repo: Repository,
    image_ids: Sequence[str] | None = None,
    *,
    thresholds: QCThresholds | None = None,
    jobs: int = 1,
    progress: QCProgress | None = None,
    recompute: bool = True,
    lock: bool = True,
    premeasured: Mapping[str, Mapping[int, Mapping[str, float]]] | None = None,
) -> QCRunReport:
    """Measure the quality of images, store the metrics, and flag every image against its peers.

    1. The selected images are measured (:func:`measure_image`, ``jobs`` threads) and their
       metrics replace the stored ones (``repo.quality.set_metrics``).
    2. Flags are evaluated (:func:`quantscope.quality.evaluate`) grouped by (plate, channel
       index), images without a plate forming the group ``"no plate"``: dataset-level
       outliers compare an image with all its peers, also those measured earlier. Every image
       with stored metrics on the plates of the selected images (on every plate when no
       selection is given) is evaluated again and its status stored
       (``repo.quality.set_status``): adding peers can change the verdict of an earlier
       image, while the images of other plates keep theirs (their peers did not change), so
       the cost follows the plates touched, not the repository's size. After changing the
       thresholds, run it without a selection (``recompute=False`` re-flags every image
       without measuring again).

    Parameters
    ----------
    repo : quantscope.catalog.Repository
        An open repository.
    image_ids : sequence of str, optional
        Images to measure (default: every image).
    thresholds : QCThresholds, optional
        Default: the ``[qc]`` table of the repository's quantscope.toml over the documented
        defaults (:func:`load_thresholds`).
    jobs : int
        Threads measuring images.
    progress : callable, optional
        See :data:`QCProgress`.
    recompute : bool
        Measure images that already have stored metrics again (default). False: reuse
        them and measure only the images without metrics (flags are re-evaluated either way).
    lock : bool
        Hold the repository's write lock while writing (pass False when the caller already
        holds it, as ingest does).
    premeasured : mapping, optional
        ``{image id: {channel: {metric: value}}}`` already computed for selected images
        (ingest measures the planes it has in memory, :func:`measure_planes`): stored as
        given instead of measured again.

    Returns
    -------
    QCRunReport
        Status, reasons and metrics of each selected image. An image that cannot be read gets
        status ``"warn"`` with the reason, and an entry in ``errors``; it does not stop the run.

    Raises
    ------
    quantscope.errors.NotFound
        An id in ``image_ids`` is not in the catalog.
    quantscope.errors.InvalidInput
        A malformed ``[qc]`` table in quantscope.toml.
    quantscope.errors.ConcurrentAccess
        Another process is writing to the repository.
    """
    t0 = time.perf_counter()
    if thresholds is None:
        thresholds = load_thresholds(repo)
    given = {k: {int(c): dict(v) for c, v in m.items()} for k, m in (premeasured or {}).items()}
    images, names = _selected(repo, image_ids, given)
    report = QCRunReport(outlier_min_group=thresholds.outlier_min_group)
    held: contextlib.AbstractContextManager[Any] = (
        repo.write_lock() if lock else contextlib.nullcontext()
    )
    with held:
        todo = [i for i in images if i.id not in given]
        if not recompute:
            have = repo.quality.metrics([i.id for i in todo])
            todo = [i for i in todo if i.id not in have]
        t1 = time.perf_counter()
        measured, errors = _measure_all(repo, todo, jobs, progress)
        measured.update((k, v) for k, v in given.items() if k in names)
        report.measure_seconds = time.perf_counter() - t1
        report.measured = len(measured)
        report.errors = errors
        # the groups whose flags can change: the plates of the images measured (every plate
        # when all images were)
        plates = None if image_ids is None else repo.quality.plates(names)
        peers = repo.quality.peers(plates)
        verdicts, everything, small = _store_and_flag(
            repo, thresholds, measured, errors, peers, plates
        )
        report.small_groups = {k: small[k] for k in names if k in small}
        repo.analyze()
    stored = _ordered({k: everything[k] for k in names if k in everything})
    for image_id, name in names.items():
        status, flags = verdicts.get(image_id, ("pass", []))
        peer = peers.get(image_id)
        report.images[image_id] = ImageQC(
            image_id=image_id,
            name=name,
            status=status,
            flags=tuple(flags),
            metrics=stored.get(image_id, {}),
            error=errors.get(image_id),
            plate=peer.plate if peer else None,
            well=peer.well if peer else None,
            field=peer.field if peer else None,
            channels=peer.channels if peer else (),
        )
    report.seconds = time.perf_counter() - t0
    return report


def _selected(
    repo: Repository, image_ids: Sequence[str] | None, given: Mapping[str, object]
) -> tuple[list[Image], dict[str, str]]:
    """The images to measure (full records; none when every selected image is in ``given``)
    and {id: name} of every selected image, in catalog order.

    Raises
    ------
    quantscope.errors.NotFound
        An id in ``image_ids`` is not in the catalog.
    """
    from ..errors import NotFound

    if image_ids is None:
        images = repo.images.all()
        return images, {i.id: i.name for i in images}
    wanted = list(dict.fromkeys(image_ids))
    if all(k in given for k in wanted):
        # nothing to measure (ingest's case): the names suffice, no full image records
        images = []
        found = repo.images.names(wanted)
        names = {k: found[k] for k in wanted if k in found}
    else:
        images = repo.images.all(wanted)
        names = {i.id: i.name for i in images}
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise NotFound(
            f"{repo.root}: no image with id {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    return images, names


def _store_and_flag(
    repo: Repository,
    thresholds: QCThresholds,
    measured: dict[str, dict[int, dict[str, float]]],
    errors: Mapping[str, str],
    peers: Mapping[str, QualityPeer],
    plates: Collection[str | None] | None,
) -> tuple[
    dict[str, tuple[str, list[QCFlag]]],
    dict[str, dict[int, dict[str, float]]],
    dict[str, int],
]:
    """Store the metrics measured (alpha channels left out; none for the images that could
    not be measured), flag every image of ``peers`` and store the verdicts; returns what
    :func:`_evaluate_repository` does."""
    from ..quality import QCFlag

    for image_id, channels in measured.items():  # alpha is not a measurement
        if image_id in peers:
            for c in alpha_channels(peers[image_id].channels):
                channels.pop(c, None)
    repo.quality.set_metrics(measured.items())
    if errors:  # a failed measurement leaves no stale metrics behind
        repo.quality.set_metrics((image_id, {}) for image_id in errors)
    failed = {image_id: ("warn", [QCFlag.error(msg)]) for image_id, msg in errors.items()}
    verdicts, everything, small = _evaluate_repository(repo, thresholds, failed, peers, plates)
    repo.quality.set_status(verdicts)
    return verdicts, everything, small
