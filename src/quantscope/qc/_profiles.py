"""Illumination profiles per plate and channel: estimate, store as OME-Zarr, load."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._text import plural
from ..errors import InvalidInput, NotFound, QuantscopeError, RepositoryError
from ..model import Image
from ._measure import BEST_FOCUS_PLANE, StoredImage, alpha_channels, qc_level

if TYPE_CHECKING:
    from ..catalog import Repository

__all__ = [
    "PROFILES_DIR",
    "MissingProfile",
    "StoredProfile",
    "estimate_profiles",
    "load_profile",
    "profile_gaps",
]

#: Folder of the stored profiles, relative to the repository root.
PROFILES_DIR = "profiles"


@dataclass(frozen=True)
class StoredProfile:
    """An illumination profile :func:`estimate_profiles` stored.

    Attributes
    ----------
    plate : str
        Plate name.
    channel : int
        Channel index.
    channel_name : str
        Channel name (of the plate's first image).
    n_images : int
        Images the profile was estimated from.
    shape : tuple of int
        ``(y, x)`` of the profile: that of the QC level of the plate's images (full
        resolution up to 2048 px, see :func:`quantscope.qc.qc_level`).
    store_path : str
        OME-Zarr of the profile, relative to the repository root.
    corner_center_ratio, flatness : float
        Uniformity of the flat field (1: even).
    has_dark : bool
        Whether a dark field was estimated and stored (second channel).
    """

    plate: str
    channel: int
    channel_name: str
    n_images: int
    shape: tuple[int, int]
    store_path: str
    corner_center_ratio: float
    flatness: float
    has_dark: bool


@dataclass(frozen=True)
class MissingProfile:
    """A plate channel (or the images without a plate) that has no illumination profile.

    Attributes
    ----------
    plate : str or None
        Plate name; None for the images that are on no plate.
    channel : int or None
        Channel index; None when the reason concerns the whole plate.
    channel_name : str or None
        Channel name (of the plate's first image showing it).
    reason : str
        Why there is no profile, and what to do where something can be done.
    """

    plate: str | None
    channel: int | None
    channel_name: str | None
    reason: str

    def message(self) -> str:
        """One line: what has no profile, and why."""
        if self.plate is None:
            return f"no illumination profile for the images without a plate: {self.reason}"
        what = f"plate {self.plate}"
        if self.channel is not None:
            what += f" channel {self.channel_name or self.channel}"
        return f"no illumination profile for {what}: {self.reason}"


@dataclass
class _PlatePlan:
    """Which images of one plate each channel's profile is estimated from, or why none is."""

    usable: dict[int, list[Image]]  # channel -> images of the most common size (>= 2)
    missing: list[MissingProfile]
    names: dict[int, str]


def _plan_plate(plate: str, images: list[Image]) -> _PlatePlan:
    plan = _PlatePlan({}, [], {})
    if not images:
        plan.missing.append(MissingProfile(plate, None, None, "the plate has no images"))
        return plan
    n_channels = max(img.shape[1] for img in images)
    for c in range(n_channels):
        have = [img for img in images if img.shape[1] > c]
        first = have[0]
        name = first.channels[c].name if c < len(first.channels) else f"C{c}"
        plan.names[c] = name
        if c in alpha_channels([ch.name for ch in first.channels]):
            plan.missing.append(
                MissingProfile(plate, c, name, "an alpha channel (opacity, not light)")
            )
            continue
        if len(have) < 2:
            plan.missing.append(
                MissingProfile(
                    plate,
                    c,
                    name,
                    f"only {len(have)} image of the plate shows this channel; a profile is "
                    "estimated from 2 or more images of one size",
                )
            )
            continue
        sizes = Counter(tuple(img.shape[-2:]) for img in have)
        size, n = sizes.most_common(1)[0]
        if n < 2:
            plan.missing.append(
                MissingProfile(
                    plate,
                    c,
                    name,
                    f"its {len(have)} images all differ in size; a profile is estimated from "
                    "2 or more images of one size",
                )
            )
            continue
        plan.usable[c] = [img for img in have if tuple(img.shape[-2:]) == size]
    return plan


def _plans(repo: Repository, plate: str | None) -> tuple[dict[str, _PlatePlan], list[Image]]:
    """The plan of every plate (or of ``plate``), and the images on no plate."""
    plates = [p.name for p in repo.images.plates()]
    if plate is not None:
        if plate not in plates:
            raise NotFound(
                f"{repo.root}: no plate named {plate!r}"
                + (f" (plates: {', '.join(plates)})" if plates else " (the repository has none)")
            )
        plates = [plate]
    by_plate: dict[str, list[Image]] = {name: [] for name in plates}
    loose: list[Image] = []
    for img in repo.images.all():
        if img.position is None:
            loose.append(img)
        elif img.position.plate in by_plate:
            by_plate[img.position.plate].append(img)
    return {name: _plan_plate(name, imgs) for name, imgs in by_plate.items()}, loose


def _loose_gap(loose: list[Image]) -> MissingProfile:
    return MissingProfile(
        None,
        None,
        None,
        f"{plural(len(loose), 'image')} {'is' if len(loose) == 1 else 'are'} on no plate, and "
        "illumination profiles are estimated per "
        "plate (one acquisition); ingest them with plate, well and site names, or correct "
        "their illumination yourself",
    )


def profile_gaps(repo: Repository, plate: str | None = None) -> list[MissingProfile]:
    """Which plate channels have no stored illumination profile, and why.

    For every plate (or the one named) and channel without a profile in the catalog: the
    reason :func:`estimate_profiles` cannot estimate one (an empty plate, a channel shown by
    fewer than 2 images of one size, an alpha channel), or that it has not been estimated yet
    (with the command that does it). Without ``plate``, images on no plate get one entry
    (``plate`` None): profiles are per plate.

    Raises
    ------
    quantscope.errors.NotFound
        ``plate`` is not in the catalog.
    """
    plans, loose = _plans(repo, plate)
    stored = {(row.plate, row.channel) for row in repo.quality.illumination_profiles()}
    out: list[MissingProfile] = []
    for name, plan in plans.items():
        for c in range(max([*plan.names, -1]) + 1):
            if (name, c) in stored:
                continue
            known = [m for m in plan.missing if m.channel in (c, None)]
            if known:
                out.extend(m for m in known if m not in out)
            elif c in plan.usable:
                out.append(
                    MissingProfile(
                        name,
                        c,
                        plan.names[c],
                        f"not estimated yet: run `quantscope qc {shlex.quote(str(repo.root))} "
                        f"--profiles --plate {shlex.quote(name)}`",
                    )
                )
        if not plan.names:
            out.extend(plan.missing)
    if plate is None and loose:
        out.append(_loose_gap(loose))
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".") or "plate"


