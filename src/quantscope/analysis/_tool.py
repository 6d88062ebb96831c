"""The Tool protocol: what an analysis tool declares and how the executor calls it.

A tool is a small object with cheap metadata (name, version, a one-line summary, its input and
output ports) and a :meth:`Tool.run` method. Its parameters are a pydantic model with defaults,
ranges (``ge``/``le``) and units (``json_schema_extra={"unit": "µm"}``). Heavy libraries are
imported inside :meth:`Tool.run` (and, where the parameter model lives beside heavy code, inside
:meth:`Tool.parameters`), so listing the installed tools stays fast.

Plugins register a tool (a class or an instance) under the entry-point group
``quantscope.tools``; see :mod:`quantscope.analysis._registry`.

A tool says how it uses the image's pixel size (``pixel_size``: ``"required"`` where its
parameters are lengths in µm, ``"optional"``, ``"unused"``; tools that do not say are taken as
``"optional"``), and :func:`tool_identity` names the code that computes its results (its
distribution and version, and the SHA-256 of its source files): both enter the key under which
the executor caches a step's outputs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from .._text import noun
from ..errors import QuantscopeError

__all__ = [
    "BaseTool",
    "PixelSizeUse",
    "Port",
    "PortKind",
    "Tool",
    "ToolContext",
    "ToolUnavailable",
    "describe_parameters",
    "files_digest",
    "params_hash",
    "pixel_size_message",
    "pixel_size_use",
    "tool_identity",
]

#: What flows between steps: an image plane (float or integer 2-D array, kept in memory only),
#: a label image (2-D integer array, 0 = background; stored in the image's OME-Zarr
#: ``labels/``), a table (pandas DataFrame, one row per object; stored as Parquet), or an
#: illumination profile (``(flat, dark or None)``, bound automatically from the catalog).
PortKind = Literal["image", "labels", "table", "profile"]

#: How a tool uses :attr:`ToolContext.pixel_size_um`: ``"required"`` (parameters in µm: the
#: executor fails the step, saying how to set a pixel size, where the image has none),
#: ``"optional"`` (used where known) or ``"unused"`` (results do not depend on it).
PixelSizeUse = Literal["required", "optional", "unused"]


class ToolUnavailable(QuantscopeError):
    """A tool cannot run here (an optional library is absent, weights are missing)."""


@dataclass(frozen=True)
class Port:
    """A named input or output of a tool.

    Attributes
    ----------
    name : str
        Name used in pipeline specs (``inputs: {image: DNA}``).
    kind : {"image", "labels", "table", "profile"}
        What the port carries (see :data:`PortKind`).
    description : str
        One line for ``quantscope tools``.
    many : bool
        The input takes a list of named values (``images: [DNA, PH3]``); the tool receives a
        ``{name: value}`` dict.
    optional : bool
        The input may be left unbound.
    """

    name: str
    kind: PortKind
    description: str = ""
    many: bool = False
    optional: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "many": self.many,
            "optional": self.optional,
        }


@dataclass(frozen=True)
class ToolContext:
    """What a tool knows about the image it works on.

    Attributes
    ----------
    image_id : str
        Catalog id of the image.
    pixel_size_um : float or None
        Physical pixel size in µm used for this run: the run's override, else the image's own
        (x; y where x is unknown), else the pipeline's ``pixel_size_um``; None where unknown.
    plate, well : str or None
        Plate name and well (``"A01"``) where the image is on a plate.
    field : int or None
        0-based field (site) index in the well.
    channels : dict of str to int
        Channel index in the image of each image input that is a raw channel (by input name).
    repo_root : pathlib.Path or None
        Root of the repository (for tools that read side files, such as model weights given
        relative to it).
    """

    image_id: str
    pixel_size_um: float | None = None
    plate: str | None = None
    well: str | None = None
    field: int | None = None
    channels: Mapping[str, int] = dc_field(default_factory=dict)
    repo_root: Path | None = None


@runtime_checkable
class Tool(Protocol):
    """What the registry and the executor need from a tool."""

    name: str
    version: str
    summary: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]

    def parameters(self) -> type[BaseModel]:
        """The pydantic model of the tool's parameters (defaults, ranges, units)."""
        ...

    def unavailable(self) -> str | None:
        """Why the tool cannot run here (a missing optional library), or None."""
        ...

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        """Compute the outputs ``{port name: value}`` from the inputs ``{port name: value}``."""
        ...


