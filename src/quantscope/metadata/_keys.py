"""The annotation keys quantscope knows, and checking a value against its key.

The keys, their types, units and ontology-term patterns are data
(``data/annotation_keys.yaml``), built from the REMBI modules (Sarkans et al. 2021,
doi:10.1038/s41592-021-01166-8; field names of the BioImage Archive REMBI 1.5 models) and the
4DN-BINA-OME sample fields OME-XML has no slot for. Keys under ``custom.`` are free text.

Key layout (dotted, snake_case): ``tag``; ``study.{title, description, keywords, authors,
license, funding, release_date, publications, acknowledgements, study_type}``;
``study_component.{name, description}``; ``biosample.{title, organism, biological_entity,
description, cell_line, genotype, intrinsic_variables, extrinsic_variables,
experimental_variables, experimental_status, live, organism_part}``;
``biosample.treatment.{compound, concentration, duration}``; ``specimen.{preparation,
growth_protocol, fixation, mounting_medium, cover_glass, labelling_method}``;
``specimen.stain.<channel>.{target, fluorophore, antibody}``;
``image_acquisition.{imaging_method, instrument, parameters, software}``;
``image_data.{type, processing_method, contrast_inversion}``;
``image_correlation.{alignment, fiducials, transformation_matrix}``;
``analysis.{overview, results_type}``. :func:`annotation_keys` lists them with their types.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .._text import noun

__all__ = [
    "CUSTOM_PREFIX",
    "KeySpec",
    "ParsedValue",
    "annotation_keys",
    "key_spec",
    "parse_quantity",
    "parse_value",
    "suggest_key",
    "unknown_key_message",
]

CUSTOM_PREFIX = "custom."

# canonical unit per dimension, and factors to it
_UNITS: dict[str, dict[str, tuple[str, float]]] = {
    "time": {
        "s": ("s", 1.0), "sec": ("s", 1.0), "ms": ("s", 1e-3), "min": ("s", 60.0),
        "h": ("s", 3600.0), "hr": ("s", 3600.0), "d": ("s", 86400.0), "day": ("s", 86400.0),
        "days": ("s", 86400.0), "µs": ("s", 1e-6), "us": ("s", 1e-6),
    },
    "concentration": {
        "M": ("µM", 1e6), "mM": ("µM", 1e3), "µM": ("µM", 1.0), "uM": ("µM", 1.0),
        "\u03bcM": ("µM", 1.0), "nM": ("µM", 1e-3), "pM": ("µM", 1e-6),
        "g/L": ("µg/mL", 1e3), "mg/mL": ("µg/mL", 1e3), "mg/L": ("µg/mL", 1.0),
        "µg/mL": ("µg/mL", 1.0), "ug/mL": ("µg/mL", 1.0), "\u03bcg/mL": ("µg/mL", 1.0),
        "ng/mL": ("µg/mL", 1e-3), "%": ("%", 1.0),
    },
    "length": {
        "nm": ("µm", 1e-3), "µm": ("µm", 1.0), "um": ("µm", 1.0), "mm": ("µm", 1e3),
        "cm": ("µm", 1e4), "m": ("µm", 1e6),
    },
    "temperature": {"°C": ("°C", 1.0), "C": ("°C", 1.0), "degC": ("°C", 1.0)},
}  # fmt: skip
_QUANTITY_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_TERM_IN_TEXT = re.compile(r"^(.*?)\s*[\[(]\s*([A-Za-z][\w.\-]*:[\w.\-]+|CVCL_\w+)\s*[\])]\s*$")


@dataclass(frozen=True)
class KeySpec:
    """What a key holds: its type, whether it may hold several values, unit dimension, choices,
    ontology pattern, REMBI module and JSON-LD term."""

    key: str
    type: str
    multi: bool = False
    dimension: str | None = None
    choices: tuple[str, ...] = ()
    curie_pattern: str | None = None
    curie_optional: bool = False
    rembi: str | None = None
    jsonld: str | None = None
    description: str = ""
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def matches(self, key: str) -> bool:
        if self._regex is not None:
            return bool(self._regex.match(key))
        return key == self.key


@dataclass(frozen=True)
class ParsedValue:
    """A value checked against its key: text, number (in ``unit``), ontology term."""

    value: str | None
    num_value: float | None = None
    unit: str | None = None
    curie: str | None = None


@functools.cache
def _registry() -> tuple[KeySpec, ...]:
    import yaml

    text = resources.files(__package__).joinpath("data/annotation_keys.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    out = []
    for key, spec in raw.items():
        regex = None
        if "*" in key:
            regex = re.compile(
                "^" + re.escape(key).replace(r"\*", r"[A-Za-z0-9][A-Za-z0-9_\-+]*") + "$"
            )
        out.append(
            KeySpec(
                key=key,
                type=spec["type"],
                multi=bool(spec.get("multi", False)),
                dimension=spec.get("dimension"),
                choices=tuple(spec.get("choices") or ()),
                curie_pattern=spec.get("curie_pattern"),
                curie_optional=bool(spec.get("curie_optional", False)),
                rembi=spec.get("rembi"),
                jsonld=spec.get("jsonld"),
                description=spec.get("description", ""),
                _regex=regex,
            )
        )
    return tuple(out)


@functools.cache
def _terms() -> dict[str, dict[str, str]]:
    import yaml

    text = resources.files(__package__).joinpath("data/terms.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {key: {label.lower(): curie for label, curie in m.items()} for key, m in raw.items()}


def _term_labels() -> dict[str, dict[str, str]]:
    """{key: {curie: canonical label}}."""
    import yaml

    text = resources.files(__package__).joinpath("data/terms.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    out: dict[str, dict[str, str]] = {}
    for key, m in raw.items():
        for label, curie in m.items():
            out.setdefault(key, {}).setdefault(curie, label)
    return out


def annotation_keys() -> list[KeySpec]:
    """Every known key (patterns such as ``specimen.stain.*.target`` included)."""
    return list(_registry())


def key_spec(key: str) -> KeySpec | None:
    """The spec of ``key``; a free-text spec for ``custom.*`` keys; None if unknown."""
    if key.startswith(CUSTOM_PREFIX) and len(key) > len(CUSTOM_PREFIX):
        return KeySpec(key=key, type="text", multi=True, description="user-defined")
    return next((s for s in _registry() if s.matches(key)), None)


def suggest_key(key: str) -> str:
    """A "did you mean" hint for an unknown key ("" when nothing is close)."""
    names = [s.key.replace("*", "<channel>") for s in _registry()]
    # also compare with the concrete form of pattern keys (specimen.stain.DAPI.targte)
    parts = key.split(".")
    candidates = list(names)
    for s in _registry():
        if "*" in s.key and len(parts) == len(s.key.split(".")):
            concrete = ".".join(p if p != "*" else parts[i] for i, p in enumerate(s.key.split(".")))
            candidates.append(concrete)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:
        last = parts[-1]
        close = [c for c in names if c.rsplit(".", 1)[-1] == last][:1]
    return f"did you mean '{close[0]}'?" if close else ""


def unknown_key_message(key: str) -> str:
    hint = suggest_key(key)
    return (
        f"unknown key '{key}'"
        + (f"; {hint}" if hint else "")
        + f" (known keys: `quantscope metadata keys`; free keys start with '{CUSTOM_PREFIX}')"
    )


def parse_quantity(text: Any, dimension: str, unit: str | None = None) -> tuple[float, str]:
    """``(value in the canonical unit, canonical unit)`` of a quantity such as ``"100 nM"``.

    ``unit`` is used when ``text`` is a bare number (a CSV column header's unit).

    Raises
    ------
    ValueError
        Not a number with a unit of ``dimension``.
    """
    units = _UNITS[dimension]
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a {dimension} (a number with a unit)")
    if isinstance(text, int | float):
        number, u = float(text), unit
    else:
        m = _QUANTITY_RE.match(str(text))
        if not m:
            raise ValueError(
                f"{text!r} is not a {dimension}: write a number and a unit, e.g. "
                f"'{_example(dimension)}'"
            )
        number, u = float(m.group(1)), (m.group(2) or unit)
    if u is None:
        raise ValueError(
            f"{text!r} has no unit; write it with one of {', '.join(units)} "
            f"(e.g. '{_example(dimension)}')"
        )
    if u not in units:
        raise ValueError(f"unit '{u}' is not a unit of {dimension} (use one of {', '.join(units)})")
    canonical, factor = units[u]
    return number * factor, canonical


def _example(dimension: str) -> str:
    return {"time": "24 h", "concentration": "100 nM", "length": "5 µm"}.get(dimension, "37 °C")


def parse_value(key: str, raw: Any, unit: str | None = None) -> ParsedValue:
    """Check ``raw`` against ``key``'s type and convert it.

    ``raw`` is a YAML scalar, a mapping (``{label: ..., curie: ...}`` for a term,
    ``{value: ..., unit: ...}`` for a quantity) or CSV text.

    Raises
    ------
    ValueError
        ``key`` is unknown (the message suggests the nearest key), or the value does not fit
        the key's type (the message says what is expected).
    """
    spec = key_spec(key)
    if spec is None:
        raise ValueError(unknown_key_message(key))
    t = spec.type
    if t == "term":
        return _parse_term(spec, raw)
    if t == "quantity":
        assert spec.dimension is not None
        if isinstance(raw, dict):
            unknown = set(raw) - {"value", "unit"}
            if unknown or "value" not in raw:
                raise ValueError(f"a quantity is written as {{value: ..., unit: ...}}, not {raw}")
            num, canonical = parse_quantity(raw["value"], spec.dimension, raw.get("unit"))
            text = f"{raw['value']} {raw.get('unit', '')}".strip()
        else:
            num, canonical = parse_quantity(raw, spec.dimension, unit)
            text = str(raw).strip()
            m = _QUANTITY_RE.match(text)
            if m is not None and m.group(2) is None:  # the unit came from a CSV header
                text = f"{text} {unit}"
        return ParsedValue(text, num, canonical)
    if isinstance(raw, dict | list):
        raise ValueError(f"expected a single {t} value, got {type(raw).__name__} {raw!r}")
    if t == "text":
        s = str(raw).strip()
        if not s:
            raise ValueError("empty text")
        return ParsedValue(s)
    if t in ("int", "number"):
        try:
            num = float(raw) if t == "number" else float(int(str(raw)))
        except ValueError:
            raise ValueError(
                f"{raw!r} is not {'an integer' if t == 'int' else 'a number'}"
            ) from None
        return ParsedValue(str(raw).strip(), num)
    if t == "bool":
        s = str(raw).strip().lower()
        if s in _TRUE:
            return ParsedValue("true", 1.0)
        if s in _FALSE:
            return ParsedValue("false", 0.0)
        raise ValueError(f"{raw!r} is not true/false")
    if t == "date":
        if isinstance(raw, _dt.datetime):
            return ParsedValue(raw.date().isoformat())
        if isinstance(raw, _dt.date):
            return ParsedValue(raw.isoformat())
        try:
            return ParsedValue(_dt.date.fromisoformat(str(raw).strip()).isoformat())
        except ValueError:
            raise ValueError(f"{raw!r} is not a date (YYYY-MM-DD)") from None
    if t == "url":
        s = str(raw).strip()
        if not re.match(r"^https?://\S+$", s):
            raise ValueError(f"{raw!r} is not an http(s) URL")
        return ParsedValue(s)
    if t == "choice":
        s = str(raw).strip()
        for choice in spec.choices:
            if choice.lower() == s.lower():
                return ParsedValue(choice)
        close = difflib.get_close_matches(s, spec.choices, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"{raw!r} is not one of {', '.join(spec.choices)}{hint}")
    raise ValueError(f"key {key!r} has an unknown type {t!r} in the key list")  # pragma: no cover


def _parse_term(spec: KeySpec, raw: Any) -> ParsedValue:
    label: str | None
    curie: str | None
    if isinstance(raw, dict):
        unknown = set(raw) - {"label", "name", "curie", "id"}
        if unknown:
            raise ValueError(
                f"an ontology term is written as {{label: ..., curie: ...}}; unknown "
                f"{noun(len(unknown), 'field')} "
                f"{', '.join(sorted(unknown))}"
            )
        label = raw.get("label", raw.get("name"))
        curie = raw.get("curie", raw.get("id"))
        label = str(label).strip() if label is not None else None
        curie = str(curie).strip() if curie is not None else None
    else:
        s = str(raw).strip()
        m = _TERM_IN_TEXT.match(s)
        if m:
            label, curie = m.group(1).strip() or None, m.group(2)
        elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*:[A-Za-z0-9_.\-]+|CVCL_\w+", s):
            label, curie = None, s
        else:
            label, curie = s, None
    if curie is not None and curie.lower().startswith("cellosaurus:"):
        curie = curie.split(":", 1)[1]
    if label is None and curie is None:
        raise ValueError("an ontology term needs a label or a CURIE")
    known = _terms().get(spec.key, {})
    if curie is None and label is not None:
        curie = known.get(label.lower())
    if label is None and curie is not None:
        label = _term_labels().get(spec.key, {}).get(curie, curie)
    if curie is not None and spec.curie_pattern and not re.match(spec.curie_pattern, curie):
        raise ValueError(
            f"{curie!r} is not a valid term id for this key (expected {spec.curie_pattern})"
        )
    return ParsedValue(label, None, None, curie)
