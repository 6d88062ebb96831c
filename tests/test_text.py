"""The plural helper every user-facing count goes through."""

from __future__ import annotations

import pytest

from quantscope._text import noun, plural


@pytest.mark.parametrize(
    ("n", "word", "many", "expected"),
    [
        (1, "image", None, "1 image"),
        (2, "image", None, "2 images"),
        (0, "image", None, "0 images"),
        (-1, "image", None, "-1 image"),
        (21, "file", None, "21 files"),
        (1, "label file", None, "1 label file"),
        (3, "label file", None, "3 label files"),
        (2, "match", None, "2 matches"),
        (2, "box", None, "2 boxes"),
        (2, "entry", None, "2 entries"),
        (2, "key", None, "2 keys"),
        (2, "nucleus", "nuclei", "2 nuclei"),
        (1, "nucleus", "nuclei", "1 nucleus"),
        (2, "series", "series", "2 series"),
    ],
)
def test_plural(n: int, word: str, many: str | None, expected: str) -> None:
    assert plural(n, word, many) == expected


def test_noun_agrees_with_a_total() -> None:
    assert f"3 of 4 {noun(4, 'image')}" == "3 of 4 images"
    assert f"1 of 1 {noun(1, 'image')}" == "1 of 1 image"
