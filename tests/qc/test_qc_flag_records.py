"""QC verdicts stay structured end to end (issue 13, point 2): flag records from ``quality``,
stored one row each in the catalog (``qc_flags``, migration 0007 converting the reason strings
of older catalogs), asked for by the query language (``qc.flag == "saturation"``), read back
by the report, and printed by ``QCRunReport.to_dict``."""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import Result

from quantscope.catalog import Repository
from quantscope.errors import InvalidInput
from quantscope.ingestion import ingest
from quantscope.qc import QCRunReport, collect_report_data, run_qc
from quantscope.qc._data import ImageQCRecord
from quantscope.qc._report_common import _flagged_cells, _metric_limits
from quantscope.quality import RULES, QCFlag, describe_flag, flag_rule

SATURATED = "synth_A02_s1"


@pytest.fixture(scope="module")
def flagged(
    tmp_path_factory: pytest.TempPathFactory, synth_blurred: tuple[Path, set[str]]
) -> Iterator[tuple[Repository, QCRunReport, set[str]]]:
    """The synthetic plate with two blurred fields, and one more field whose DAPI image has a
    block of pixels at the detector maximum; ingested, then QC run over it."""
    import tifffile

    source, blurred = synth_blurred
    images = tmp_path_factory.mktemp("flags") / "images"
    shutil.copytree(source, images)
    dapi = images / f"{SATURATED}_w1.ome.tif"
    pixels = tifffile.memmap(dapi, mode="r+")  # in place: the OME-XML (plate, well) stays
    pixels[:48, :48] = 65535  # 3.5 % of the pixels at the uint16 maximum: fails
    pixels.flush()
    del pixels
    repo = Repository.init(images.parent / "repo")
    assert ingest(repo, [images], jobs=2).ok
    report = run_qc(repo, recompute=False)
    yield repo, report, blurred
    repo.close()


def _names(repo: Repository, ids: list[str]) -> set[str]:
    by_id = {i.id: i.name for i in repo.images.all()}
    return {by_id[i] for i in ids}


def test_every_metric_has_a_documented_rule() -> None:
    from quantscope.quality import METRICS

    assert {flag_rule(m) for m in METRICS} | {"unreadable", "note"} == set(RULES)
    assert flag_rule("saturation_pct_at_dtype_max") == "saturation"
    assert QCFlag.error("disk on fire").rule == "unreadable"
    assert QCFlag.note("looks odd").rule == "note"


def test_the_sentence_is_rendered_from_the_record() -> None:
    flag = QCFlag("snr", "fail", "limit", 4.2, 5.0, channel="DAPI", channel_index=0)
    assert (
        describe_flag(flag)
        == flag.message
        == ("ch DAPI: snr = 4.2 is below the fail limit 5: low signal-to-noise ratio")
    )
    assert flag.direction == "below" and flag.severity == "fail" and flag.rule == "snr"
    outlier = QCFlag("focus_plls", "warn", "outlier", -3.4, zscore=-5.1, median=-1.8, peers=48)
    assert outlier.message == (
        "focus_plls = -3.4 is an outlier below its group: robust z = -5.1 (median -1.8 of 48 "
        "images): blurrier than its peers"
    )
    assert QCFlag.error("no such file").message == "quality could not be measured: no such file"
    data = json.loads(json.dumps(outlier.to_dict()))
    assert data["rule"] == "focus" and data["direction"] == "below" and data["peers"] == 48


