"""Discovery of analysis tools through the entry-point group ``quantscope.tools``.

Every tool, the built-ins included, is an entry point of that group (see ``pyproject.toml``)::

    [project.entry-points."quantscope.tools"]
    my-tool = "my_package.tools:MyTool"

The target is a tool class (instantiated without arguments) or a tool instance. Loading imports
only the module the entry point names, so that module must keep heavy imports inside
``run``. A plugin that fails to load (an import error, an object that is not a tool) becomes a
:class:`ToolLoadWarning` naming it and the error; the other tools keep working, and
:func:`tool_diagnostics` lists it as broken (as xarray's backend plugins and bioio's reader
plugins do).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import Any

from ..errors import NotFound
from ._tool import Tool, describe_tool

__all__ = [
    "ENTRY_POINT_GROUP",
    "ToolEntry",
    "ToolLoadWarning",
    "get_tool",
    "installed_tools",
    "register_tool",
    "tool_diagnostics",
    "unregister_tool",
]

ENTRY_POINT_GROUP = "quantscope.tools"

_lock = threading.Lock()
_cache: dict[str, ToolEntry] | None = None
_extra: dict[str, ToolEntry] = {}


class ToolLoadWarning(UserWarning):
    """A tool plugin could not be loaded; it is left out, the others keep working."""


@dataclass(frozen=True)
class ToolEntry:
    """One registered tool, loaded or broken.

    Attributes
    ----------
    name : str
        Entry-point name (the tool's name in pipelines).
    target : str
        ``module:attribute`` the entry point names.
    distribution : str
        The installed package that declares it, with its version (``"quantscope 0.1.0"``).
    tool : Tool or None
        The loaded tool, None where loading failed.
    error : str or None
        Why loading failed.
    """

    name: str
    target: str
    distribution: str
    tool: Tool | None
    error: str | None = None


def _is_tool(obj: Any) -> bool:
    return isinstance(obj, Tool) and all(
        isinstance(getattr(obj, a, None), str) for a in ("name", "version")
    )


def _load(ep: importlib_metadata.EntryPoint) -> ToolEntry:
    dist = ep.dist
    dist_name = f"{dist.name} {dist.version}" if dist is not None else "?"
    try:
        obj = ep.load()
        tool = obj() if isinstance(obj, type) else obj
    except Exception as e:  # a plugin's bug must not break quantscope
        return ToolEntry(ep.name, ep.value, dist_name, None, f"{type(e).__name__}: {e}")
    if not _is_tool(tool):
        return ToolEntry(
            ep.name,
            ep.value,
            dist_name,
            None,
            "not a quantscope tool (needs name, version, inputs, outputs, parameters(), "
            "unavailable() and run())",
        )
    if tool.name != ep.name:
        return ToolEntry(
            ep.name,
            ep.value,
            dist_name,
            None,
            f"the entry point is named {ep.name!r} but the tool calls itself {tool.name!r}",
        )
    return ToolEntry(ep.name, ep.value, dist_name, tool)


def _discover() -> dict[str, ToolEntry]:
    found: dict[str, ToolEntry] = {}
    for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:  # the same name from two packages: keep the first, say so
            other = found[ep.name]
            warnings.warn(
                f"quantscope tool {ep.name!r} is declared twice ({other.target} and {ep.value}); "
                f"using {other.target}",
                ToolLoadWarning,
                stacklevel=3,
            )
            continue
        entry = _load(ep)
        if entry.error is not None:
            warnings.warn(
                f"quantscope tool plugin {ep.name!r} ({ep.value}, from {entry.distribution}) "
                f"could not be loaded and is left out: {entry.error}",
                ToolLoadWarning,
                stacklevel=3,
            )
        found[ep.name] = entry
    return found


def installed_tools(*, refresh: bool = False, include_broken: bool = False) -> dict[str, ToolEntry]:
    """Every registered tool by name (entry points plus :func:`register_tool`), sorted.

    Parameters
    ----------
    refresh : bool
        Discover the entry points again (after installing a plugin in a running process).
    include_broken : bool
        Also return the entries that failed to load (``tool`` is None, ``error`` says why).
    """
    global _cache
    with _lock:
        if _cache is None or refresh:
            _cache = _discover()
        entries = {**_cache, **_extra}
    return {n: e for n, e in sorted(entries.items()) if include_broken or e.tool is not None}


def get_tool(name: str) -> Tool:
    """The tool registered as ``name``.

    Raises
    ------
    NotFound
        No such tool (the message lists the installed ones) or its plugin is broken.
    """
    entries = installed_tools(include_broken=True)
    entry = entries.get(name)
    if entry is None:
        have = ", ".join(n for n, e in entries.items() if e.tool is not None) or "none"
        raise NotFound(
            f"no analysis tool named {name!r} is installed (installed: {have}); "
            "see `quantscope tools`"
        )
    if entry.tool is None:
        raise NotFound(
            f"analysis tool {name!r} ({entry.target}, from {entry.distribution}) is installed but "
            f"broken: {entry.error}"
        )
    return entry.tool


def register_tool(tool: Tool, *, replace: bool = False) -> None:
    """Register a tool in this process (scripts, notebooks, tests) without an entry point.

    Tools registered this way run with the local scheduler; a ``distributed`` cluster's workers
    only see tools registered through entry points.
    """
    if not _is_tool(tool):
        raise TypeError(f"{tool!r} is not a quantscope tool")
    with _lock:
        known = _cache or {}
        if not replace and (tool.name in _extra or tool.name in known):
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        _extra[tool.name] = ToolEntry(
            tool.name, f"{type(tool).__module__}:{type(tool).__qualname__}", "(in process)", tool
        )


def unregister_tool(name: str) -> None:
    """Remove a tool registered with :func:`register_tool`."""
    with _lock:
        _extra.pop(name, None)


def tool_diagnostics() -> list[dict[str, Any]]:
    """What is installed: one entry per tool with its source, status and reason.

    ``status`` is ``"ok"``, ``"unavailable"`` (installed, but an optional library is missing:
    the reason says which) or ``"broken"`` (the plugin failed to load).
    """
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ToolLoadWarning)
        entries = installed_tools(include_broken=True)
    for name, e in entries.items():
        if e.tool is None:
            out.append(
                {
                    "name": name,
                    "target": e.target,
                    "distribution": e.distribution,
                    "status": "broken",
                    "reason": e.error,
                }
            )
            continue
        d = describe_tool(e.tool)
        d.update(
            target=e.target,
            distribution=e.distribution,
            status="ok" if d["available"] else "unavailable",
            reason=d["unavailable_reason"],
        )
        out.append(d)
    return out