class NoParameters(BaseModel):
    """A tool without parameters."""

    model_config = ConfigDict(extra="forbid")


class BaseTool:
    """Convenience base: subclasses set the class attributes and implement :meth:`run`.

    ``Parameters`` is the parameter model, or ``parameters_ref = "module:Class"`` names one to
    import lazily (for models that live beside heavy code). :meth:`unavailable` checks
    ``requires`` (importable module names) without importing them. ``pixel_size`` says how the
    tool uses the pixel size (:data:`PixelSizeUse`); ``code_modules`` names modules (or
    packages) besides the tool's own whose source decides its results (:func:`tool_identity`);
    :meth:`data_identity` names files outside the code that decide them (model weights).
    """

    name: ClassVar[str]
    version: ClassVar[str]
    summary: ClassVar[str] = ""
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    Parameters: ClassVar[type[BaseModel] | None] = None
    parameters_ref: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    pixel_size: ClassVar[PixelSizeUse] = "optional"
    code_modules: ClassVar[tuple[str, ...]] = ()

    def data_identity(self, params: BaseModel | None) -> str | None:
        """SHA-256 of the data files (besides its code) whose content decides this tool's
        results with ``params``, such as model weights given by path; part of every step's
        cache key, so new weights at the same path recompute. None: the tool reads none."""
        return None

    def parameters(self) -> type[BaseModel]:
        if self.Parameters is not None:
            return self.Parameters
        if self.parameters_ref is not None:
            import importlib

            module, _, attr = self.parameters_ref.partition(":")
            try:
                model = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as e:
                raise ToolUnavailable(
                    f"tool {self.name!r}: its parameter model {self.parameters_ref} cannot be "
                    f"imported ({e}); is quantscope installed completely?"
                ) from e
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise ToolUnavailable(
                    f"tool {self.name!r}: {self.parameters_ref} is not a pydantic model"
                )
            return model
        return NoParameters

    def unavailable(self) -> str | None:
        import importlib.util

        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            return (
                f"needs the Python {noun(len(missing), 'package')} {', '.join(missing)}, "
                "not installed here "
                f"(pip install {' '.join(missing)})"
            )
        return None

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<tool {self.name} {self.version}>"


