"""Open a microscope file as one :class:`SourceImage` per scene, pixels read lazily.

TIFF files (plain, multipage, ImageJ hyperstack, OME-TIFF, BigTIFF) are read with tifffile
directly; every other format goes through its bioio reader plugin, called by class so no plugin
discovery runs. A source reads its pixels one plane (or a band of rows of a plane) at a time, so
an image larger than memory streams through the writer.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CorruptFile, InvalidInput, UnsupportedFormat
from ._formats import Format, detect_format

if TYPE_CHECKING:
    from ome_types import OME

__all__ = ["SourceImage", "open_sources"]

# Series smaller than this are read whole into memory; larger ones are read band by band.
_IN_MEMORY_BYTES = 256 * 2**20


@dataclass
class SourceImage:
    """One scene of one file: a ``(t, c, z, y, x)`` array read plane by plane.

    ``physical_size`` is ``(x, y, z)`` in µm, ``None`` where unknown.
    """

    path: Path
    format: str
    reader: str
    scene: int
    scene_name: str
    shape: tuple[int, int, int, int, int]
    dtype: np.dtype[Any]
    channel_names: list[str]
    physical_size: tuple[float | None, float | None, float | None] = (None, None, None)
    ome_xml: str | None = None
    ome_image_index: int = 0
    note: str | None = None
    _reader: Any = field(default=None, repr=False)
    _ome: Any = field(default=None, repr=False)

    def read_rows(self, t: int, c: int, z: int, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` of plane ``(t, c, z)`` as a 2-D array."""
        return np.asarray(self._reader(t, c, z, y0, y1))

    def read_plane(self, t: int, c: int, z: int) -> np.ndarray:
        """Whole plane ``(t, c, z)`` as a 2-D ``(y, x)`` array."""
        return self.read_rows(t, c, z, 0, self.shape[3])

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def ome(self) -> OME | None:
        """The file's OME metadata (parsed on first use), or None if the file has none."""
        if self._ome is None and self.ome_xml:
            from ome_types import from_xml

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._ome = from_xml(self.ome_xml, validate=False)
        return self._ome


@contextlib.contextmanager
def open_sources(path: str | os.PathLike[str]) -> Iterator[list[SourceImage]]:
    """Open ``path`` and yield one :class:`SourceImage` per scene; files close on exit.

    Raises
    ------
    NotFound, CorruptFile, UnsupportedFormat, InvalidInput
        With the file named and the reason.
    """
    p = Path(path)
    detected = detect_format(p)
    with contextlib.ExitStack() as stack:
        if detected.format.module == "tifffile":
            sources = _open_tiff(p, detected.format, stack)
        else:
            sources = _open_bioio(p, detected.format, stack)
        if not sources:
            raise CorruptFile(
                f"{p}: no readable image in the file; it is truncated or damaged "
                "(check it against the original)"
            )
        for s in sources:
            s.note = "; ".join(n for n in (detected.note, s.note) if n) or None
        yield sources


# ---------------------------------------------------------------------------------------- TIFF


def _tiff_axis_plan(
    axes: str, shape: tuple[int, ...], where: Path, first: str = "T"
) -> dict[str, int]:
    """Map tifffile's axes onto T, C, Z, Y, X.

    Returns {tifffile axis letter: index into "TCZYX", or 5 for a dropped axis of size 1}.
    RGB samples (S) become channels. Other axes (I and Q: pages of unknown meaning; E, R...)
    take the free one of T and Z, ``first`` first: the outer of two such axes is then time
    and the inner z, the order of TZYX hyperstacks. See :func:`_page_axis_hint` for
    ``first``.
    """
    plan = dict(zip(axes, shape, strict=True))
    role_of: dict[str, str] = {}
    for ax in axes:
        if ax in "TCZYX":
            role_of[ax] = ax
    if "S" in plan:
        if "C" in role_of and plan["S"] > 1 and plan["C"] > 1:
            raise UnsupportedFormat(
                f"{where}: both channels and RGB samples ({axes}); not supported"
            )
        if "C" not in role_of or plan["C"] == 1:
            if "C" in role_of:
                role_of["C"] = "-"
            role_of["S"] = "C"
        else:
            role_of["S"] = "-"
    order = (first, "Z" if first == "T" else "T")
    for ax in axes:
        if ax in role_of:
            continue
        if plan[ax] == 1:
            role_of[ax] = "-"
            continue
        free = [r for r in order if r not in role_of.values()]
        if not free:
            raise UnsupportedFormat(f"{where}: cannot map TIFF axes {axes!r} {shape} onto TCZYX")
        role_of[ax] = free[0]
    return {ax: "TCZYX-".index(role_of[ax]) for ax in axes}


