"""Small helpers for the texts quantscope shows to people (CLI output, reports, messages).

Every count in a user-facing text goes through :func:`plural`, so that it reads "1 image",
"2 images", "0 images", never "1 images" or "image(s)". No dependencies: every layer may
import this module.
"""

from __future__ import annotations

__all__ = ["noun", "plural"]

_SIBILANT = ("s", "x", "z", "ch", "sh")


def noun(n: float, word: str, many: str | None = None) -> str:
    """``word`` in the number that fits the count ``n``.

    Parameters
    ----------
    n : int or float
        The count; exactly 1 (or -1) takes the singular, any other count (0 too) the plural.
    word : str
        The singular, e.g. ``"image"``.
    many : str, optional
        The plural when it is irregular (``"nuclei"``, ``"series"``); default ``word`` + ``s``
        (``es`` after s, x, z, ch, sh; ``ies`` for a consonant + y).

    Examples
    --------
    >>> noun(1, "image"), noun(3, "image"), noun(2, "match"), noun(2, "entry")
    ('image', 'images', 'matches', 'entries')
    """
    if abs(n) == 1:
        return word
    if many is not None:
        return many
    if word.endswith(_SIBILANT):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def plural(n: float, word: str, many: str | None = None) -> str:
    """The count and its noun: ``plural(1, "image")`` is ``"1 image"``, ``plural(2, "image")``
    ``"2 images"``, ``plural(0, "image")`` ``"0 images"``.

    Parameters
    ----------
    n : int or float
        The count.
    word, many : str
        As for :func:`noun`; ``word`` may be several words, only its last one changes
        (``plural(2, "label file")`` is ``"2 label files"``).

    Examples
    --------
    >>> plural(1, "image"), plural(2, "nucleus", "nuclei"), plural(2, "label file")
    ('1 image', '2 nuclei', '2 label files')
    """
    return f"{n} {noun(n, word, many)}"
