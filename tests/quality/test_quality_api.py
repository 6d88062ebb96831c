"""The public surface of quantscope.quality and its metric registry."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

import quantscope.quality as quality
from quantscope.quality import METRICS, MetricInfo, channel_metrics

pytestmark = pytest.mark.filterwarnings("error")

METRIC_FUNCTIONS = [
    "focus_plls",
    "focus_normvar",
    "focus_local",
    "focus_laplacian_var",
    "percent_at_max",
    "percent_at_min",
    "percent_at_dtype_max",
    "background",
    "illumination_uniformity",
    "estimate_illumination_profile",
    "apply_flatfield",
    "robust_zscores",
    "stack_metrics",
]


def test_all_is_public_and_complete() -> None:
    assert len(set(quality.__all__)) == len(quality.__all__)  # ruff (RUF022) keeps it sorted
    for name in quality.__all__:
        assert not name.startswith("_")
        assert getattr(quality, name) is not None
    public = {
        name
        for name, value in vars(quality).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(quality.__all__)


def test_every_public_function_has_a_numpydoc_docstring() -> None:
    for name in quality.__all__:
        obj = getattr(quality, name)
        if inspect.isfunction(obj):
            doc = inspect.getdoc(obj) or ""
            assert "Parameters\n----------" in doc, name
            assert "Returns\n-------" in doc, name
    for name in METRIC_FUNCTIONS:
        doc = inspect.getdoc(getattr(quality, name)) or ""
        assert "References" in doc or "See Also" in doc or name == "stack_metrics", name


def test_metric_functions_cite_their_sources() -> None:
    dois = {
        "focus_plls": "10.1177/1087057111420292",
        "focus_normvar": "10.1002/jemt.20118",
        "focus_laplacian_var": "10.1109/ICPR.2000.903548",
        "illumination_uniformity": "10.1083/jcb.202107093",
        "estimate_illumination_profile": "10.1038/ncomms14836",
    }
    for name, doi in dois.items():
        assert doi in (inspect.getdoc(getattr(quality, name)) or ""), name
    assert "LocalFocusScore" in (inspect.getdoc(quality.focus_local) or "")


def test_registry_describes_every_metric_of_channel_metrics() -> None:
    image = np.random.default_rng(0).poisson(100, (64, 64)).astype(np.uint16)
    assert list(channel_metrics(image)) == list(METRICS)
    categories = {"focus", "saturation", "intensity", "illumination", "content", "input"}
    for name, info in METRICS.items():
        assert isinstance(info, MetricInfo) and info.name == name
        assert info.category in categories, name
        assert info.direction in ("higher", "lower", "none"), name
        assert info.description.endswith("."), name
        assert info.unit, name
        if info.category == "focus":
            assert info.direction == "higher" and info.reference, name
    with pytest.raises(TypeError):
        METRICS["x"] = METRICS["snr"]  # type: ignore[index]


def test_importing_quality_does_not_import_scipy() -> None:
    code = "import sys, quantscope.quality; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