def test_qc_stores_flag_records(flagged) -> None:
    repo, report, blurred = flagged
    flags = repo.quality.flags()
    by_name = {i.name: i.id for i in repo.images.all()}
    assert set(_names(repo, list(flags))) == blurred | {SATURATED}
    saturated = flags[by_name[SATURATED]]
    limit = next(f for f in saturated if f.metric == "saturation_pct_at_dtype_max")
    assert (limit.rule, limit.kind, limit.level, limit.direction) == (
        "saturation",
        "limit",
        "fail",
        "above",
    )
    assert limit.channel == "DAPI" and limit.channel_index == 0 and limit.bound == 1.0
    assert 3.0 < (limit.value or 0) < 4.0
    for name in blurred:
        focus = [f for f in flags[by_name[name]] if f.rule == "focus" and f.kind == "outlier"]
        assert focus and all(f.direction == "below" and (f.zscore or 0) < -3.5 for f in focus)
        assert all(f.median is not None and f.peers == 12 for f in focus)
    # the run report, the catalog and the stored sentences say the same
    statuses = repo.quality.status()
    for image_id, result in report.images.items():
        assert list(result.flags) == flags.get(image_id, [])
        assert statuses[image_id][1] == [f.message for f in result.flags] == list(result.reasons)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('qc.flag == "saturation"', "saturated"),
        ('qc.flag.rule == "saturation"', "saturated"),
        ('qc.flag == "focus"', "blurred"),
        (
            'qc.flag == "focus" and qc.flag.kind == "outlier" and qc.flag.channel == "DAPI"',
            "blurred",
        ),
        ('qc.flag == "saturation" and qc.flag.kind == "outlier"', ""),  # on one flag
        ('qc.flag == "saturation" and qc.flag.direction == "above"', "saturated"),
        ('qc.flag in ("saturation", "focus") and qc.flag.severity == "fail"', "both"),
        ('qc.flag.metric == "saturation_pct_at_dtype_max" and qc.flag.bound == 1', "saturated"),
        ('qc.flags == "focus" and qc.flags == "saturation"', ""),
        ('qc.flags == "focus" or qc.flags == "saturation"', "both"),
        ('qc.flag like "sat%"', "saturated"),
        ("exists qc.flag", "both"),
        ("qc.flag != null", "both"),
        ("not exists qc.flag", "rest"),
        ("qc.flags == null", "rest"),
        ('not qc.flag == "focus" and qc.status == "fail"', "saturated"),
    ],
)
def test_queries_ask_for_flag_rules(flagged, query: str, expected: str) -> None:
    repo, _, blurred = flagged
    everything = {i.name for i in repo.images.all()}
    want = {
        "saturated": {SATURATED},
        "blurred": blurred,
        "both": blurred | {SATURATED},
        "rest": everything - blurred - {SATURATED},
        "": set(),
    }[expected]
    assert _names(repo, repo.query.find_ids(query)) == want, query


def test_conjoined_rules_of_one_flag_are_refused_with_advice(flagged) -> None:
    repo, _, _ = flagged
    hint = re.escape('qc.flags == "focus" and qc.flags == "saturation"')
    with pytest.raises(InvalidInput, match=hint):
        repo.query.find_ids('qc.flag == "focus" and qc.flag == "saturation"')


def test_flag_columns_and_fields(flagged) -> None:
    repo, _, _ = flagged
    df = repo.query.find(
        'name == "' + SATURATED + '"', columns=["name", "qc.flag", "qc.flag.level"]
    )
    assert df.loc[0, "qc.flag"] == "saturation" and df.loc[0, "qc.flag.level"] == "fail"
    fields = {f["name"]: f for f in repo.query.fields()}
    assert fields["qc.flag"]["kind"] == "qc_flag" and "saturation" in fields["qc.flag"]["examples"]
    assert fields["qc.flag.level"]["aliases"] == ["qc.flag.severity"]


def test_report_reads_the_records(flagged) -> None:
    repo, _, _ = flagged
    data = collect_report_data(repo)
    flags = repo.quality.flags()
    for record in data.images:
        assert list(record.flags) == flags.get(record.id, [])
    rec = next(r for r in data.images if r.name == SATURATED)
    assert ("DAPI", "saturation_pct_at_dtype_max") in _flagged_cells(rec)


