"""``quantscope find`` and ``quantscope fields`` through the real entry point."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _query_data import build, image_id


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("cliq") / "repo"
    build(root).close()
    yield root


def test_find_table(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, 'tag == "control"')
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    out = r.out  # type: ignore[attr-defined]
    assert "2 images" in out
    assert image_id("a") in out and image_id("c") in out
    assert image_id("b") not in out
    assert "img_a.tif" in out and "DAPI, GFP" in out
    # sized to its content: one dims column, no column that is empty in every row
    header = next(ln for ln in out.splitlines() if " id " in ln)
    assert "dims" in header and "size.t" not in header
    assert len(out.splitlines()[1]) < 200


def test_find_without_matches_prints_no_empty_table(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, 'tag == "nothing-has-this"')
    assert r.code == 0  # type: ignore[attr-defined]
    assert r.out.strip() == "no image matches"  # type: ignore[attr-defined]


def test_find_json_records_with_chosen_columns(qs: Callable[..., object], repo: Path) -> None:
    r = qs(
        "find",
        repo,
        "objective.na > 1",
        "--format",
        "json",
        "-c",
        "name, objective.na,acquired,tag",
    )
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    rows = json.loads(r.out)  # type: ignore[attr-defined]
    assert rows == [
        {
            "name": "img_a.tif",
            "objective.na": 1.3,
            "acquired": "2024-01-01T09:00:00+00:00",
            "tag": "batch1, control",
        },
        {
            "name": "img_b.tif",
            "objective.na": 1.4,
            "acquired": "2024-01-01T23:30:00+00:00",
            "tag": "treated",
        },
    ]


def test_find_json_missing_values_are_null(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, 'plate == "P2"', "-f", "json", "-c", "name,objective.na,acquired")
    rows = json.loads(r.out)  # type: ignore[attr-defined]
    assert rows[1] == {"name": "img_d.tif", "objective.na": None, "acquired": None}


def test_find_csv(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, "", "-f", "csv", "-c", "name,well,tag")
    rows = list(csv.DictReader(io.StringIO(r.out)))  # type: ignore[attr-defined]
    assert [row["name"] for row in rows][:2] == ["img_a.tif", "img_b.tif"]
    assert rows[0]["tag"] == "batch1, control"
    assert len(rows) == 5


def test_find_ids_one_per_line(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, 'channel.name == "DAPI" and channel.exposure_time_s > 0.1', "-f", "ids")
    assert r.out.split() == [image_id("b"), image_id("d")]  # type: ignore[attr-defined]
    r = qs("find", repo, "", "-f", "ids", "--limit", "1")
    assert len(r.out.split()) == 1  # type: ignore[attr-defined]


def test_find_no_match(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, 'tag == "none"', "-f", "json")
    assert r.code == 0 and json.loads(r.out) == []  # type: ignore[attr-defined]


def test_syntax_error_shows_caret_and_exits_1(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, 'well == == "A01"')
    assert r.code == 1  # type: ignore[attr-defined]
    err = r.err.splitlines()  # type: ignore[attr-defined]
    assert err[0].startswith("error: invalid query: unexpected '==' at column 9; expected")
    assert err[1] == '  well == == "A01"'
    assert err[2] == "          ^"
    assert "Traceback" not in r.err  # type: ignore[attr-defined]


def test_unknown_field_suggests(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, "objetive.na > 1", "-f", "ids")
    assert r.code == 1  # type: ignore[attr-defined]
    assert "did you mean 'objective.na'" in r.err  # type: ignore[attr-defined]


def test_unknown_column_and_empty_columns(qs: Callable[..., object], repo: Path) -> None:
    r = qs("find", repo, "", "-c", "nme")
    assert r.code == 1 and "did you mean 'name'" in r.err  # type: ignore[attr-defined]
    r = qs("find", repo, "", "-c", " , ")
    assert r.code == 1 and "name at least one field" in r.err  # type: ignore[attr-defined]


def test_bad_format_and_missing_repo(qs: Callable[..., object], repo: Path, tmp_path: Path) -> None:
    r = qs("find", repo, "", "-f", "xml")
    assert r.code != 0  # type: ignore[attr-defined]
    r = qs("find", tmp_path / "nope", "")
    assert r.code == 1 and "not a quantscope repository" in r.err  # type: ignore[attr-defined]


def test_fields_table_and_json(qs: Callable[..., object], repo: Path) -> None:
    r = qs("fields", repo)
    assert r.code == 0  # type: ignore[attr-defined]
    for word in (
        "objective.na (objective_na)",
        "channel.name",
        "biosample.organism",
        "qc.focus_plls",
        "'Homo sapiens'",
    ):
        assert word in r.out, word  # type: ignore[attr-defined]
    r = qs("fields", repo, "--json")
    fields = {f["name"]: f for f in json.loads(r.out)}  # type: ignore[attr-defined]
    assert fields["tag"]["examples"] == ["batch1", "control", "treated"]
    assert fields["acquired"]["type"] == "datetime"
    assert fields["channel.exposure_time_s"]["unit"] == "s"