def _distinct_axes(axes: str) -> str:
    """tifffile's axes with repeated letters made distinct (``QQYX`` of a TIFF whose shape
    description has no axes becomes ``QqYX``), so each dimension is planned and indexed on
    its own; a repeated unknown axis stays unknown."""
    out: list[str] = []
    for ax in axes:
        if ax in out:
            ax = next(c for c in ax.lower() + "abdfgjklmnoprsuvw" if c not in out and c not in axes)
        out.append(ax)
    return "".join(out)


def _page_axis_hint(tf: Any) -> tuple[str, str | None]:
    """(T or Z, the evidence) for TIFF pages whose axis tifffile reports as unknown (I, Q).

    An ImageJ stack with a frame interval (``finterval``) and no z spacing is a time series;
    one with a z spacing (``spacing``) and no frame interval is a z stack. (ImageJ hyperstacks
    with ``frames=``/``slices=``, OME-TIFF, MetaMorph STK and tifffile's own shaped TIFFs with
    axes already come with T or Z from tifffile.) Without evidence the pages are taken as time
    points, as Bio-Formats reads a plain multi-page TIFF (MinimalTiffReader: SizeT = number of
    pages), and the evidence is None so the caller can say so.
    """
    ij = tf.imagej_metadata if tf.is_imagej else None
    if ij:
        has_t = _positive(ij.get("finterval")) is not None or _positive(ij.get("fps")) is not None
        has_z = _positive(ij.get("spacing")) is not None
        if has_t and not has_z:
            return "T", "ImageJ frame interval"
        if has_z and not has_t:
            return "Z", "ImageJ z spacing"
    return "T", None


# Units a microscope calibration is written in (ImageJ "unit=", MetaMorph, MetaSeries), in µm.
_MICROSCOPE_UNITS_UM = {
    "micron": 1.0, "microns": 1.0, "um": 1.0, "µm": 1.0, "\u03bcm": 1.0, "\\u00b5m": 1.0,
    "micrometer": 1.0, "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3,
}  # fmt: skip
# A centimetre resolution (TIFF ResolutionUnit 3) is what tifffile's documentation and many
# scientific writers use for microscope calibrations, but also what some image editors write
# for a print resolution. It is taken as a calibration only where it gives a pixel of at most
# this size; print resolutions give 84.7 µm (300 dpi) to 352.8 µm (72 dpi), 21.2 µm at 1200 dpi.
MAX_CM_PIXEL_UM = 20.0

_RESUNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}  # centimetre; tifffile's millimetre and micrometre


def _tiff_pixel_size(tf: Any, page: Any) -> tuple[float | None, float | None, float | None]:
    """Physical (x, y, z) pixel size in µm, from what the file says in microscope terms.

    In order: ImageJ's calibration (``unit=micron``, µm, um, nm, mm), MetaMorph's UIC1 tag
    (``XCalibration`` with ``CalibrationUnits``), MetaSeries plane info, Zeiss LSM voxel
    sizes, Micro-Manager's ``PixelSize_um``, then TIFF resolution tags in a metric unit
    (centimetre, within :data:`MAX_CM_PIXEL_UM`; tifffile's millimetre and micrometre).
    A resolution in inches (dots per inch: 72, 150, 300 dpi... set by cameras, scanners and
    image editors for printing) or without a unit is not a microscope calibration: the pixel
    size is then unknown (None), never 25400 / dpi µm. OME-XML, where present, is read
    separately and wins over all of these.
    """
    for reader in (_imagej_size, _metamorph_size, _metaseries_size, _lsm_size, _mm_size):
        try:
            found = reader(tf, page)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
            found = None
        if found is not None and (found[0] is not None or found[1] is not None):
            return found
    return _resolution_size(page)