def profile_path(plate: str, channel: int) -> str:
    """Where the profile of ``channel`` of ``plate`` is stored, relative to the repository."""
    return f"{PROFILES_DIR}/{_safe(plate)}/{channel}.ome.zarr"


def _digest(flat: npt.NDArray[Any], dark: npt.NDArray[Any] | None) -> str:
    h = hashlib.sha256(np.ascontiguousarray(flat, dtype="<f4").tobytes())
    if dark is not None:
        h.update(np.ascontiguousarray(dark, dtype="<f4").tobytes())
    return h.hexdigest()


def _write_profile(
    root: Path, rel: str, name: str, flat: npt.NDArray[np.float32], dark: npt.NDArray[Any] | None
) -> None:
    """Write the profile as a float32 OME-Zarr at ``root / rel``, replacing any earlier one."""
    from ..io import ChannelDisplay, ImageSpec, write_image

    planes = [np.asarray(flat, np.float32)]
    labels = [ChannelDisplay("flat", "FFFFFF")]
    if dark is not None:
        planes.append(np.asarray(dark, np.float32))
        labels.append(ChannelDisplay("dark", "808080"))
    y, x = planes[0].shape
    spec = ImageSpec(
        shape=(1, len(planes), 1, y, x), dtype="float32", name=name, channels=tuple(labels)
    )

    def read_rows(t: int, c: int, z: int, y0: int, y1: int) -> npt.NDArray[np.float32]:
        return planes[c][y0:y1]

    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:12]
    new = dest.parent / f".{dest.name}.new-{tag}"
    write_image(new, read_rows, spec)  # itself atomic: written under a temporary name
    old = dest.parent / f".{dest.name}.old-{tag}"
    if dest.exists():
        os.rename(dest, old)
    os.rename(new, dest)
    shutil.rmtree(old, ignore_errors=True)


