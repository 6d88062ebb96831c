"""Pipeline specs: YAML files that chain tools over named inputs and outputs.

A spec names the image channels it reads, then lists steps; each step names a tool, binds the
tool's input ports to channels or to earlier steps' outputs, sets parameters and names its
outputs::

    name: nuclei
    pixel_size_um: 0.65                # optional: assumed where an image has no pixel size
    channels:
      DNA: [DAPI, DNA, Hoechst, 0]     # first channel whose name matches, else index 0
    steps:
      - id: illumination
        tool: illumination-correction
        inputs: {image: DNA}
        outputs: {image: DNA_corrected}
      - id: nuclei
        tool: segment-nuclei
        inputs: {image: DNA_corrected}
        outputs: {labels: Nuclei}
      - id: measure
        tool: measure
        inputs: {labels: Nuclei, images: [DNA]}
        outputs: {table: Nuclei_features, summary: Image}

Validation says which file, line and step is wrong and why: unknown tools, parameters outside
their range, unbound or unknown ports, names used before they are made or of the wrong kind.
The spec hash (SHA-256 of the normalized spec with every parameter default filled in) identifies
what a run computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidInput, NotFound, QuantscopeError
from ._registry import get_tool
from ._tool import Tool, params_hash

__all__ = ["PERSISTED_KINDS", "Pipeline", "Step", "load_pipeline", "parse_pipeline"]

#: Output kinds that are stored (and so cached between runs); images stay in memory.
PERSISTED_KINDS = frozenset({"labels", "table"})

_ID = r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$"


class _StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID)
    tool: str
    inputs: dict[str, str | list[str]] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)


class _PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    pixel_size_um: float | None = Field(None, gt=0, le=1000)
    channels: dict[str, int | str | list[int | str]] = Field(min_length=1)
    steps: list[_StepSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Source:
    """Where a bound value comes from: a channel of the image or an earlier step's output."""

    kind: str  # "channel" or "step"
    name: str  # the pipeline-level name (channel name or output name)
    step: str | None = None  # producing step id
    port: str | None = None  # producing step's output port


@dataclass(frozen=True)
class Step:
    """A validated step.

    Attributes
    ----------
    id : str
        Step id (unique in the pipeline).
    tool : Tool
        The tool it runs.
    params : pydantic.BaseModel
        Validated parameters (defaults filled in).
    params_hash : str
        SHA-256 of the parameters' canonical JSON.
    inputs : dict
        ``{port: ((name, Source), ...)}``, one entry per bound value (several for ``many``
        ports).
    outputs : dict
        ``{port: (name, kind)}`` for every output port of the tool.
    line : int or None
        Line of the step in the spec file.
    """

    id: str
    tool: Tool
    params: BaseModel
    params_hash: str
    inputs: Mapping[str, tuple[tuple[str, Source], ...]]
    outputs: Mapping[str, tuple[str, str]]
    line: int | None = None

    def persisted(self) -> list[str]:
        """Output ports whose values are stored (labels, tables)."""
        return [p for p, (_, kind) in self.outputs.items() if kind in PERSISTED_KINDS]


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline: channels, steps in order, normalized spec and its hash."""

    name: str
    description: str
    channels: Mapping[str, tuple[int | str, ...]]
    pixel_size_um: float | None
    steps: tuple[Step, ...]
    spec: dict[str, Any]
    hash: str
    path: Path | None = None
    produced: Mapping[str, Source] = field(default_factory=dict)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise NotFound(f"pipeline {self.name!r} has no step {step_id!r}")


def _line_map(text: str) -> dict[tuple[Any, ...], int]:
    """1-based line of every mapping key and sequence item, by its path in the document."""
    import yaml

    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = getattr(k, "value", None)
                lines[(*path, key)] = k.start_mark.line + 1
                walk(v, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, i))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _line_of(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """Read and validate a pipeline spec file (YAML).

    Raises
    ------
    NotFound
        The file does not exist.
    InvalidInput
        The YAML is malformed or the spec invalid; the message names the file, line and step.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{p}: pipeline file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{p}: cannot be read as a text file ({e})") from e
    return parse_pipeline(text, source=str(p), path=p.absolute())


