"""Helpers shared by the QC tests."""

from __future__ import annotations

import math


def assert_same_metrics(a: dict[int, dict[str, float]], b: dict[int, dict[str, float]]) -> None:
    """The same channels and metrics with the same values, bit for bit (NaN equal to NaN)."""
    assert a.keys() == b.keys()
    for c in a:
        assert a[c].keys() == b[c].keys()
        for name, value in a[c].items():
            other = b[c][name]
            assert (math.isnan(value) and math.isnan(other)) or value == other, (c, name)