def _clean_leftovers(root: Path) -> None:
    base = root / PROFILES_DIR
    if not base.is_dir():
        return
    for folder in base.iterdir():
        if folder.is_dir():
            for tmp in folder.glob(".*"):
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    tmp.unlink(missing_ok=True)


def _planes(
    members: list[tuple[Image, StoredImage, int]],
    channel: int,
    best: dict[str, dict[int, dict[str, float]]],
) -> Iterator[npt.NDArray[Any]]:
    for img, stored, level in members:
        n_z = stored.shapes[level][2]
        z = n_z // 2
        value = best.get(img.id, {}).get(channel, {}).get(BEST_FOCUS_PLANE)
        if value is not None and np.isfinite(value) and 0 <= int(value) < n_z:
            z = int(value)
        yield stored.plane(level, channel, z)


def estimate_profiles(
    repo: Repository,
    plate: str | None = None,
    *,
    dark: bool = False,
    lock: bool = True,
) -> list[StoredProfile]:
    """Estimate, store and record the illumination profile of every channel of every plate.

    For each plate (or the one named) and each channel shown by at least 2 images of one size,
    the QC-level planes (t = 0; for z-stacks the best-focus plane found by QC, else the middle
    one) go to :func:`quantscope.quality.estimate_illumination_profile`. Images whose size
    differs from the most common one among the channel's images are left out; alpha channels
    get no profile. :func:`profile_gaps` says which plate channels have none, and why. The
    profile is written as a small
    float32 OME-Zarr at ``profiles/<plate>/<channel index>.ome.zarr`` (channel 0 ``flat``,
    channel 1 ``dark`` when estimated), replacing an earlier one atomically, and recorded in
    the catalog (``repo.quality.set_illumination_profile``, with the SHA-256 of the float32 bytes).

    Parameters
    ----------
    repo : quantscope.catalog.Repository
        An open repository.
    plate : str, optional
        Only this plate.
    dark : bool
        Also estimate a dark field (``dark="estimate"``: the per-pixel 1st percentile of the
        raw images, smoothed); it assumes every pixel shows unlit background in some image.
        Default False: no dark field is subtracted or stored.
    lock : bool
        Hold the repository's write lock (False when the caller already holds it).

    Returns
    -------
    list of StoredProfile
        One per stored profile, by plate then channel.

    Raises
    ------
    quantscope.errors.NotFound
        ``plate`` is not in the catalog.
    """
    from ..quality import estimate_illumination_profile

    plans, _ = _plans(repo, plate)
    stored_metrics = repo.quality.metrics()
    out: list[StoredProfile] = []
    held: contextlib.AbstractContextManager[Any] = (
        repo.write_lock() if lock else contextlib.nullcontext()
    )
    with held:
        _clean_leftovers(repo.root)
        for name, plan in plans.items():
            opened: dict[str, tuple[Image, StoredImage, int]] = {}
            for c, images in plan.usable.items():
                use = []
                for img in images:
                    if img.id not in opened:
                        stored = StoredImage.open(repo.root / img.store_path)
                        opened[img.id] = (img, stored, qc_level(stored.shapes))
                    use.append(opened[img.id])
                shape = tuple(use[0][1].shapes[use[0][2]][-2:])
                ch_name = plan.names[c]
                try:
                    profile = estimate_illumination_profile(
                        _planes(use, c, stored_metrics),
                        dark="estimate" if dark else None,
                    )
                except InvalidInput as e:
                    raise InvalidInput(
                        f"plate {name!r} channel {ch_name!r}: no illumination profile ({e})"
                    ) from e
                rel = profile_path(name, c)
                _write_profile(
                    repo.root,
                    rel,
                    f"illumination profile {name} {ch_name}",
                    profile.flat,
                    profile.dark,
                )
                repo.quality.set_illumination_profile(
                    name,
                    c,
                    ch_name,
                    rel,
                    profile.n_images,
                    _digest(profile.flat, profile.dark),
                )
                out.append(
                    StoredProfile(
                        plate=name,
                        channel=c,
                        channel_name=ch_name,
                        n_images=profile.n_images,
                        shape=(int(shape[0]), int(shape[1])),
                        store_path=rel,
                        corner_center_ratio=profile.corner_center_ratio,
                        flatness=profile.flatness,
                        has_dark=profile.dark is not None,
                    )
                )
    return out


