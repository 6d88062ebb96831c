"""The Tool protocol: what an analysis tool declares and how the executor calls it.

A tool is a small object with cheap metadata (name, version, a one-line summary, its input and
output ports) and a :meth:`Tool.run` method. Its parameters are a pydantic model with defaults,
ranges (``ge``/``le``) and units (``json_schema_extra={"unit": "µm"}``). Heavy libraries are
imported inside :meth:`Tool.run` (and, where the parameter model lives beside heavy code, inside
:meth:`Tool.parameters`), so listing the installed tools stays fast.

Plugins register a tool (a class or an instance) under the entry-point group
``quantscope.tools``; see :mod:`quantscope.analysis._registry`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..errors import QuantscopeError

__all__ = [
    "BaseTool",
    "Port",
    "PortKind",
    "Tool",
    "ToolContext",
    "ToolUnavailable",
    "describe_parameters",
    "params_hash",
]

#: What flows between steps: an image plane (float or integer 2-D array, kept in memory only),
#: a label image (2-D integer array, 0 = background; stored in the image's OME-Zarr
#: ``labels/``), a table (pandas DataFrame, one row per object; stored as Parquet), or an
#: illumination profile (``(flat, dark or None)``, bound automatically from the catalog).
PortKind = Literal["image", "labels", "table", "profile"]


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
        Physical pixel size in µm (x; y where x is unknown), None where unknown.
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
    ``requires`` (importable module names) without importing them.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    summary: ClassVar[str] = ""
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    Parameters: ClassVar[type[BaseModel] | None] = None
    parameters_ref: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()

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
                f"needs the Python package(s) {', '.join(missing)}, not installed here "
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
