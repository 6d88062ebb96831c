"""Which reader handles which file: by content (magic bytes) first, extension second.

Reader choice is deterministic and quiet: a file is sniffed once and handed to exactly one
reader, so a plain TIFF is never first tried as OME-TIFF (bioio's default plugin order does
that, with a warning per file).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptFile, InvalidInput, NotFound, UnsupportedFormat

__all__ = [
    "FORMATS",
    "Detected",
    "Format",
    "detect_format",
    "installed_formats",
    "supported_formats_text",
]


@dataclass(frozen=True)
class Format:
    """A file format quantscope can read, and the module that reads it."""

    name: str
    extensions: tuple[str, ...]
    module: str  # importable module of the reader ("tifffile" for the built-in TIFF path)
    description: str

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


FORMATS: tuple[Format, ...] = (
    Format(
        "ome-tiff",
        (".ome.tif", ".ome.tiff", ".ome.tf2", ".ome.tf8", ".ome.btf"),
        "tifffile",
        "OME-TIFF (tifffile)",
    ),
    Format(
        "tiff",
        (".tif", ".tiff", ".btf", ".tf2", ".tf8"),
        "tifffile",
        "TIFF incl. ImageJ hyperstacks, multipage, BigTIFF (tifffile)",
    ),
    Format("czi", (".czi",), "bioio_czi", "Zeiss CZI (bioio-czi)"),
    Format("nd2", (".nd2",), "bioio_nd2", "Nikon ND2 (bioio-nd2)"),
    Format("lif", (".lif",), "bioio_lif", "Leica LIF (bioio-lif)"),
    Format("dv", (".dv", ".r3d"), "bioio_dv", "DeltaVision DV (bioio-dv)"),
    Format("png", (".png",), "bioio_imageio", "PNG (bioio-imageio)"),
    Format("jpeg", (".jpg", ".jpeg"), "bioio_imageio", "JPEG (bioio-imageio)"),
    Format("bmp", (".bmp",), "bioio_imageio", "BMP (bioio-imageio)"),
)
_BY_NAME = {f.name: f for f in FORMATS}


@dataclass(frozen=True)
class Detected:
    """The reader chosen for a file, and a note when content and extension disagree."""

    format: Format
    note: str | None = None


# Files skipped silently when a folder is walked: documentation and sidecars, never pixels.
NON_IMAGE_SUFFIXES = frozenset(
    {
        ".md", ".txt", ".csv", ".tsv", ".json", ".yaml", ".yml", ".toml", ".xml", ".cppipe",
        ".cpproj", ".py", ".html", ".htm", ".pdf", ".log", ".ini", ".cfg", ".zip", ".gz", ".db",
        ".sqlite",
    }
)  # fmt: skip


def installed_formats() -> list[Format]:
    """Formats whose reader is importable here."""
    return [f for f in FORMATS if f.installed]


def supported_formats_text() -> str:
    """One line naming every supported format and its extensions (for error messages)."""
    parts = [f"{f.name} ({' '.join(f.extensions)})" for f in installed_formats()]
    return "supported formats: " + ", ".join(parts)


def _sniff(head: bytes) -> str | None:
    """Format name from the first bytes of a file, or None if not recognised."""
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:2] == b"BM":
        return "bmp"
    if head[:10] == b"ZISRAWFILE":
        return "czi"
    if head[:4] == b"\x70\x00\x00\x00" and len(head) > 8 and head[8] == 0x2A:
        return "lif"
    if head[:4] in (b"\xda\xce\xbe\x0a", b"\x00\x00\x00\x0c") and (
        head[:4] == b"\xda\xce\xbe\x0a" or b"jP" in head[:12]
    ):
        return "nd2"
    if len(head) >= 98 and head[96:98] in (b"\xa0\xc0", b"\xc0\xa0"):
        return "dv"
    return None


def _by_extension(path: Path) -> Format | None:
    name = path.name.lower()
    # longest extension first so ".ome.tif" wins over ".tif"
    best: Format | None = None
    best_len = 0
    for f in FORMATS:
        for ext in f.extensions:
            if name.endswith(ext) and len(ext) > best_len:
                best, best_len = f, len(ext)
    return best


def detect_format(path: str | os.PathLike[str]) -> Detected:
    """Choose the one reader for ``path`` from its content and extension.

    Content wins over the extension: a TIFF named ``.png`` (as some public data sets ship) is
    read as TIFF, and the returned ``note`` says so.

    Raises
    ------
    NotFound
        The path does not exist.
    CorruptFile
        The file is empty, cannot be opened, or its header is not that of its format.
    UnsupportedFormat
        No installed reader handles the file; the message lists the supported formats.
    """
    p = Path(path)
    if not p.exists():
        raise NotFound(f"{p}: no such file")
    if p.is_dir():
        raise InvalidInput(f"{p}: is a folder, not an image file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(128)
    except OSError as e:
        raise CorruptFile(f"{p}: cannot be read ({e.strerror or e})") from e
    if not head:
        raise CorruptFile(f"{p}: file is empty (0 bytes)")
    by_ext = _by_extension(p)
    sniffed = _sniff(head)
    note = None
    if sniffed is not None and (by_ext is None or _base(by_ext) != sniffed):
        fmt = _BY_NAME[sniffed]
        ext = p.suffix or "(none)"
        note = f"{p.name}: extension {ext!r} but the content is {fmt.name}; read as {fmt.name}"
    elif by_ext is None:
        raise UnsupportedFormat(
            f"{p}: no reader for {p.suffix or 'files without extension'}; "
            f"{supported_formats_text()}"
        )
    else:
        fmt = by_ext
        if sniffed is None and _base(fmt) in _SNIFFABLE:
            raise CorruptFile(
                f"{p}: not a valid {fmt.name} file (its first bytes are not a {fmt.name} header); "
                "the file is damaged or has the wrong extension"
            )
    if not fmt.installed:
        raise UnsupportedFormat(
            f"{p}: the {fmt.description} reader is not installed "
            f"(pip install {fmt.module.replace('_', '-')}); {supported_formats_text()}"
        )
    return Detected(fmt, note)


_SNIFFABLE = frozenset({"tiff", "png", "jpeg", "bmp", "czi", "lif", "nd2"})


def _base(fmt: Format) -> str:
    return "tiff" if fmt.name == "ome-tiff" else fmt.name
