"""The public surface: every name in ``__all__`` exists, and nothing private leaks into it."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import quantscope

PACKAGES = [
    "quantscope.errors",
    "quantscope.model",
    "quantscope.io",
    "quantscope.metadata",
    "quantscope.catalog",
    "quantscope.ingestion",
    "quantscope.synth",
    "quantscope.quality",
    "quantscope.qc",
    "quantscope.analysis",
    "quantscope.provenance",
    "quantscope.benchmark",
    "quantscope.cli",
]


def test_top_level_all_is_exact() -> None:
    assert quantscope.__all__ == sorted(quantscope.__all__)
    assert set(quantscope.__all__) == {"__version__", *quantscope._EXPORTS}
    for name in quantscope.__all__:
        assert getattr(quantscope, name) is not None, name
    with pytest.raises(AttributeError):
        _ = quantscope.not_a_thing  # type: ignore[attr-defined]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_all_names_exist_and_are_public(package: str) -> None:
    mod = importlib.import_module(package)
    assert mod.__all__, package
    for name in mod.__all__:
        assert not name.startswith("_"), (package, name)
        assert hasattr(mod, name), (package, name)


def test_errors_subclass_the_builtins_they_resemble() -> None:
    from quantscope import errors

    assert issubclass(errors.NotFound, LookupError)
    assert issubclass(errors.InvalidInput, ValueError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.QuantscopeError)


def test_import_quantscope_is_cheap() -> None:
    code = (
        "import sys, quantscope, quantscope.cli; "
        "heavy = [m for m in ('bioio', 'zarr', 'dask', 'tifffile', 'skimage', 'ome_types', "
        "'sqlalchemy', 'numpy', 'scipy') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
