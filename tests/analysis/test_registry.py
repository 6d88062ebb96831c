"""Tool discovery through the entry-point group ``quantscope.tools``: the built-ins are entry
points like any plugin, a broken plugin is a warning naming it, diagnostics list what is
installed."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from importlib import metadata

import pytest

from _analysis_support import ThresholdSegment
from quantscope.analysis import (
    ENTRY_POINT_GROUP,
    ToolLoadWarning,
    _registry,
    get_tool,
    installed_tools,
    register_tool,
    tool_diagnostics,
    unregister_tool,
)
from quantscope.errors import NotFound

BUILTINS = {
    "illumination-correction",
    "segment-nuclei",
    "segment-cells",
    "cytoplasm",
    "measure",
    "cellpose",
    "stardist",
}


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """Forget discovered entry points before and after the test."""
    _registry._cache = None
    yield
    _registry._cache = None


def test_builtins_are_registered_through_entry_points() -> None:
    eps = {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert set(eps) >= BUILTINS, "run `pip install -e .` so the entry points are installed"
    assert all(
        v.startswith("quantscope.analysis._builtin.") for n, v in eps.items() if n in BUILTINS
    )
    tools = installed_tools()
    assert set(tools) >= BUILTINS
    for name in BUILTINS:
        assert tools[name].tool is not None and tools[name].tool.name == name
        assert tools[name].distribution.startswith("quantscope ")


def test_listing_tools_imports_no_heavy_library() -> None:
    code = (
        "import sys; from quantscope.analysis import installed_tools, tool_diagnostics; "
        "installed_tools(); "
        "heavy = [m for m in ('skimage', 'scipy.ndimage', 'dask', 'distributed', 'pandas', "
        "'torch', 'cellpose', 'stardist', 'quantscope.analysis._features', "
        "'quantscope.analysis._segment', 'quantscope.analysis._threshold', "
        "'quantscope.analysis._morphology') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _fake_entry_points(extra: list[metadata.EntryPoint]) -> object:
    real = metadata.entry_points

    def entry_points(**kw: object) -> object:
        found = list(real(**kw))  # type: ignore[arg-type]
        if kw.get("group") == ENTRY_POINT_GROUP:
            found += extra
        return found

    return entry_points


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("no_such_module_xyz:Tool", "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
        ("quantscope.errors:QuantscopeError", "not a quantscope tool"),
        ("_analysis_support:ThresholdSegment", "the entry point is named 'broken' but the tool"),
    ],
)
def test_a_broken_plugin_is_a_warning_naming_it_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, fresh_registry: None, value: str, reason: str
) -> None:
    ep = metadata.EntryPoint(name="broken", value=value, group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(_registry.importlib_metadata, "entry_points", _fake_entry_points([ep]))
    with pytest.warns(
        ToolLoadWarning, match=r"plugin 'broken' \(" + value.replace(".", r"\.")
    ) as w:
        tools = installed_tools()
    # only the tool warnings: a ResourceWarning of another test's garbage may land here too
    (loaded,) = [x for x in w if issubclass(x.category, ToolLoadWarning)]
    assert reason in str(loaded.message)
    assert "broken" not in tools and set(tools) >= BUILTINS  # the others keep working
    diag = {d["name"]: d for d in tool_diagnostics()}
    assert diag["broken"]["status"] == "broken" and reason in diag["broken"]["reason"]
    assert diag["segment-nuclei"]["status"] == "ok"
    with pytest.raises(NotFound, match=r"'broken' .* is installed but broken"):
        get_tool("broken")


def test_a_plugin_declared_twice_keeps_the_first(
    monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    ep = metadata.EntryPoint(
        name="measure", value="_analysis_support:AreaMeasure", group=ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(_registry.importlib_metadata, "entry_points", _fake_entry_points([ep]))
    with pytest.warns(ToolLoadWarning, match="declared twice"):
        tools = installed_tools()
    assert type(tools["measure"].tool).__module__ == "quantscope.analysis._builtin._measure"


def test_unknown_tool_lists_the_installed_ones() -> None:
    with pytest.raises(NotFound, match=r"no analysis tool named 'segment-nucleus'.*segment-nuclei"):
        get_tool("segment-nucleus")


def test_register_in_process() -> None:
    tool = ThresholdSegment()
    register_tool(tool, replace=True)
    try:
        assert get_tool("test-threshold") is tool
        with pytest.raises(ValueError, match="already registered"):
            register_tool(ThresholdSegment())
        with pytest.raises(ValueError, match="already registered"):
            register_tool(get_tool("measure"))
        with pytest.raises(TypeError, match="not a quantscope tool"):
            register_tool(object())  # type: ignore[arg-type]
    finally:
        unregister_tool("test-threshold")
    with pytest.raises(NotFound):
        get_tool("test-threshold")


def test_diagnostics_say_why_optional_adapters_are_unavailable() -> None:
    diag = {d["name"]: d for d in tool_diagnostics()}
    for name, pkg in (("cellpose", "cellpose"), ("stardist", "stardist")):
        try:
            metadata.version(pkg)
        except metadata.PackageNotFoundError:
            assert diag[name]["status"] == "unavailable"
            reason = diag[name]["reason"]
            assert reason.startswith(f"needs the Python package {pkg}") or reason.startswith(
                f"needs the Python packages {pkg}, "
            )
        else:  # pragma: no cover - where the library is installed
            assert diag[name]["status"] == "ok"
    assert {d["status"] for n, d in diag.items() if n not in ("cellpose", "stardist")} >= {"ok"}
    nuclei = diag["segment-nuclei"]
    params = {p["name"]: p for p in nuclei["parameters"]}
    assert params["min_diameter_um"]["minimum"] == 0.0
    assert nuclei["inputs"][0] == {
        "name": "image",
        "kind": "image",
        "description": "nuclear stain (DAPI, Hoechst)",
        "many": False,
        "optional": False,
    }


def test_no_warning_when_everything_loads(fresh_registry: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ToolLoadWarning)
        installed_tools()
