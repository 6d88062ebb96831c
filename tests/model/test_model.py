"""The frozen data models and well-name parsing."""

from __future__ import annotations

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantscope.model import (
    Acquisition,
    Channel,
    Image,
    Objective,
    PlatePosition,
    SourceFile,
    parse_well,
    well_name,
)

ROWS = st.integers(min_value=0, max_value=26 + 26 * 26 - 1)  # "A".."ZZ"
COLUMNS = st.integers(min_value=0, max_value=998)  # "01".."999"


@given(ROWS, COLUMNS)
def test_well_name_round_trip(row: int, column: int) -> None:
    name = well_name(row, column)
    assert parse_well(name) == (row, column)
    assert parse_well(name.lower()) == (row, column)
    assert parse_well(f"  {name} ") == (row, column)


@given(ROWS, COLUMNS)
def test_well_names_are_unique_and_well_formed(row: int, column: int) -> None:
    name = well_name(row, column)
    letters = name.rstrip("0123456789")
    assert letters.isalpha() and letters.isupper() and 1 <= len(letters) <= 2
    assert name[len(letters) :] == f"{column + 1:02d}"


@pytest.mark.parametrize(
    ("name", "expected", "canonical"),
    [
        ("A01", (0, 0), "A01"),
        ("A1", (0, 0), "A01"),
        ("a001", (0, 0), "A01"),
        ("B07", (1, 6), "B07"),
        ("b7", (1, 6), "B07"),
        ("H12", (7, 11), "H12"),
        ("P24", (15, 23), "P24"),
        ("Z01", (25, 0), "Z01"),
        ("AA01", (26, 0), "AA01"),
        ("AF48", (31, 47), "AF48"),
        ("ZZ999", (701, 998), "ZZ999"),
        ("C 05", (2, 4), "C05"),
    ],
)
def test_parse_well_examples(name: str, expected: tuple[int, int], canonical: str) -> None:
    assert parse_well(name) == expected
    assert well_name(*expected) == canonical


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "01",
        "1A",
        "A0",
        "A00",
        "AAA01",
        "A1000",
        "A-1",
        "A01B",
        "Ä01",
        "A\u0663",
        "A 0 1",
        "well A01",
    ],
)
def test_parse_well_rejects(name: str) -> None:
    with pytest.raises(ValueError, match="not a well name"):
        parse_well(name)


@pytest.mark.parametrize(("row", "column"), [(-1, 0), (0, -1), (702, 0), (0, 999)])
def test_well_name_rejects_out_of_range(row: int, column: int) -> None:
    with pytest.raises(ValueError, match="no well name"):
        well_name(row, column)


def test_plate_position_names() -> None:
    p = PlatePosition(plate="P1", row=27, column=8, field=3)
    assert (p.well, p.row_name, p.column_name) == ("AB09", "AB", "09")
    with pytest.raises(pydantic.ValidationError):
        PlatePosition(plate="", row=0, column=0)
    with pytest.raises(pydantic.ValidationError):
        PlatePosition(plate="P", row=-1, column=0)


def _image() -> Image:
    return Image(
        id="i1",
        name="n",
        shape=(1, 2, 1, 8, 8),
        dtype="uint8",
        channels=(Channel(index=0, name="a"), Channel(index=1, name="b")),
        acquisition=Acquisition(objective=Objective(lens_na=0.8)),
    )


@pytest.mark.parametrize(
    ("make", "field", "value"),
    [
        (_image, "name", "other"),
        (_image, "shape", (1, 1, 1, 1, 1)),
        (lambda: Channel(index=0, name="a"), "name", "b"),
        (lambda: Objective(lens_na=0.8), "lens_na", 1.4),
        (lambda: PlatePosition(plate="P", row=0, column=0), "row", 3),
        (lambda: Acquisition(), "time_increment_s", 1.0),
        (lambda: SourceFile(path="a.tif", size=1, sha256="0" * 64, reader="tifffile"), "size", 2),
    ],
)
def test_models_are_frozen(make, field: str, value: object) -> None:
    obj = make()
    before = getattr(obj, field)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        setattr(obj, field, value)
    assert getattr(obj, field) == before


def test_nested_models_are_frozen_too() -> None:
    img = _image()
    with pytest.raises(pydantic.ValidationError):
        img.channels[0].name = "x"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        img.acquisition.objective.lens_na = 1.0  # type: ignore[union-attr]
    assert isinstance(img.channels, tuple)  # not a mutable list
    copy = img.model_copy(update={"name": "renamed"})
    assert (copy.name, img.name) == ("renamed", "n")


def test_models_reject_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra"):
        Channel(index=0, name="a", colour="FF0000")  # type: ignore[call-arg]


def test_models_are_hashable_and_compare_by_value() -> None:
    assert Channel(index=0, name="a") == Channel(index=0, name="a")
    assert len({Channel(index=0, name="a"), Channel(index=0, name="a")}) == 1


def test_channel_color_is_validated_and_normalised() -> None:
    assert Channel(index=0, name="a", color="00ff7f").color == "00FF7F"
    for bad in ("red", "#00FF00", "00FF0", "GG0000"):
        with pytest.raises(pydantic.ValidationError, match="RRGGBB"):
            Channel(index=0, name="a", color=bad)
    with pytest.raises(pydantic.ValidationError):
        Channel(index=-1, name="a")


def test_source_file_checksum_format() -> None:
    with pytest.raises(pydantic.ValidationError):
        SourceFile(path="a", size=1, sha256="ABC", reader="r")
    with pytest.raises(pydantic.ValidationError):
        SourceFile(path="a", size=-1, sha256="0" * 64, reader="r")


def test_image_dims_and_shape_arity() -> None:
    assert _image().dims == "TCZYX"
    with pytest.raises(pydantic.ValidationError):
        Image(id="i", name="n", shape=(8, 8), dtype="uint8")  # type: ignore[arg-type]