def _unit_um(unit: str) -> float | None:
    """µm per unit of a microscope calibration's unit name (None: not a length unit)."""
    return _MICROSCOPE_UNITS_UM.get(unit) or _MICROSCOPE_UNITS_UM.get(unit.lower())


def _positive(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) and f > 0 else None


def _per_unit(tag: Any, factor: float) -> float | None:
    """Pixel size from a TIFF rational resolution (pixels per unit) times µm per unit."""
    if tag is None:
        return None
    value = tag.value
    num, den = value if isinstance(value, tuple) else (value, 1)
    n, d = _positive(num), _positive(den)
    return factor * d / n if n is not None and d is not None else None


def _imagej_size(tf: Any, page: Any) -> tuple[float | None, float | None, float | None] | None:
    ij = tf.imagej_metadata if tf.is_imagej else None
    if not ij:
        return None
    unit = str(ij.get("unit", "")).strip()
    factor = _unit_um(unit)
    if unit.lower() == "cm":
        factor = 1e4
    if factor is None:  # "pixel", "inch" or no unit: not a calibration
        return None
    x = _per_unit(page.tags.get("XResolution"), factor)
    y = _per_unit(page.tags.get("YResolution"), factor)
    if unit.lower() == "cm" and not _plausible(x, y):
        return None
    z = _positive(ij.get("spacing"))
    return x, y, (z * factor if z is not None else None)


def _metamorph_size(tf: Any, page: Any) -> tuple[float | None, float | None, float | None] | None:
    tag = page.tags.get(33628)  # UIC1: MetaMorph writes it into plain TIFFs and STK stacks
    uic = tag.value if tag is not None else None
    if not isinstance(uic, dict) or not uic.get("SpatialCalibration", 1):
        return None
    unit = str(uic.get("CalibrationUnits", "")).strip()
    factor = _unit_um(unit)
    if factor is None:
        return None
    x, y = _positive(uic.get("XCalibration")), _positive(uic.get("YCalibration"))
    return (x * factor if x else None), (y * factor if y else None), None


def _metaseries_size(tf: Any, page: Any) -> tuple[float | None, float | None, float | None] | None:
    if not tf.is_metaseries:
        return None
    info = (tf.metaseries_metadata or {}).get("PlaneInfo", {})
    if not info.get("spatial-calibration-state", True):
        return None
    unit = str(info.get("spatial-calibration-units", "")).strip()
    factor = _unit_um(unit)
    if factor is None:
        return None
    x = _positive(info.get("spatial-calibration-x"))
    y = _positive(info.get("spatial-calibration-y"))
    return (x * factor if x else None), (y * factor if y else None), None


def _lsm_size(tf: Any, page: Any) -> tuple[float | None, float | None, float | None] | None:
    if not tf.is_lsm:
        return None
    lsm = tf.lsm_metadata or {}
    x, y, z = (_positive(lsm.get(f"VoxelSize{a}")) for a in "XYZ")  # metres
    return (
        x * 1e6 if x else None,
        y * 1e6 if y else None,
        z * 1e6 if z and lsm.get("DimensionZ", 1) > 1 else None,
    )


def _mm_size(tf: Any, page: Any) -> tuple[float | None, float | None, float | None] | None:
    if not tf.is_micromanager:
        return None
    summary = (tf.micromanager_metadata or {}).get("Summary", {})
    size = _positive(summary.get("PixelSize_um"))
    z = _positive(summary.get("z-step_um"))
    return (size, size, z) if size else None


def _plausible(x: float | None, y: float | None) -> bool:
    return all(v is None or v <= MAX_CM_PIXEL_UM for v in (x, y))


def _resolution_size(page: Any) -> tuple[float | None, float | None, float | None]:
    runit = page.tags.get("ResolutionUnit")
    try:
        factor = _RESUNIT_UM.get(int(runit.value)) if runit is not None else None
    except (TypeError, ValueError):
        factor = None
    if factor is None:  # inch (2), none (1) or missing: a print resolution, not a calibration
        return None, None, None
    x = _per_unit(page.tags.get("XResolution"), factor)
    y = _per_unit(page.tags.get("YResolution"), factor)
    if factor == 1e4 and not _plausible(x, y):
        return None, None, None
    return x, y, None