def describe_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Each parameter of ``model``: name, type, default, range, unit, description.

    Units come from ``json_schema_extra={"unit": ...}`` of the field (or the model's JSON
    schema ``unit`` key); ranges from ``ge``/``gt``/``le``/``lt``.
    """
    schema = model.model_json_schema()
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    out = []
    for name, p in props.items():
        info = model.model_fields.get(name)
        typ = p.get("type")
        if typ is None and "anyOf" in p:
            typ = " | ".join(str(a.get("type", a.get("$ref", "?"))) for a in p["anyOf"])
        if typ is None and "enum" in p:
            typ = "enum"
        if typ is None and "$ref" in p:
            ref = p["$ref"].rsplit("/", 1)[-1]
            enum = schema.get("$defs", {}).get(ref, {}).get("enum")
            typ = f"one of {enum}" if enum else ref
        elif "enum" in p:
            typ = f"one of {p['enum']}"
        extra = info.json_schema_extra if info is not None else None
        unit = p.get("unit") or (extra.get("unit") if isinstance(extra, dict) else None)
        out.append(
            {
                "name": name,
                "type": typ,
                "default": None if name in required else p.get("default"),
                "required": name in required,
                "minimum": p.get("minimum", p.get("exclusiveMinimum")),
                "maximum": p.get("maximum", p.get("exclusiveMaximum")),
                "unit": unit,
                "description": p.get("description", ""),
            }
        )
    return out


def params_hash(params: BaseModel) -> str:
    """SHA-256 of the parameters' canonical JSON (sorted keys, defaults included)."""
    doc = json.dumps(params.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def describe_tool(tool: Tool) -> dict[str, Any]:
    """Everything ``quantscope tools --json`` shows about a tool."""
    reason = tool.unavailable()
    try:
        params: list[dict[str, Any]] | None = describe_parameters(tool.parameters())
    except QuantscopeError as e:
        params, reason = None, reason or str(e)
    return {
        "name": tool.name,
        "version": tool.version,
        "summary": tool.summary,
        "inputs": [p.describe() for p in tool.inputs],
        "outputs": [p.describe() for p in tool.outputs],
        "parameters": params,
        "available": reason is None,
        "unavailable_reason": reason,
    }


def pixel_size_message(tool: str, image: str) -> str:
    """What to do where a tool whose parameters are in µm meets an image without a pixel size."""
    return (
        f"{tool}: image {image} has no pixel size, and this tool's sizes are in µm; set it with "
        f"`quantscope set REPO {image} pixel_size_um=VALUE`, or run with `--pixel-size-um VALUE` "
        "(or give `pixel_size_um: VALUE` in the pipeline, used where an image has none)"
    )


def pixel_size_use(tool: Tool) -> PixelSizeUse:
    """How ``tool`` uses the pixel size (``"optional"`` where it does not say)."""
    use = getattr(tool, "pixel_size", "optional")
    if use == "required":
        return "required"
    return "unused" if use == "unused" else "optional"


def _source_files(module: str) -> list[str]:
    """The source files of a module, or of every module of a package (without importing)."""
    import sys

    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__path__", None) is None:
        origin = getattr(loaded, "__file__", None)
        return [origin] if origin and origin.endswith(".py") else []
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(
            str(f)
            for loc in spec.submodule_search_locations
            for f in Path(loc).rglob("*.py")
            if "__pycache__" not in f.parts
        )
    return [spec.origin] if spec.origin and spec.origin.endswith(".py") else []


def _modules_digest(modules: tuple[str, ...]) -> str | None:
    """SHA-256 of the source files of ``modules`` (None where none is found); recomputed only
    when a file's size or modification time changes."""
    stamp = []
    for m in modules:
        for f in _source_files(m):
            try:
                st = os.stat(f)
            except OSError:
                continue
            stamp.append((m, f, st.st_size, st.st_mtime_ns))
    return _files_digest(tuple(stamp)) if stamp else None


@functools.lru_cache(maxsize=256)
def _files_digest(stamp: tuple[tuple[str, str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for m, f, _, _ in stamp:
        try:
            data = Path(f).read_bytes()
        except OSError:
            data = b""
        h.update(f"{m}:{Path(f).name}:{len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


def files_digest(path: str | Path) -> str:
    """SHA-256 of a file's content, or of every file under a folder (relative paths and
    contents, in sorted order): the identity of model weights given by path."""
    import hashlib

    root = Path(path).expanduser()
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() if f != root else b"")
        h.update(b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def tool_identity(tool: Tool) -> dict[str, str | None]:
    """What identifies the code of ``tool``: its name and version, the distribution that ships
    it with that distribution's version, and the SHA-256 of its source (the module defining
    the tool's class and any ``code_modules`` it names).

    A step's cache key includes this, so a changed tool (a new release, or an edited source
    file in a development install) recomputes its outputs rather than reusing old ones.
    """
    from importlib import metadata

    cls = type(tool)
    module = cls.__module__ if cls.__module__ != "builtins" else getattr(tool, "__module__", "")
    top = module.split(".", 1)[0]
    dist: str | None = top
    try:  # usually the distribution is named as its top-level package (fast)
        version: str | None = metadata.version(top)
    except metadata.PackageNotFoundError:
        dists = _packages_distributions().get(top) or []
        dist = dists[0] if dists else None
        version = None
        if dist is not None:
            try:
                version = metadata.version(dist)
            except metadata.PackageNotFoundError:
                version = None
    extra = tuple(getattr(tool, "code_modules", ()) or ())
    return {
        "name": tool.name,
        "version": tool.version,
        "module": module,
        "distribution": dist,
        "distribution_version": version,
        "code_sha256": _modules_digest((module, *extra)),
    }
