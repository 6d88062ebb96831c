"""The public surface of quantscope.analysis: every name in ``__all__`` resolves, and the
algorithms behind the built-in tools are re-exported lazily (importing the package stays
light)."""

from __future__ import annotations

import subprocess
import sys

import quantscope.analysis as analysis


def test_every_public_name_resolves() -> None:
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None, name


def test_contract_functions_are_re_exported() -> None:
    from quantscope.analysis._features import measure_objects
    from quantscope.analysis._segment import NucleiParams, segment_nuclei

    assert analysis.measure_objects is measure_objects
    assert analysis.segment_nuclei is segment_nuclei
    assert analysis.NucleiParams is NucleiParams


def test_importing_the_package_does_not_import_the_algorithms() -> None:
    code = (
        "import sys, quantscope.analysis; "
        "print([m for m in ('quantscope.analysis._segment', 'quantscope.analysis._features', "
        "'quantscope.analysis._threshold', 'quantscope.analysis._morphology', "
        "'dask', 'pandas', 'skimage') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