def _tifffile(p: Path) -> Any:
    """Open a TIFF. MetaMorph writes its UIC tags into plain single-plane TIFFs too (BBBC039
    has them); parsing those as an STK stack costs about 0.7 ms per file, so files are opened
    with STK parsing off and reopened with it only when the UIC2 tag of a real stack is there."""
    import tifffile

    tf = tifffile.TiffFile(p, is_stk=False)
    try:
        if _UIC2_TAG in tf.pages.first.tags:
            tf.close()
            tf = tifffile.TiffFile(p)
    except BaseException:
        tf.close()
        raise
    return tf


_UIC2_TAG = 33629


def _open_tiff(p: Path, fmt: Format, stack: contextlib.ExitStack) -> list[SourceImage]:
    import tifffile

    try:
        tf = _tifffile(p)
        stack.callback(tf.close)
        series = list(tf.series)
        ome_xml = tf.ome_metadata if tf.is_ome else None
    except IndexError as e:  # no first page: the header points past the end of the file
        raise CorruptFile(
            f"{p}: not a readable TIFF: no image page; the file is truncated or damaged"
        ) from e
    except (tifffile.TiffFileError, ValueError, OSError, struct_error()) as e:
        raise CorruptFile(f"{p}: not a readable TIFF ({e})") from e
    sources = []
    for i, s in enumerate(series):
        try:
            axes, shape = _distinct_axes(s.axes), tuple(s.shape)
            first, evidence = _page_axis_hint(tf)
            plan = _tiff_axis_plan(axes, shape, p, first)
            dims = [1, 1, 1, 1, 1]
            for ax, n in zip(axes, shape, strict=True):
                r = plan[ax]
                if r < 5:
                    dims[r] *= n
            if "Y" not in axes or "X" not in axes:
                raise UnsupportedFormat(f"{p}: series {i} has axes {axes!r} without Y and X")
            dtype = np.dtype(s.dtype)
        except (ValueError, IndexError, KeyError) as e:
            raise CorruptFile(f"{p}: series {i} is malformed ({e})") from e
        note = None
        unknown = [ax for ax in axes if ax.upper() in "IQ" and plan[ax] < 5]
        if unknown and evidence is None:
            sizes = " x ".join(str(shape[axes.index(ax)]) for ax in unknown)
            if len(unknown) == 1:
                role = "time points (T), as Bio-Formats reads multi-page TIFFs"
            else:
                role = "time (T, outer) and z (Z, inner), the order of TZYX hyperstacks"
            note = (
                f"{p.name}: {sizes} planes without metadata saying whether they are time "
                f"points or z planes (TIFF axes {s.axes}); stored as {role}. Save z stacks "
                "as OME-TIFF or ImageJ hyperstacks (slices=) to have them read as z"
            )
        reader = _TiffPlaneReader(p, s, axes, plan, tuple(dims), dtype)
        names = [f"C{c}" for c in range(dims[1])]
        phys = _tiff_pixel_size(tf, s.pages[0] if s.pages else tf.pages[0])
        sources.append(
            SourceImage(
                path=p,
                format="ome-tiff" if ome_xml else "tiff",
                reader="tifffile",
                scene=i,
                scene_name=s.name or f"Series {i}",
                shape=tuple(dims),  # type: ignore[arg-type]
                dtype=dtype,
                channel_names=names,
                physical_size=phys,
                ome_xml=ome_xml,
                ome_image_index=i,
                note=note,
                _reader=reader,
            )
        )
    return sources


def struct_error() -> type[Exception]:
    import struct

    return struct.error