def parse_pipeline(text: str, *, source: str = "<pipeline>", path: Path | None = None) -> Pipeline:
    """Validate a pipeline spec given as YAML text (see :func:`load_pipeline`)."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(e, "problem", None) or str(e)
        raise InvalidInput(f"{where}: not valid YAML ({problem})") from e
    lines = _line_map(text)
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"{source}: a pipeline is a YAML mapping with 'name', 'channels' and 'steps'"
        )
    try:
        spec = _PipelineSpec.model_validate(doc)
    except ValidationError as e:
        # an unknown key first: it usually is the misspelling of a missing one
        errors = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
        err = errors[0]
        loc = tuple(err["loc"])
        line = _line_of(lines, loc)
        where = f"{source}:{line}" if line else source
        step = ""
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            sid = (doc.get("steps") or [{}])[loc[1]]
            step = f" step {sid.get('id', loc[1] + 1) if isinstance(sid, dict) else loc[1] + 1}:"
        field_ = ".".join(str(x) for x in loc)
        hint = ""
        if err["type"] == "extra_forbidden":
            model = _StepSpec if step else _PipelineSpec
            hint = f" (allowed: {', '.join(model.model_fields)})"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(f"{where}:{step} {field_}: {err['msg']}{hint}{more}") from None
    return _resolve(spec, lines, source, path)


def _resolve(
    spec: _PipelineSpec, lines: Mapping[tuple[Any, ...], int], source: str, path: Path | None
) -> Pipeline:
    """The pipeline ``spec`` describes, with its tools found, parameters validated and inputs
    bound; errors name the line of ``source`` they come from."""
    resolver = _Resolver(lines, source)
    channels = resolver.channels(spec)
    steps: list[Step] = []
    seen: set[str] = set()
    for i, s in enumerate(spec.steps):
        if s.id in seen:
            raise resolver.fail(("steps", i, "id"), s, f"step id {s.id!r} is used twice")
        seen.add(s.id)
        steps.append(resolver.step(i, s))
    names = resolver.names
    normalized: dict[str, Any] = {
        "name": spec.name,
        "pixel_size_um": spec.pixel_size_um,
        "channels": {k: list(v) for k, v in channels.items()},
        "steps": [
            {
                "id": st.id,
                "tool": st.tool.name,
                "parameters": st.params.model_dump(mode="json"),
                "inputs": {p: [n for n, _ in v] for p, v in st.inputs.items()},
                "outputs": {p: n for p, (n, _) in st.outputs.items()},
            }
            for st in steps
        ],
    }
    digest = hashlib.sha256(
        json.dumps(normalized, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    normalized["description"] = spec.description
    return Pipeline(
        name=spec.name,
        description=spec.description,
        channels=channels,
        pixel_size_um=spec.pixel_size_um,
        steps=tuple(steps),
        spec=normalized,
        hash=digest,
        path=path,
        produced=names,
    )


class _Resolver:
    """Resolves a pipeline's channels and steps in order, keeping the names (channels, outputs
    of the steps so far) that later steps may use as inputs, and what each one is."""

    def __init__(self, lines: Mapping[tuple[Any, ...], int], source: str) -> None:
        self.lines = lines
        self.source = source
        self.names: dict[str, Source] = {}
        self.kinds: dict[str, str] = {}  # name -> kind of data ("image", "labels"...)

    def fail(self, loc: tuple[Any, ...], step: _StepSpec | None, msg: str) -> QuantscopeError:
        """The error for ``msg`` about ``loc`` (with its line) of ``step``."""
        line = _line_of(self.lines, loc)
        where = f"{self.source}:{line}" if line else self.source
        who = f" step {step.id!r} ({step.tool}):" if step is not None else ""
        return InvalidInput(f"{where}:{who} {msg}")

    def channels(self, spec: _PipelineSpec) -> dict[str, tuple[int | str, ...]]:
        """The channels by name, each as the names or indices it may be found by."""
        channels: dict[str, tuple[int | str, ...]] = {}
        for cname, ref in spec.channels.items():
            cands = tuple(ref) if isinstance(ref, list) else (ref,)
            if not cands:
                raise self.fail(
                    ("channels", cname), None, f"channel {cname!r}: give a name or an index"
                )
            for c in cands:
                if isinstance(c, int) and c < 0:
                    raise self.fail(("channels", cname), None, f"channel {cname!r}: index {c} < 0")
            channels[cname] = cands
            self.names[cname] = Source("channel", cname)
        self.kinds.update(dict.fromkeys(channels, "image"))
        return channels

    def step(self, i: int, s: _StepSpec) -> Step:
        """Step ``i`` of the pipeline; its outputs become names later steps may use."""
        base = ("steps", i)
        tool, params = self._tool_and_params(base, s)
        bound = self._bind_inputs(base, s, tool)
        outs = self._name_outputs(base, s, tool)
        return Step(
            id=s.id,
            tool=tool,
            params=params,
            params_hash=params_hash(params),
            inputs=bound,
            outputs=outs,
            line=_line_of(self.lines, base),
        )

    def _tool_and_params(self, base: tuple[Any, ...], s: _StepSpec) -> tuple[Tool, BaseModel]:
        """The step's tool, and its parameters validated by the tool's model."""
        try:
            tool = get_tool(s.tool)
        except NotFound as e:
            raise self.fail((*base, "tool"), s, str(e)) from None
        try:
            model = tool.parameters()
        except QuantscopeError as e:
            raise self.fail((*base, "tool"), s, str(e)) from None
        try:
            params = model.model_validate(s.parameters)
        except ValidationError as e:
            err = e.errors()[0]
            loc = tuple(err["loc"])
            pname = ".".join(str(x) for x in loc) or "parameters"
            allowed = ", ".join(model.model_fields)
            hint = (
                f" (parameters of {tool.name}: {allowed})"
                if err["type"] == "extra_forbidden"
                else ""
            )
            raise self.fail(
                (*base, "parameters", *loc), s, f"parameter {pname!r}: {err['msg']}{hint}"
            ) from None
        return tool, params

    def _bind_inputs(
        self, base: tuple[Any, ...], s: _StepSpec, tool: Tool
    ) -> dict[str, tuple[tuple[str, Source], ...]]:
        """The step's inputs by port: the names bound to each, with their sources; every
        port is checked to exist and to take the kind of data bound to it."""
        ports = {p.name: p for p in tool.inputs}
        bound: dict[str, tuple[tuple[str, Source], ...]] = {}
        for port_name, binding in s.inputs.items():
            port = ports.get(port_name)
            loc = (*base, "inputs", port_name)
            if port is None or port.kind == "profile":
                have = ", ".join(p.name for p in tool.inputs if p.kind != "profile")
                raise self.fail(
                    loc, s, f"tool {tool.name} has no input {port_name!r} (its inputs: {have})"
                )
            refs = binding if isinstance(binding, list) else [binding]
            if len(refs) > 1 and not port.many:
                raise self.fail(loc, s, f"input {port_name!r} takes one value, not a list")
            vals = []
            for r in refs:
                src = self.names.get(r)
                if src is None:
                    known = ", ".join(self.names) or "none"
                    raise self.fail(
                        loc,
                        s,
                        f"input {port_name!r}: {r!r} is neither a channel nor an output of an "
                        f"earlier step (known: {known})",
                    )
                if self.kinds[r] != port.kind:
                    raise self.fail(
                        loc,
                        s,
                        f"input {port_name!r} takes {port.kind}, but {r!r} is {self.kinds[r]}",
                    )
                vals.append((r, src))
            bound[port_name] = tuple(vals)
        for port in tool.inputs:
            if port.name not in bound and not port.optional:
                raise self.fail(base, s, f"input {port.name!r} ({port.kind}) is not bound")
        return bound

    def _name_outputs(
        self, base: tuple[Any, ...], s: _StepSpec, tool: Tool
    ) -> dict[str, tuple[str, str]]:
        """The step's outputs by port, as (name, kind); the names are registered for the
        steps that follow."""
        out_ports = {p.name: p for p in tool.outputs}
        for port_name in s.outputs:
            if port_name not in out_ports:
                have = ", ".join(out_ports)
                raise self.fail(
                    (*base, "outputs", port_name),
                    s,
                    f"tool {tool.name} has no output {port_name!r} (its outputs: {have})",
                )
        outs: dict[str, tuple[str, str]] = {}
        for port in tool.outputs:
            oname = s.outputs.get(port.name, f"{s.id}.{port.name}")
            loc = (*base, "outputs", port.name)
            if not re.match(r"^[A-Za-z][A-Za-z0-9_.\-]{0,62}$", oname):
                raise self.fail(
                    loc,
                    s,
                    f"output name {oname!r}: use letters, digits, '_', '-', '.' (start with a "
                    "letter, at most 63 characters)",
                )
            if oname in self.names:
                raise self.fail(loc, s, f"output name {oname!r} is already used")
            self.names[oname] = Source("step", oname, s.id, port.name)
            self.kinds[oname] = port.kind
            outs[port.name] = (oname, port.kind)
        return outs
