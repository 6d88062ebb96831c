"""Migration 0007 (issue 13, point 2): the reason sentences of an older catalog become
``qc_flags`` records, on SQLite and PostgreSQL; the records are stored and read back as given."""

from __future__ import annotations

import json
import math
from pathlib import Path

import sqlalchemy as sa

from quantscope.catalog import ImageRegistration, Repository
from quantscope.model import Channel, Image, PlatePosition
from quantscope.quality import QCFlag


def _image(i: int, channels: tuple[str, ...]) -> Image:
    return Image(
        id=f"{i:032x}",
        name=f"P_A01_s{i}",
        shape=(1, len(channels), 1, 8, 8),
        dtype="uint16",
        channels=tuple(Channel(index=k, name=c) for k, c in enumerate(channels)),
        position=PlatePosition(plate="P", row=0, column=0, field=i),
        store_path=f"plates/P.ome.zarr/A/01/{i - 1}",
        levels=1,
        bytes_stored=1,
    )


#: As QC orders them: fails first, limits before outliers within a level, channel by channel
#: (an outlier sentence does not say its level: the migration infers it from this order).
FLAGS = {
    1: (
        "fail",
        [
            QCFlag("snr", "fail", "limit", 3.217, 5.0, channel="GFP", channel_index=1),
            QCFlag(
                "focus_plls",
                "fail",
                "outlier",
                -4.25,
                zscore=-8.04,
                median=-2.1,
                peers=24,
                channel="DAPI",
                channel_index=0,
            ),
            QCFlag(
                "saturation_pct_at_max",
                "warn",
                "limit",
                0.5,
                0.1,
                channel="DAPI",
                channel_index=0,
            ),
        ],
    ),
    2: (
        "warn",
        [
            QCFlag("foreground_pct", "warn", "limit", 0.0, 0.05, channel="R=G=B", channel_index=0),
            QCFlag(
                "focus_plls",
                "warn",
                "outlier",
                -2.9,
                zscore=-4.0,
                median=-2.0,
                peers=24,
                channel="R=G=B",
                channel_index=0,
            ),
        ],
    ),
    3: ("warn", [QCFlag.error("truncated chunk"), "the operator says: dusty"]),
    4: ("pass", []),
}


def test_flags_round_trip_and_old_reasons_become_records(
    tmp_path: Path, catalog_url: str | None
) -> None:
    from alembic import command
    from alembic.config import Config

    import quantscope.catalog._repository as mod

    repo = Repository.init(tmp_path / "r", catalog_url)
    chans = {1: ("DAPI", "GFP"), 2: ("R", "G", "B"), 3: ("DAPI",), 4: ("DAPI",)}
    repo.images.register_many([ImageRegistration(_image(i, chans[i]), {}, []) for i in FLAGS])
    repo.quality.set_status({f"{i:032x}": v for i, v in FLAGS.items()})
    stored = repo.quality.flags()
    assert stored[f"{1:032x}"] == FLAGS[1][1] and stored[f"{2:032x}"] == FLAGS[2][1]
    assert stored[f"{3:032x}"] == [FLAGS[3][1][0], QCFlag.note("the operator says: dusty")]
    assert f"{4:032x}" not in stored
    sentences = repo.quality.status()
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(mod.__file__).parent / "migrations"))
    with repo.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        assert "qc_flags" not in sa.inspect(conn).get_table_names()
        text = conn.execute(sa.text("SELECT reasons FROM quality_status")).scalars()
        assert any("robust z = -8.0" in json.loads(t)[1] for t in text if json.loads(t)[1:])
    repo.close()
    with Repository.open(tmp_path / "r") as again:
        after = again.quality.flags()
        assert set(after) == set(stored)
        for image_id, flags in stored.items():
            assert [f.message for f in after[image_id]] == sentences[image_id][1]
            for a, b in zip(after[image_id], flags, strict=True):
                assert (a.kind, a.rule, a.level, a.direction, a.metric) == (
                    b.kind,
                    b.rule,
                    b.level,
                    b.direction,
                    b.metric,
                )
                assert (a.channel, a.channel_index, a.bound, a.peers, a.detail) == (
                    b.channel,
                    b.channel_index,
                    b.bound,
                    b.peers,
                    b.detail,
                )
                for x, y in ((a.value, b.value), (a.median, b.median)):
                    assert (x is None) == (y is None)
                    assert x is None or math.isclose(x, y or 0, rel_tol=1e-3, abs_tol=1e-9)
                assert a.zscore is None or abs(a.zscore - (b.zscore or 0)) <= 0.05
        assert again.query.find_ids('qc.flag == "unreadable"') == [f"{3:032x}"]
        assert again.query.find_ids('qc.flag == "focus" and qc.flag.level == "fail"') == [
            f"{1:032x}"
        ]


def test_reasons_that_are_not_a_json_list_of_sentences_are_kept_as_notes(tmp_path: Path) -> None:
    """An older catalog written by hand or by another tool: a reasons column that is not JSON,
    a JSON string, or a list with a number. The upgrade keeps each text as a note flag; nothing
    fails and nothing is lost."""
    from alembic import command
    from alembic.config import Config

    import quantscope.catalog._repository as mod

    repo = Repository.init(tmp_path / "r")
    repo.images.register_many([ImageRegistration(_image(i, ("DAPI",)), {}, []) for i in (1, 2, 3)])
    repo.quality.set_status({f"{i:032x}": ("warn", ["x"]) for i in (1, 2, 3)})
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(mod.__file__).parent / "migrations"))
    odd = {1: "dusty lens, not JSON", 2: json.dumps("one sentence"), 3: json.dumps(["a", 7])}
    with repo.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        for i, text in odd.items():
            conn.execute(
                sa.text("UPDATE quality_status SET reasons = :r WHERE image_id = :i"),
                {"r": text, "i": f"{i:032x}"},
            )
    repo.close()
    with Repository.open(tmp_path / "r") as again:
        flags = again.quality.flags()
        assert [f.detail for f in flags[f"{1:032x}"]] == ["dusty lens, not JSON"]
        assert [f.detail for f in flags[f"{2:032x}"]] == ["one sentence"]
        assert [f.detail for f in flags[f"{3:032x}"]] == ["a", "7"]
        assert {f.rule for fs in flags.values() for f in fs} == {"note"}
        assert {f.level for fs in flags.values() for f in fs} == {"warn"}