class _TiffPlaneReader:
    """Reads (t, c, z, rows) from one tifffile series: whole into memory when small, else via
    tifffile's zarr view, which decodes only the strips/tiles a band of rows touches."""

    def __init__(
        self,
        path: Path,
        series: Any,
        axes: str,
        plan: dict[str, int],
        dims: tuple[int, ...],
        dtype: np.dtype[Any],
    ) -> None:
        self.path, self.series, self.axes, self.plan, self.dims = path, series, axes, plan, dims
        self.nbytes = int(np.prod(dims)) * dtype.itemsize
        self._full: np.ndarray | None = None
        self._zarr: Any = None

    def _index(self, t: int, c: int, z: int, y0: int, y1: int) -> tuple[Any, ...]:
        want = (t, c, z)
        idx: list[Any] = []
        for ax in self.axes:
            r = self.plan[ax]
            if ax == "Y":
                idx.append(slice(y0, y1))
            elif ax == "X":
                idx.append(slice(None))
            elif r == 5:
                idx.append(0)
            else:
                idx.append(want[r])
        return tuple(idx)

    def __call__(self, t: int, c: int, z: int, y0: int, y1: int) -> np.ndarray:
        import tifffile

        idx = self._index(t, c, z, y0, y1)
        try:
            if self.nbytes <= _IN_MEMORY_BYTES:
                if self._full is None:
                    self._full = self.series.asarray()
                out = self._full[idx]
            else:
                if self._zarr is None:
                    import zarr

                    store = self.series.aszarr(level=0)
                    self._zarr = zarr.open_array(store, mode="r")
                out = self._zarr[idx]
        except (tifffile.TiffFileError, ValueError, OSError, IndexError, RuntimeError) as e:
            raise CorruptFile(
                f"{self.path}: pixel data cannot be decoded ({e}); the file is truncated or damaged"
            ) from e
        # Y comes before X in every TIFF axes string, so a 2-D result is already (y, x)
        return np.asarray(out)


# --------------------------------------------------------------------------------------- bioio

_READER_CLASSES = {
    "czi": "bioio_czi",
    "nd2": "bioio_nd2",
    "lif": "bioio_lif",
    "dv": "bioio_dv",
    "png": "bioio_imageio",
    "jpeg": "bioio_imageio",
    "bmp": "bioio_imageio",
}


# bioio-czi changes the process's working directory while it converts metadata (os.chdir), and
# warnings filters are process-wide: plugin opens and metadata conversion run one at a time.
_PLUGIN_LOCK = threading.RLock()


def _open_bioio(p: Path, fmt: Format, stack: contextlib.ExitStack) -> list[SourceImage]:
    import importlib

    module = importlib.import_module(_READER_CLASSES[fmt.name])
    try:
        with _PLUGIN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = module.Reader(str(p))
            scenes = list(reader.scenes)
    except Exception as e:  # plugins raise many types for damaged files
        raise CorruptFile(
            f"{p}: {fmt.description} cannot open the file ({type(e).__name__}: {e})"
        ) from e
    if hasattr(reader, "close"):
        stack.callback(reader.close)
    ome_xml = None
    try:
        with _PLUGIN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ome = reader.ome_metadata
        ome_xml = ome.to_xml() if ome is not None else None
    except Exception:  # many plugins do not implement OME conversion for every file
        ome = None
    if ome is None and fmt.name == "dv":  # bioio-dv has no OME conversion: build it
        ome = _dv_ome(p, reader)
        ome_xml = ome.to_xml() if ome is not None else None
    sources = []
    for i, name in enumerate(scenes):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reader.set_scene(i)
                order = reader.dims.order
                samples = reader.dims.S if "S" in order else 1
                if samples > 1:
                    data = reader.get_image_dask_data("TCZYXS")
                    if data.shape[1] != 1:
                        raise UnsupportedFormat(f"{p}: scene {name}: both channels and RGB samples")
                    data = data[:, 0].transpose(0, 4, 1, 2, 3)
                else:
                    data = reader.get_image_dask_data("TCZYX")
                pps = reader.physical_pixel_sizes
                names = [str(n) for n in (reader.channel_names or [])]
        except UnsupportedFormat:
            raise
        except Exception as e:
            raise CorruptFile(
                f"{p}: scene {name!r} cannot be read ({type(e).__name__}: {e})"
            ) from e
        shape = tuple(int(n) for n in data.shape)
        if fmt.name == "dv" and ome is not None:  # the names given to the channels above
            names = [str(ch.name) for ch in ome.images[0].pixels.channels]
        if len(names) != shape[1] or samples > 1:
            names = (
                ["R", "G", "B", "A"][: shape[1]]
                if samples > 1
                else [f"C{c}" for c in range(shape[1])]
            )

        read = _DaskPlaneReader(p, str(name), i, data)

        def um(v: Any) -> float | None:
            return float(v) if v is not None and np.isfinite(v) and v > 0 else None

        sources.append(
            SourceImage(
                path=p,
                format=fmt.name,
                reader=module.__name__,
                scene=i,
                scene_name=str(name),
                shape=shape,  # type: ignore[arg-type]
                dtype=np.dtype(data.dtype),
                channel_names=names,
                physical_size=(um(pps.X), um(pps.Y), um(pps.Z)),
                ome_xml=ome_xml,
                ome_image_index=i,
                _reader=read,
                _ome=ome,
            )
        )
    if not sources:
        raise InvalidInput(f"{p}: the file holds no scenes")
    return sources


