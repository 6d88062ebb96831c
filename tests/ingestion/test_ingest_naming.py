"""Plate, well, field and channel from file names: ImageXpress names and user patterns."""

from __future__ import annotations

import pytest

from quantscope.errors import InvalidInput
from quantscope.ingestion import NamePattern, ParsedName

GUID = "051DAA7C-7042-435F-99F0-1E847D9B42CB"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"IXMtest_A02_s1_w1{GUID}.tif", ParsedName("IXMtest", 0, 1, 1, "1")),
        (f"IXMtest_P24_s9_w2{GUID}.tif", ParsedName("IXMtest", 15, 23, 9, "2")),
        ("synth_A01_s2_w1.ome.tif", ParsedName("synth", 0, 0, 2, "1")),
        ("my_plate_B03_s4.tif", ParsedName("my_plate", 1, 2, 4, None)),
        ("synth_A01_s1.ome.tif", ParsedName("synth", 0, 0, 1, None)),
    ],
)
def test_imagexpress_names(name: str, expected: ParsedName) -> None:
    assert NamePattern(None).parse(name) == expected


@pytest.mark.parametrize(
    "name", ["cell_image.tif", "IXMtest_A02.tif", "plate_A01_s1_cells.tif", "P_A01_s1_w10.tif"]
)
def test_names_that_are_not_imagexpress(name: str) -> None:
    assert NamePattern(None).parse(name) is None


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("P1_B03_s2_wDAPI.tif", "DAPI"),
        ("P1_B03_s2_w10.tif", "10"),
        ("P1_B03_s2_w2.ome.tif", "2"),
        (f"P1_B03_s2_w1{GUID}.tif", "1"),
        ("P1_B03_s2_wGFP", "GFP"),
    ],
)
def test_a_trailing_channel_placeholder_takes_the_whole_token(name: str, channel: str) -> None:
    parsed = NamePattern("{plate}_{well}_s{field}_w{channel}").parse(name)
    assert parsed == ParsedName("P1", 1, 2, 2, channel)


def test_row_column_field0_and_any() -> None:
    p = NamePattern("{any}-{row}{column}-f{field0}-{channel}-{any}")
    assert p.parse("exp3-C7-f0-Cy5-final.tif") == ParsedName(
        "plate", 2, 6, 1, "Cy5"
    )  # {field0} 0 is site 1
    assert p.parse("exp3-AB12-f3-DAPI-x.tif") == ParsedName("plate", 27, 11, 4, "DAPI")
    assert p.parse("exp3-C7-fX-Cy5-final.tif") is None


def test_site_zero_with_one_based_field_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="field0"):
        NamePattern("{plate}_{well}_s{field}").parse("P_A01_s0.tif")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{plate}_{wel}", "unknown placeholder"),
        ("{plate}_{well}_{well}", "appears twice"),
        ("{plate}_{row}_s{field}", "needs {well}"),
        ("{well}_{field}_{field0}", "either {field} or {field0}"),
        ("{well}_s{field", "unbalanced braces"),
    ],
)
def test_malformed_patterns(pattern: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("{", r"\{").replace("}", r"\}")):
        NamePattern(pattern)
