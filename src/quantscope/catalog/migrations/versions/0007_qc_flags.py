"""QC verdicts as records: the ``qc_flags`` table.

Revision ID: 0007
Revises: 0006

Each flag behind an image's QC status becomes a row (rule, level, kind, metric, channel,
direction, value, limit or robust z, ...: ``quantscope.quality.QCFlag``), so that queries can
ask for a rule (``qc.flag == "saturation"``) and the report reads limits and flagged channels
from the records instead of parsing sentences. ``quality_status.reasons`` stays, as the
sentences rendered from the records when they were stored (for ``qc.reasons like``).

The reason strings of older catalogs are read here, once: the sentences quantscope wrote
(``"ch DAPI: snr = 4.2 is below the fail limit 5: low signal-to-noise ratio"``, the outlier
and "quality could not be measured" sentences) become records with their values as printed
(4 significant digits); any other text becomes a ``"note"`` record that keeps the text.
The vocabulary below is frozen with this revision (later metrics map themselves in code).
"""

import json
import math
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_RULE_OF_METRIC = {
    "focus_plls": "focus",
    "focus_normvar": "focus",
    "focus_local": "focus",
    "focus_laplacian_var": "focus",
    "saturation_pct_at_max": "saturation",
    "saturation_pct_at_dtype_max": "saturation",
    "pct_at_min": "clipped_min",
    "intensity_min": "intensity",
    "intensity_max": "intensity",
    "intensity_mean": "intensity",
    "dynamic_range_used": "dynamic_range",
    "background_median": "intensity",
    "background_mad": "intensity",
    "snr": "snr",
    "illum_corner_center_ratio": "illumination",
    "illum_flatness": "illumination",
    "foreground_pct": "empty",
    "is_empty": "empty",
    "pct_nonfinite": "nonfinite",
}
_NUM = r"[-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|inf|nan)"
_UNIT = r"(?: %| ADU)?"
_PREFIX = r"^(?:ch (?P<channel>.*): )?(?P<metric>\w+) = (?P<value>" + _NUM + ")" + _UNIT
_LIMIT = re.compile(
    _PREFIX + r" is (?P<side>below|above) the (?P<level>warn|fail) limit "
    r"(?P<bound>" + _NUM + ")" + _UNIT + r": .*$",
    re.DOTALL,
)
_OUTLIER = re.compile(
    _PREFIX + r" is an outlier (?P<side>below|above) its group: robust z = (?P<z>" + _NUM + r") "
    r"\(median (?P<median>" + _NUM + ")" + _UNIT + r" of (?P<n>[0-9]+) images\): .*$",
    re.DOTALL,
)
_ERROR = "quality could not be measured: "
_FAIL_Z = 7.0  # the default outlier_fail_z
_COLUMNS = (
    "image_id",
    "seq",
    "rule",
    "level",
    "kind",
    "metric",
    "channel",
    "channel_name",
    "direction",
    "value",
    "bound",
    "zscore",
    "median",
    "peers",
    "detail",
)


def _create_table() -> None:
    op.create_table(
        "qc_flags",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.Integer(), nullable=True),
        sa.Column("channel_name", sa.Text(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("bound", sa.Float(), nullable=True),
        sa.Column("zscore", sa.Float(), nullable=True),
        sa.Column("median", sa.Float(), nullable=True),
        sa.Column("peers", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_qc_flags_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "seq", name=op.f("pk_qc_flags")),
    )
    with op.batch_alter_table("qc_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_flags_rule_level"), ["rule", "level"])
        batch_op.create_index(batch_op.f("ix_qc_flags_metric"), ["metric"])