def _dv_ome(p: Path, reader: Any) -> OME | None:
    """OME metadata of a DeltaVision file from its header, as Bio-Formats reads it.

    bioio-dv exposes the header but no OME: the channels' emission wavelengths (the header's
    ``wave1..wave5``, in nm), excitation and emission per channel from the extended header
    where there is one, the pixel sizes (``dx, dy, dz``, µm) and the objective from the lens
    id (softWoRx's lens table, shipped with ``mrc``) would otherwise be lost. Channels are
    named by their wavelengths (``ex/em`` or ``em``) where the reader has only numbers.
    Returns None when the header cannot be read.
    """
    try:
        with _PLUGIN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = reader.metadata
            names = [str(n) for n in (reader.channel_names or [])]
            dims = reader.dims
            dtype = np.dtype(reader.dtype)
        hdr = dict(meta["header"])
        ext = dict(meta.get("extended_header") or {})
        nc, nz, nt = int(dims.C), int(dims.Z), int(dims.T)
        ny, nx = int(dims.Y), int(dims.X)
    except Exception:  # a header bioio-dv cannot give: no OME, as before
        return None
    from ome_types import model as m

    def positive(v: Any) -> float | None:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return f if np.isfinite(f) and f > 0 else None

    channels = []
    for c in range(nc):
        em = positive(hdr.get(f"wave{c + 1}")) if c < 5 else None
        ex = None
        frame = next((f for k, f in ext.items() if _dv_frame(k).get("C", 0) == c), None)
        if isinstance(frame, dict):
            em = positive(frame.get("emWavelen")) or em
            ex = positive(frame.get("exWavelen"))
        name = names[c] if c < len(names) else str(c)
        if name.isdigit() and em is not None:
            name = f"{ex:.0f}/{em:.0f}" if ex is not None else f"{em:.0f}"
        channels.append(
            m.Channel(
                id=f"Channel:0:{c}",
                name=name,
                samples_per_pixel=1,
                emission_wavelength=em,
                excitation_wavelength=ex,
            )
        )
    pixel_types = {"uint8": "uint8", "int16": "int16", "uint16": "uint16", "int32": "int32"}
    pixel_types |= {"float32": "float", "complex64": "complex"}
    if dtype.name not in pixel_types:
        return None

    def size(key: str) -> float | None:
        return positive(hdr.get(key))

    instruments = []
    objective_settings = None
    lens = _dv_lens(hdr.get("lens_num"))
    if lens is not None:
        objective = m.Objective(id="Objective:0", **lens)
        instruments = [m.Instrument(id="Instrument:0", objectives=[objective])]
        objective_settings = m.ObjectiveSettings(id="Objective:0")
    image = m.Image(
        id="Image:0",
        name=p.stem,
        instrument_ref=m.InstrumentRef(id="Instrument:0") if instruments else None,
        objective_settings=objective_settings,
        pixels=m.Pixels(
            id="Pixels:0",
            dimension_order=m.Pixels_DimensionOrder.XYZCT,
            type=m.PixelType(pixel_types[dtype.name]),
            size_x=nx,
            size_y=ny,
            size_z=nz,
            size_c=nc,
            size_t=nt,
            physical_size_x=size("dx"),
            physical_size_y=size("dy"),
            physical_size_z=size("dz") if nz > 1 else None,
            channels=channels,
            metadata_only=m.MetadataOnly(),
        ),
    )
    return m.OME(images=[image], instruments=instruments, creator="quantscope (DeltaVision header)")


