"""The queryable fields, derived from the catalog schema by introspection.

Image columns ``<group>_<rest>`` whose group prefix is shared by two or more columns become
``<group>.<rest>`` (``objective_na`` -> ``objective.na``, ``instrument_model`` ->
``instrument.model``, ``size_x`` -> ``size.x``); a few columns get clearer names (``acquired_at``
-> ``acquired``, ``physical_size_x_um`` -> ``pixel.size_x_um``). The raw column name is accepted
as an alias. New nullable columns added by later migrations become queryable without any change
here. Channel columns are ``channel.<column>``, source files ``source.<column>``, QC flag
records ``qc.flag`` (the rule) and ``qc.flag.<column>``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Literal

import sqlalchemy as sa

from .. import _schema as S

__all__ = ["FieldInfo", "static_fields"]

Kind = Literal[
    "image",
    "plate",
    "channel",
    "channels",
    "source",
    "qc",
    "qc_status",
    "qc_flag",
    "qc_flags",
    "annotation",
]
Type = Literal["text", "number", "integer", "datetime", "boolean"]


@dataclass(frozen=True)
class FieldInfo:
    """One queryable field.

    ``kind`` says where it lives: ``image`` (a column of ``images``), ``plate`` (the plate's
    name), ``channel`` (a column of ``channels``: the image matches when one of its channels
    does), ``source`` (a source file), ``qc`` (a quality metric per channel), ``qc_status``
    (the image's QC status), ``qc_flag`` (a column of ``qc_flags``: the image matches when
    one of its QC flags does), ``qc_flags`` (the rules of its flags, each predicate on its
    own) or ``annotation`` (a key-value annotation, ``key``).
    """

    name: str
    kind: Kind
    type: Type
    column: str | None = None  # column in its table (value column for qc and annotations)
    key: str | None = None  # annotation key or quality metric name
    unit: str | None = None
    description: str = ""
    #: a closed set of values (``qc.status``, ``qc.flag``, ``qc.flag.level`` ...): a compared
    #: value outside it is refused, with the values listed (see ``vocabulary``)
    vocabulary: str | None = None


_RENAME = {
    "acquired_at": "acquired",
    "created_at": "created",
    "physical_size_x_um": "pixel.size_x_um",
    "physical_size_y_um": "pixel.size_y_um",
    "physical_size_z_um": "pixel.size_z_um",
    "plate_row": "plate.row",
    "plate_column": "plate.column",
}
_HIDDEN = {"plate_id"}
_DESCRIBE = {
    "id": "image id (32 hex characters)",
    "name": "image name (file name, with the scene where a file holds several)",
    "well": 'well name, e.g. "A01" (well literals are normalized: "a1" == "A01")',
    "field": "field (site) within the well, 1-based as the microscope numbers sites",
    "plate.row": "plate row, 0-based (A = 0)",
    "plate.column": "plate column, 0-based (01 = 0)",
    "dtype": 'pixel data type, e.g. "uint16"',
    "acquired": "acquisition date-time (UTC); a date literal means that whole day",
    "created": "when the image entered the catalog (UTC)",
    "levels": "number of resolution levels in the stored pyramid",
    "bytes_stored": "bytes of the stored OME-Zarr",
    "store_path": "path of the OME-Zarr inside the repository",
    "objective.na": "lens numerical aperture",
    "objective.magnification": "nominal magnification",
}
_FLAG_NAMES = {
    "rule": "qc.flag",
    "channel": "qc.flag.channel_index",
    "channel_name": "qc.flag.channel",
}
_FLAG_VOCABULARY = {"rule": "rule", "level": "level", "kind": "kind", "direction": "direction"}
_FLAG_DESCRIBE = {
    "rule": 'the rule of a QC flag: "focus", "saturation", "snr", "illumination", "empty", '
    '"clipped_min", "dynamic_range", "nonfinite", "intensity", "unreadable" or "note"',
    "level": 'severity of a QC flag: "warn" or "fail"',
    "kind": 'how a QC flag was raised: "limit", "outlier", "error" or "note"',
    "metric": "the metric a QC flag is about",
    "channel": "index of the channel a QC flag is about, 0-based",
    "channel_name": 'name of the channel a QC flag is about ("R=G=B": identical channels)',
    "direction": 'side of the limit (or of the peers\' median) of a QC flag: "above", "below"',
    "value": "the metric value a QC flag quotes",
    "bound": "the limit a QC flag crossed",
    "zscore": "the robust z-score of an outlier QC flag",
    "median": "the peers' median of an outlier QC flag",
    "peers": "how many peers an outlier QC flag was compared with",
    "detail": "the text of an error or note QC flag",
}
_COLUMN_DESCRIBE = {
    "idx": "channel index, 0-based",
    "name": "channel name",
    "color": "display color RRGGBB",
    "fluor": "fluorophore",
}


def _unit(column: str) -> str | None:
    units = (
        ("_um", "µm"),
        ("_nm", "nm"),
        ("_ms", "ms"),
        ("_s", "s"),
        ("_pct", "%"),
        ("_percent", "%"),
        ("_c", "°C"),
        ("_mbar", "mbar"),
        ("_mhz", "MHz"),
        ("_mw", "mW"),
        ("_v", "V"),
    )
    for suffix, unit in units:
        if column.endswith(suffix):
            return unit
    return "bytes" if column.startswith("bytes") or column.endswith("bytes") else None


def _type(col: sa.Column[object]) -> Type:
    t = col.type
    if isinstance(t, sa.Boolean):
        return "boolean"
    if isinstance(t, sa.Integer):
        return "integer"
    if isinstance(t, sa.Float | sa.Numeric):
        return "number"
    if isinstance(t, sa.DateTime | sa.Date):
        return "datetime"
    return "text"


def _image_name(column: str, prefixes: Counter[str]) -> str:
    if column in _RENAME:
        return _RENAME[column]
    head, sep, rest = column.partition("_")
    if sep and rest and prefixes[head] >= 2:
        return f"{head}.{rest}"
    return column


@cache
def static_fields() -> tuple[dict[str, FieldInfo], dict[str, str]]:
    """({field name: info} of every field known from the schema, {alias: field name})."""
    fields: dict[str, FieldInfo] = {}
    aliases: dict[str, str] = {}
    cols = [c for c in S.images.columns if c.name not in _HIDDEN]
    prefixes = Counter(c.name.partition("_")[0] for c in S.images.columns if "_" in c.name)
    for col in cols:
        name = _image_name(col.name, prefixes)
        fields[name] = FieldInfo(
            name,
            "image",
            _type(col),
            col.name,
            unit=_unit(col.name),
            description=_DESCRIBE.get(name, f"image: {col.name.replace('_', ' ')}"),
        )
        if name != col.name:
            aliases[col.name] = name
    fields["plate"] = FieldInfo("plate", "plate", "text", "name", description="plate name")
    for col in S.channels.columns:
        if col.name == "image_id":
            continue
        name = "channel.index" if col.name == "idx" else f"channel.{col.name}"
        fields[name] = FieldInfo(
            name,
            "channel",
            _type(col),
            col.name,
            unit=_unit(col.name),
            description="channel: "
            + _COLUMN_DESCRIBE.get(col.name, col.name.replace("_", " "))
            + " (the image matches when one of its channels does)",
        )
    if "channel.exposure_time_s" in fields:
        aliases["channel.exposure_s"] = "channel.exposure_time_s"
    aliases["channel.idx"] = "channel.index"
    for col in S.source_files.columns:
        if col.name == "id":
            continue
        name = "source.ingested" if col.name == "ingested_at" else f"source.{col.name}"
        fields[name] = FieldInfo(
            name,
            "source",
            _type(col),
            col.name,
            unit="bytes" if col.name == "size" else _unit(col.name),
            description=f"source file: {col.name.replace('_', ' ')} "
            "(the image matches when one of its source files does)",
        )
    fields["qc.status"] = FieldInfo(
        "qc.status",
        "qc_status",
        "text",
        "status",
        description='QC status ("pass", "warn", "fail")',
        vocabulary="status",
    )
    fields["qc.reasons"] = FieldInfo(
        "qc.reasons",
        "qc_status",
        "text",
        "reasons",
        description="QC reasons (JSON list of text; search it with like)",
    )
    _flag_fields(fields, aliases)
    fields["channels"] = FieldInfo(
        "channels",
        "channels",
        "text",
        "name",
        description='the names of the image\'s channels: channels == "DAPI" holds when one '
        "channel is named DAPI; unlike channel.name, each such predicate is tested on its own "
        '(channels == "DAPI" and channels == "GFP": both channels)',
    )
    fields["tag"] = FieldInfo(
        "tag",
        "annotation",
        "text",
        "value",
        key="tag",
        description="a tag on the image, its plate or a dataset it belongs to",
    )
    fields["dataset"] = FieldInfo(
        "dataset",
        "annotation",
        "text",
        "value",
        key="dataset",
        description='a dataset the image belongs to: dataset == "screen-7" selects its images '
        "(annotations on the dataset apply to them too)",
    )
    return fields, aliases


def _flag_fields(fields: dict[str, FieldInfo], aliases: dict[str, str]) -> None:
    """``qc.flag`` (the rule) and ``qc.flag.<column>`` of the QC flag records, and ``qc.flags``
    (the rules, each predicate on its own)."""
    for col in S.qc_flags.columns:
        if col.name in ("image_id", "seq"):
            continue
        name = _FLAG_NAMES.get(col.name, f"qc.flag.{col.name}")
        fields[name] = FieldInfo(
            name,
            "qc_flag",
            _type(col),
            col.name,
            description=_FLAG_DESCRIBE.get(col.name, col.name.replace("_", " "))
            + " (the image matches when one of its flags does; predicates on qc.flag* joined "
            "by and/or describe one flag)",
            vocabulary=_FLAG_VOCABULARY.get(col.name),
        )
    aliases["qc.flag.rule"] = "qc.flag"
    aliases["qc.flag.severity"] = "qc.flag.level"
    fields["qc.flags"] = FieldInfo(
        "qc.flags",
        "qc_flags",
        "text",
        "rule",
        description='the rules of the image\'s QC flags: qc.flags == "focus" holds when one '
        "flag is for focus; unlike qc.flag, each such predicate is tested on its own "
        '(qc.flags == "focus" and qc.flags == "saturation": flagged for both)',
        vocabulary="rule",
    )


def vocabulary(name: str) -> tuple[str, ...]:
    """The values a field of closed vocabulary ``name`` (:attr:`FieldInfo.vocabulary`) can
    hold: the QC statuses, and the rules, levels, kinds and directions of QC flags (the rules
    from :data:`quantscope.quality.RULES`, imported only when a query needs them)."""
    if name == "rule":
        from ...quality import RULES

        return tuple(RULES)
    if name == "kind":
        from typing import get_args

        from ...quality import FlagKind

        return tuple(get_args(FlagKind))
    return {
        "status": ("pass", "warn", "fail"),
        "level": ("warn", "fail"),
        "direction": ("above", "below"),
    }[name]