def _number(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _channel_index(label: str | None, names: list[str]) -> int | None:
    """Index of the channel a reason names: ``"DAPI"``, ``"R=G=B"`` (merged identical
    channels: the first), or ``"C3"`` (an unnamed channel)."""
    if label is None:
        return None
    for candidate in (label, label.split("=")[0]):
        if candidate in names:
            return names.index(candidate)
    m = re.fullmatch(r"C([0-9]+)", label)
    return int(m[1]) if m else None


def _outlier_level(z: float, status: str) -> str:
    """An outlier sentence does not say its level: the default cut-off (|z| >= 7 fails),
    never worse than the image's status (:func:`_order_levels` refines it)."""
    return "fail" if status == "fail" and abs(z) >= _FAIL_Z else "warn"


def _order_levels(rows: list[dict[str, Any]]) -> None:
    """Refine the levels of outlier rows from the order QC wrote them in: within one
    channel, fails come first, limits before outliers, so an outlier followed by a warning
    of its channel failed, and one preceded by a warning warned."""
    for row in rows:
        if row["kind"] != "outlier":
            continue
        same = [r for r in rows if r["channel_name"] == row["channel_name"]]
        at = next(i for i, r in enumerate(same) if r is row)
        if any(r["level"] == "warn" and r["kind"] == "limit" for r in same[at + 1 :]):
            row["level"] = "fail"
        elif any(r["level"] == "warn" for r in same[:at]):
            row["level"] = "warn"


def parse_reason(reason: str, status: str, names: list[str]) -> dict[str, Any]:
    """One stored reason sentence as a ``qc_flags`` row (without image id and seq)."""
    row: dict[str, Any] = dict.fromkeys(
        ("metric", "channel", "channel_name", "direction", "value", "bound", "zscore"), None
    )
    row.update(median=None, peers=None, detail=None)
    m = _LIMIT.match(reason) or _OUTLIER.match(reason)
    if m is not None and m["metric"] in _RULE_OF_METRIC:
        outlier = "z" in m.groupdict()
        row.update(
            rule=_RULE_OF_METRIC[m["metric"]],
            level=m["level"] if not outlier else _outlier_level(float(m["z"]), status),
            kind="outlier" if outlier else "limit",
            metric=m["metric"],
            channel=_channel_index(m["channel"], names),
            channel_name=m["channel"],
            direction=m["side"],
            value=_number(m["value"]),
        )
        if outlier:
            row.update(zscore=float(m["z"]), median=_number(m["median"]), peers=int(m["n"]))
        else:
            row.update(bound=float(m["bound"]))
        return row
    level = "fail" if status == "fail" else "warn"
    if reason.startswith(_ERROR):
        row.update(rule="unreadable", level=level, kind="error", detail=reason[len(_ERROR) :])
    else:
        row.update(rule="note", level=level, kind="note", detail=reason)
    return row


def _convert_reasons() -> None:
    conn = op.get_bind()
    names: dict[str, list[str]] = {}
    for image_id, name in conn.execute(
        sa.text("SELECT image_id, name FROM channels ORDER BY image_id, idx")
    ):
        names.setdefault(image_id, []).append(name)
    table = sa.table(
        "qc_flags",
        *(sa.column(c) for c in _COLUMNS),
    )
    rows: list[dict[str, Any]] = []
    stored = list(conn.execute(sa.text("SELECT image_id, status, reasons FROM quality_status")))
    for image_id, status, reasons in stored:
        try:
            texts = json.loads(reasons or "[]")
        except ValueError:
            texts = [reasons]
        mine = [
            {
                "image_id": image_id,
                "seq": seq,
                **parse_reason(str(t), status, names.get(image_id, [])),
            }
            for seq, t in enumerate(texts if isinstance(texts, list) else [texts])
        ]
        _order_levels(mine)
        rows += mine
        if len(rows) >= 5000:
            conn.execute(table.insert(), rows)
            rows = []
    if rows:
        conn.execute(table.insert(), rows)


def upgrade() -> None:
    _create_table()
    _convert_reasons()


def downgrade() -> None:
    with op.batch_alter_table("qc_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qc_flags_metric"))
        batch_op.drop_index(batch_op.f("ix_qc_flags_rule_level"))
    op.drop_table("qc_flags")