def test_report_limits_come_from_the_flags_not_their_sentences() -> None:
    own = QCFlag("snr", "warn", "limit", 30.0, 35.0, channel="DAPI", channel_index=0)
    other = QCFlag("snr", "warn", "limit", 20.0, 36.0, channel="DAPI", channel_index=0)
    merged = QCFlag("focus_plls", "fail", "limit", -5.0, -4.5, channel="R=G=B", channel_index=0)
    note = QCFlag.note("ch DAPI: pct_at_min = 3 is above the fail limit 2: clipped")
    records = [
        ImageQCRecord("a", "a", None, None, None, None, None, ("DAPI",), "warn", (own,), {}),
        ImageQCRecord("b", "b", None, None, None, None, None, ("DAPI",), "warn", (other,), {}),
        ImageQCRecord(
            "c", "c", None, None, None, None, None, ("R", "G", "B"), "fail", (merged,), {}
        ),
        ImageQCRecord("d", "d", None, None, None, None, None, ("DAPI",), "warn", (note,), {}),
    ]
    limits = _metric_limits(records)
    assert limits["snr"]["warn_below"] == 35.0  # the first bound seen replaces the default
    assert limits["snr"]["fail_below"] == 5.0  # defaults stay
    assert limits["focus_plls"]["fail_below"] == -4.5
    assert limits["pct_at_min"]["fail_above"] == 25.0  # a note is text: nothing read from it
    assert _flagged_cells(records[2]) == {("R=G=B", "focus_plls")}
    assert _flagged_cells(records[3]) == set()


def test_run_report_to_dict_is_what_qc_json_prints(flagged, cli: Callable[..., Result]) -> None:
    repo, _, _ = flagged
    result = cli("qc", repo.root, "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    again = run_qc(repo, recompute=False)
    mine: dict[str, Any] = json.loads(json.dumps(again.to_dict()))
    flags = {row["id"]: row.pop("flags") for row in mine["images"]}
    assert {row["id"]: row.pop("flags") for row in printed["images"]} == flags
    for doc in (printed, mine):
        doc.pop("seconds")
    assert mine == printed
    by_id = {r.image_id: r for r in again.images.values()}
    for image_id, records in flags.items():
        assert records == [json.loads(json.dumps(f.to_dict())) for f in by_id[image_id].flags]
        assert [r["message"] for r in records] == list(by_id[image_id].reasons)
    assert "NaN" not in json.dumps(again.to_dict())


def test_migration_0007_turns_old_reasons_into_records(flagged, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    import quantscope.catalog._repository as mod

    repo, _, _ = flagged
    root = tmp_path / "old"
    shutil.copytree(repo.root, root)
    before = repo.quality.flags()
    sentences = repo.quality.status()
    old = Repository.open(root)
    with old.engine.begin() as conn:  # an old catalog: reasons as text only
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(mod.__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        assert "qc_flags" not in sa.inspect(conn).get_table_names()
        reasons = json.dumps(["disk on fire", "quality could not be measured: truncated"])
        image_id = next(k for k, (st, _) in sentences.items() if st == "pass")
        conn.execute(
            sa.text("UPDATE quality_status SET status = 'warn', reasons = :r WHERE image_id = :i"),
            {"r": reasons, "i": image_id},
        )
    old.close()
    with Repository.open(root) as again:  # upgraded on open
        after = again.quality.flags()
        assert set(after) == set(before) | {image_id}
        for key, flags in before.items():
            assert [f.message for f in after[key]] == sentences[key][1]
            for a, b in zip(after[key], flags, strict=True):
                assert (a.rule, a.kind, a.level, a.direction) == (
                    b.rule,
                    b.kind,
                    b.level,
                    b.direction,
                )
                assert (a.metric, a.channel, a.channel_index, a.bound, a.peers) == (
                    b.metric,
                    b.channel,
                    b.channel_index,
                    b.bound,
                    b.peers,
                )
                assert math.isclose(a.value or 0, b.value or 0, rel_tol=1e-3)
        odd = after[image_id]
        assert [(f.kind, f.rule, f.detail) for f in odd] == [
            ("note", "note", "disk on fire"),
            ("error", "unreadable", "truncated"),
        ]
        assert _names(again, again.query.find_ids('qc.flag == "saturation"')) == {SATURATED}


def test_qc_data_does_not_import_collect() -> None:
    """The report's data records and their collection depend one way (no import cycle)."""
    import quantscope.qc._data as data

    tree = ast.parse(Path(data.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    }
    assert not imported & {"_collect", "_run", "_report", "_measure"}, imported