def load_profile(
    repo: Repository, plate: str, channel: int | str
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
    """The stored illumination profile of one channel of a plate: ``(flat, dark or None)``.

    Parameters
    ----------
    repo : quantscope.catalog.Repository
        An open repository.
    plate : str
        Plate name.
    channel : int or str
        Channel index or name.

    Returns
    -------
    flat : numpy.ndarray
        2-D float32 flat field of mean 1, at the QC level of the plate's images (the full
        resolution for images up to 2048 px; resize it for larger images).
    dark : numpy.ndarray or None
        2-D float32 dark field (ADU), or None when none was estimated. Correct an image with
        :func:`quantscope.quality.apply_flatfield` ``(image, flat, dark)``.

    Raises
    ------
    quantscope.errors.NotFound
        No profile is stored for that plate and channel (run ``quantscope qc --profiles``).
    quantscope.errors.NotFound
        The catalog lists the profile but its folder is missing.
    quantscope.errors.RepositoryError
        The stored profile cannot be read (damaged files) or no longer matches the SHA-256
        recorded in the catalog.
    """
    rows = [r for r in repo.quality.illumination_profiles() if r.plate == plate]
    row = next(
        (
            r
            for r in rows
            if (r.channel == channel if isinstance(channel, int) else r.channel_name == channel)
        ),
        None,
    )
    if row is None:
        have = ", ".join(f"{r.channel} ({r.channel_name})" for r in rows)
        raise NotFound(
            f"{repo.root}: no illumination profile of plate {plate!r} channel {channel!r}"
            + (f" (stored: {have})" if have else "")
            + "; estimate one with `quantscope qc REPO --profiles`"
        )
    flat, dark = read_profile(repo.root, row.store_path, plate, row.channel)
    if _digest(flat, dark) != row.sha256:
        raise RepositoryError(
            f"{repo.root / row.store_path}: the stored profile differs from the one recorded "
            f"in the catalog (SHA-256 mismatch); estimate it again with `quantscope qc {repo.root} "
            f"--profiles --plate '{plate}'`"
        )
    return flat, dark


def read_profile(
    root: Path, store_path: str, plate: str, channel: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
    """Read a stored profile's flat (and dark) field; errors say which profile and what to do.

    Raises
    ------
    quantscope.errors.NotFound
        The profile's folder is missing.
    quantscope.errors.RepositoryError
        Its files cannot be read or decoded, or it is not a 2-D profile.
    """
    path = root / store_path
    again = f"estimate it again with `quantscope qc {root} --profiles --plate '{plate}'`"
    what = f"the illumination profile of plate {plate!r} channel {channel}"
    if not path.is_dir():
        raise NotFound(f"{path}: {what} is listed in the catalog but missing; {again}")
    try:
        stored = StoredImage.open(path)
        n_c = stored.shapes[0][1]
        flat = stored.plane(0, 0, 0).astype(np.float32, copy=False)
        dark = stored.plane(0, 1, 0).astype(np.float32, copy=False) if n_c > 1 else None
    except (QuantscopeError, OSError, ValueError, RuntimeError, KeyError, IndexError) as e:
        detail = str(e).removeprefix(f"{path}/").removeprefix(f"{path}: ")
        raise RepositoryError(f"{path}: {what} cannot be read ({detail}); {again}") from e
    if flat.ndim != 2:
        raise RepositoryError(f"{path}: {what} is not a 2-D field (shape {flat.shape}); {again}")
    return flat, dark
