"""Format detection (`quantscope.io.detect_format`) on real vendor files and on broken inputs."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from quantscope.errors import (
    CorruptFile,
    InvalidInput,
    NotFound,
    QuantscopeError,
    UnsupportedFormat,
)
from quantscope.io import (
    FORMATS,
    _formats,
    detect_format,
    installed_formats,
    supported_formats_text,
)

VENDOR_FILES = [
    ("czi/aicsimageio_s_1_t_1_c_1_z_1.czi", "czi"),
    ("ome_tiff/aicsimageio_s_1_t_1_c_1_z_1.ome.tiff", "ome-tiff"),
    ("tiff/aicsimageio_s_1_t_1_c_1_z_1.tiff", "tiff"),
    ("tiff/pims_stuck.tif", "tiff"),
    ("lif/readlif_xz-example.lif", "lif"),
    ("lif/readlif_xz-example_expected/c0t0.tif", "tiff"),
    ("lif/readlif_xz-example_expected/c1t8.tif", "tiff"),
    ("dv/mrc_toxo.dv", "dv"),
    ("nd2/pims_cluster.nd2", "nd2"),
]


@pytest.mark.parametrize(("rel", "expected"), VENDOR_FILES)
def test_vendor_file_detected(vendor_dir: Path, rel: str, expected: str) -> None:
    detected = detect_format(vendor_dir / rel)
    assert detected.format.name == expected
    assert detected.format.installed
    assert detected.note is None  # extension and content agree


def test_every_vendor_image_file_is_covered(vendor_dir: Path) -> None:
    """Every pixel file in vendor_formats is either detected above or the .seq case below."""
    skip = {".md", ".txt"}
    files = {
        p.relative_to(vendor_dir).as_posix()
        for p in vendor_dir.rglob("*")
        if p.is_file() and p.suffix.lower() not in skip
    }
    covered = {rel for rel, _ in VENDOR_FILES} | {"seq/pims_sample_norpix6.seq"}
    assert files == covered


def test_seq_is_unsupported_and_lists_formats(vendor_dir: Path) -> None:
    path = vendor_dir / "seq" / "pims_sample_norpix6.seq"
    with pytest.raises(UnsupportedFormat) as info:
        detect_format(path)
    msg = str(info.value)
    assert str(path) in msg
    assert ".seq" in msg
    assert "supported formats:" in msg
    for name in ("ome-tiff", "tiff", "czi", "nd2", "lif", "dv", "png"):
        assert name in msg
    assert ".ome.tiff" in msg and ".nd2" in msg  # extensions are listed too
    assert isinstance(info.value, InvalidInput) and isinstance(info.value, ValueError)


def test_supported_formats_text_names_installed_readers() -> None:
    text = supported_formats_text()
    assert text.startswith("supported formats: ")
    assert [f.name for f in installed_formats()] == [f.name for f in FORMATS]  # all installed
    for f in FORMATS:
        assert f"{f.name} (" in text


def test_empty_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "empty.tif"
    path.write_bytes(b"")
    with pytest.raises(CorruptFile, match="empty") as info:
        detect_format(path)
    assert str(path) in str(info.value)


def test_text_named_tif_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "notes.tif"
    path.write_text("this is a text file, not an image\n" * 10)
    with pytest.raises(CorruptFile, match="not a valid tiff") as info:
        detect_format(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("suffix", [".czi", ".nd2", ".lif", ".png"])
def test_text_with_sniffable_extension_is_corrupt(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"fake{suffix}"
    path.write_text("definitely not pixels " * 20)
    with pytest.raises(CorruptFile):
        detect_format(path)


def test_tiff_named_png_is_read_as_tiff_with_note(shared_data: Path) -> None:
    path = shared_data / "image_quality" / "BBBC006_z_aligned__a01__s1__w1_10.png"
    detected = detect_format(path)
    assert detected.format.name == "tiff"
    assert detected.note is not None
    assert path.name in detected.note
    assert "'.png'" in detected.note and "tiff" in detected.note


def test_czi_with_wrong_extension_is_detected_by_content(vendor_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "really_a_czi.tif"
    shutil.copyfile(vendor_dir / "czi" / "aicsimageio_s_1_t_1_c_1_z_1.czi", path)
    detected = detect_format(path)
    assert detected.format.name == "czi"
    assert detected.note is not None and "czi" in detected.note


def test_unknown_extension_with_tiff_content(vendor_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "frame.dat"
    shutil.copyfile(vendor_dir / "tiff" / "pims_stuck.tif", path)
    detected = detect_format(path)
    assert detected.format.name == "tiff"
    assert detected.note is not None and "'.dat'" in detected.note


def test_missing_path_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.tif"
    with pytest.raises(NotFound) as info:
        detect_format(path)
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, QuantscopeError)
    assert str(path) in str(info.value)


def test_folder_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="folder") as info:
        detect_format(tmp_path)
    assert not isinstance(info.value, (CorruptFile, UnsupportedFormat))


def test_reader_not_installed_says_what_to_install(
    vendor_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "bioio_nd2" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_formats.importlib.util, "find_spec", find_spec)
    with pytest.raises(UnsupportedFormat, match="pip install bioio-nd2") as info:
        detect_format(vendor_dir / "nd2" / "pims_cluster.nd2")
    assert "nd2 (" not in str(info.value).split("supported formats:")[1]