def _dv_frame(key: str) -> dict[str, int]:
    """``{"C": 1, "T": 0, "Z": 3}`` of an extended-header key such as ``C1T0Z3``."""
    import re

    return {a: int(n) for a, n in re.findall(r"([A-Z])(\d+)", str(key))}


def _dv_lens(lens_num: Any) -> dict[str, Any] | None:
    """The objective of a DeltaVision lens id, from softWoRx's lens table in ``mrc``."""
    try:
        from mrc.lenses import D

        lens = D[int(lens_num)]
    except Exception:  # unknown id, or an mrc without the table
        return None
    out: dict[str, Any] = {"model": lens.get("name") or None}
    name = str(lens.get("name") or "")
    if name.split(" ", 1)[0] in ("Olympus", "Nikon", "Zeiss", "Leica", "Applied"):
        out["manufacturer"] = name.split(" ", 1)[0]
    if lens.get("magnification"):
        out["nominal_magnification"] = float(lens["magnification"])
    if lens.get("lensNA") and 0 < float(lens["lensNA"]) <= 2:
        out["lens_na"] = float(lens["lensNA"])
    imm = {"oil": "Oil", "water": "Water", "air": "Air", "glycerol": "Glycerol"}
    if str(lens.get("immersion", "")).lower() in imm:
        out["immersion"] = imm[str(lens["immersion"]).lower()]
    corr = {"planapo": "PlanApo", "planfluor": "PlanFluor", "apo": "Apo", "fluor": "Fluor"}
    if str(lens.get("correction", "")).lower() in corr:
        out["correction"] = corr[str(lens["correction"]).lower()]
    return out


class _DaskPlaneReader:
    """Reads (t, c, z, rows) from a reader plugin's dask array. Some plugins fix other frame
    axes than (y, x) (Leica xz scans fix (z, x)); for those the (t, c) volume is read once and
    planes are cut from it."""

    def __init__(self, path: Path, scene: str, scene_index: int, data: Any) -> None:
        self.path, self.scene, self.scene_index, self.data = path, scene, scene_index, data
        self._volume: tuple[tuple[int, int], np.ndarray] | None = None

    def __call__(self, t: int, c: int, z: int, y0: int, y1: int) -> np.ndarray:
        try:
            if self._volume is None:
                try:
                    return np.asarray(self.data[t, c, z, y0:y1, :].compute(scheduler="synchronous"))
                except ValueError:
                    pass  # plane selection not possible with this plugin: fall back to volumes
            if self._volume is None or self._volume[0] != (t, c):
                try:
                    vol = np.asarray(self.data[t, c].compute(scheduler="synchronous"))
                except ValueError:
                    if self.path.suffix.lower() != ".lif":
                        raise
                    vol = _liffile_volume(self.path, self.scene_index, t, c)
                self._volume = ((t, c), vol)
            return self._volume[1][z, y0:y1, :]
        except Exception as e:
            raise CorruptFile(
                f"{self.path}: scene {self.scene!r}: pixel data cannot be decoded ({e})"
            ) from e


def _liffile_volume(path: Path, index: int, t: int, c: int) -> np.ndarray:
    """(z, y, x) volume of one LIF image read with liffile itself. bioio-lif cannot read images
    whose frame is not (y, x), such as Leica xz and xzt line scans."""
    import liffile

    with liffile.LifFile(path) as lf:
        im = lf.images[index]
        data = np.asarray(im.asarray())
        dims = list(im.dims)
    for ax in "TCZYX":
        if ax not in dims:
            data = data[np.newaxis]
            dims.insert(0, ax)
    data = data.transpose([dims.index(ax) for ax in "TCZYX"])
    return data[t, c]
