"""The query language on a real catalog (SQLite and PostgreSQL): ``find``, ``find_ids``,
``fields``; semantics of channels, annotations, QC metrics, dates and missing values."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from _postgres import fresh_database
from _query_data import IMAGES, build, image_id
from quantscope.catalog import Repository
from quantscope.errors import InvalidInput

NAMES = {image_id(n): n for n in IMAGES}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def repo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Repository]:
    with ExitStack() as stack:
        url = None
        if request.param == "postgresql":
            server = request.getfixturevalue("pg_server")
            url = stack.enter_context(fresh_database(server, "qs_q"))
        r = build(tmp_path_factory.mktemp("q") / "repo", url)
        yield r
        r.close()


def found(repo: Repository, query: str) -> str:
    """The matching images as a sorted string of their one-letter names."""
    return "".join(sorted(NAMES[i] for i in repo.query.find_ids(query)))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "abcde"),
        ("   ", "abcde"),
        # image columns, aliases, numbers, NULL handling
        ("objective.na >= 1.3", "ab"),
        ("objective_na >= 1.3", "ab"),
        ("objective.na != 1.4", "ace"),  # no NA recorded (d): not "different from 1.4"
        ("not objective.na == 1.4", "acde"),  # ... but it is in the complement
        ("exists objective.na", "abce"),
        ("not exists objective.na", "d"),
        ("objective.na == null", "d"),
        ("size.x >= 66 and size_x < 68", "cd"),
        ("pixel.size_x_um > 0.25", "cde"),
        ('dtype == "uint16"', "abcde"),
        ('name like "img\\_a%"', "a"),
        ('name like "IMG_%"', "abcde"),  # like ignores case
        ('name not like "%a%"', "bcde"),
        # wells are normalized, plates come from their own table
        ('well in ("a1", "B2")', "abc"),
        ('well == "A01"', "ac"),
        ('plate == "P2"', "cd"),
        ('plate != "P2"', "ab"),  # e has no plate
        ("exists plate", "abcd"),
        ("plate == null", "e"),
        ('plate like "p%"', "abcd"),
        ("plate.row == 1", "b"),
        # dates: a date literal is the whole day (UTC)
        ("acquired == 2024-01-01", "ab"),
        ("acquired != 2024-01-01", "ce"),
        ("acquired <= 2024-01-01", "abc"),
        ("acquired < 2024-01-01", "c"),
        ("acquired > 2024-01-01", "e"),
        ("acquired >= 2024-01-01", "abe"),
        ("acquired >= 2024-01-01T12:00", "be"),
        ("acquired >= 2024-01-01T12:00:00+02:00", "be"),  # 10:00 UTC
        ("acquired >= 2024-01-01T10:00:00+02:00", "abe"),  # 08:00 UTC
        ("acquired in (2023-12-31, 2024-06-01)", "ce"),
        ('acquired == "2024-01-01"', "ab"),
        # channels: one channel satisfies every channel predicate of a conjunction
        ('channel.name == "DAPI"', "abd"),
        ('channel.name == "DAPI" and channel.exposure_time_s > 0.1', "bd"),
        ('channel.name == "DAPI" and channel.exposure_s > 0.1', "bd"),
        ('(channel.name == "DAPI" and objective.na > 1) and channel.exposure_time_s > 0.1', "b"),
        (
            'channel.name == "GFP" and (channel.fluor == "EGFP" or channel.exposure_time_s < 0.1)',
            "abc",
        ),
        ('channel.name == "DAPI" and channel.fluor == null', "ad"),
        ('not channel.name == "DAPI"', "ce"),  # no DAPI channel
        ('channel.name != "DAPI"', "abce"),  # a channel other than DAPI
        ('channel.name == "DAPI" and not channel.fluor == "Hoechst"', "ad"),
        ('channel.name in ("Brightfield", "GFP") or objective.na > 1.35', "abce"),
        ("channel.index == 1", "ab"),
        # channels: the names, each predicate on its own (images with several channels)
        ('channels == "DAPI" and channels == "GFP"', "ab"),
        ('channels == "DAPI" and not channels == "GFP"', "d"),
        ('channels in ("Brightfield", "nothing")', "e"),
        ('channels like "%a%"', "abd"),
        ('channel.name == "DAPI" and channel.name == "DAPI"', "abd"),
        ("exists channel.fluor", "abc"),
        # source files
        ('source.format == "czi"', "cd"),
        ('source.format == "czi" and source.path like "%img_c%"', "c"),
        ("source.size > 1002", "de"),
        # annotations: tags, keys, numbers, CURIEs, plate annotations reach their images
        ('tag == "control"', "ac"),
        ('not tag == "control"', "bde"),
        ('tag in ("batch1", "treated")', "ab"),
        ('tag == "control" and tag == "batch1"', "a"),
        ('tag like "%trol"', "ac"),
        ("exists tag", "abc"),
        ('biosample.organism == "Homo sapiens"', "cd"),
        ('biosample.organism == "NCBITaxon:9606"', "cd"),
        ('biosample.organism == "NCBITaxon:10090"', "e"),
        ("biosample.organism == null", "ab"),
        ('study.title == "Screen A"', "ab"),  # only on a plate
        ('study.title like "screen%" and tag == "control"', "a"),
        ("not exists study.title", "cde"),
        ("exists biosample.organism", "cde"),
        ("treatment.concentration >= 5", "ab"),
        ("treatment.concentration < 5", "c"),
        ("treatment.concentration in (0.5, 50)", "bc"),
        ('annotation.treatment.concentration == "50"', "b"),
        ('annotation.`no such key` == "x"', ""),
        # quality control
        ('qc.status == "fail"', "b"),
        ('qc.status in ("pass", "warn")', "ac"),
        ("qc.status == null", "de"),
        ("not exists qc.status", "de"),
        ('qc.reasons like "%focus%"', "b"),
        ('qc.flag == "intensity"', "b"),  # saturation_pct is no metric of the registry
        ('qc.flag == "note" and qc.flag.level == "fail"', "b"),
        ('qc.flag.metric == "saturation_pct" and qc.flag.channel == "DAPI"', "b"),
        ('qc.flag.metric == "saturation_pct" and qc.flag.channel == "GFP"', ""),
        ('qc.flags == "note" and qc.flags == "intensity"', "b"),
        ("qc.flag.bound >= 1 and qc.flag.value > 1", "b"),
        ("not exists qc.flag", "acde"),
        ("qc.focus_plls < -2", "ab"),
        ("qc.focus_plls[DAPI] < -2", "a"),
        ('qc.focus_plls["GFP"] < -2', "b"),
        ("qc.focus_plls[1] < -2", "b"),
        ('channel.name == "DAPI" and qc.focus_plls < -2', "a"),
        ("qc.focus_plls < -2 and qc.saturation_pct > 1", ""),  # never on the same channel
        ("qc.focus_plls == null", "c"),  # an undefined metric (NaN)
        ("exists qc.saturation_pct", "ab"),
        # boolean structure
        ('instrument.manufacturer == "Zeiss" or tag == "treated"', "bcd"),
        ('not (plate == "P1" or plate == "P2")', "e"),
        ("not not objective.na > 1", "ab"),
        (
            'channel.name == "DAPI" and objective.na >= 1.3 and well in ("A01", "B02") '
            'and tag == "control" and acquired >= 2024-01-01',
            "a",
        ),
    ],
)
def test_query_matches(repo: Repository, query: str, expected: str) -> None:
    assert found(repo, query) == expected


def test_find_ids_order_and_limit(repo: Repository) -> None:
    ids = repo.query.find_ids("")
    # plate P1 then P2 by position, then the image without a plate
    assert [NAMES[i] for i in ids] == ["a", "b", "c", "d", "e"]
    assert len(repo.query.find_ids("", limit=2)) == 2


def test_find_default_columns(repo: Repository) -> None:
    df = repo.query.find('channel.name == "DAPI"')
    assert list(df["name"]) == ["img_a.tif", "img_b.tif", "img_d.tif"]
    assert list(df["plate"]) == ["P1", "P1", "P2"]
    assert list(df["well"]) == ["A01", "B02", "A02"]
    assert list(df["channels"]) == ["DAPI, GFP", "DAPI, GFP", "DAPI"]
    assert df["objective.na"].tolist()[:2] == [1.3, 1.4]
    assert str(df["acquired"].dt.tz) == "UTC"
    assert df["acquired"].iloc[0].isoformat() == "2024-01-01T09:00:00+00:00"
    assert df["size.x"].tolist() == [64, 65, 67]


def test_find_chosen_columns(repo: Repository) -> None:
    df = repo.query.find(
        'tag == "control"',
        [
            "name",
            "tag",
            "biosample.organism",
            "qc.status",
            "qc.focus_plls[DAPI]",
            "qc.focus_plls[0]",
            "channel.fluor",
            "source.format",
        ],
    )
    assert df.columns[0] == "name"
    rows = df.to_dict("records")
    assert rows[0]["name"] == "img_a.tif"
    assert rows[0]["tag"] == "batch1, control"
    assert rows[0]["biosample.organism"] is None
    assert rows[0]["qc.status"] == "pass"
    assert rows[0]["qc.focus_plls[DAPI]"] == -3.0
    assert rows[0]["channel.fluor"] == "EGFP"
    assert rows[1]["biosample.organism"] == "Homo sapiens"  # from the plate
    assert rows[1]["qc.status"] == "warn"
    assert math.isnan(rows[1]["qc.focus_plls[0]"])  # undefined metric (NaN stored as NULL)
    assert rows[1]["source.format"] == "czi"


def test_find_no_match_is_an_empty_frame_with_the_columns(repo: Repository) -> None:
    df = repo.query.find('tag == "nothing"', ["id", "plate", "channels", "tag"])
    assert df.empty
    assert list(df.columns) == ["id", "plate", "channels", "tag"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["objetive.na"], "did you mean 'objective.na'"),
        (["qc.focus_plls"], "one value per channel"),
        (["a b"], "not a field name"),
        ([], "columns is empty"),
    ],
)
def test_find_bad_columns(repo: Repository, columns: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        repo.query.find("", columns)


@pytest.mark.parametrize(
    ("query", "message", "caret_at"),
    [
        ("objetive.na > 1", "unknown field 'objetive.na'; did you mean 'objective.na'", 0),
        ("tags == 'x'", "did you mean 'tag'", 0),
        (
            "qc.focus_pls < 1",
            "unknown quality metric 'qc.focus_pls'; did you mean 'qc.focus_plls'",
            0,
        ),
        ("biosample.organsim == 'x'", "did you mean 'biosample.organism'", 0),
        ('objective.na > "x"', "'objective.na' is a number, but \"x\" is a string", 15),
        ("well == 1", "write it in quotes", 8),
        ("acquired > 5", "'acquired' is a date-time, but 5 is a number", 11),
        ('acquired > "soon"', "not a date", 11),
        ("objective.na like '1%'", "like compares text", 18),
        ("objective.na < null", "null can only be compared with == or !=", 15),
        ("well in ('A01', null)", "null cannot be in a list", 8),
        ("well[1] == 'A01'", "takes no [qualifier]", 0),
        ("size.x == true", "is a number, but true is a boolean", 10),
        # closed vocabularies: a misspelt value is an error, not an empty result
        ('qc.flag == "saturaton"', "not \"saturaton\"; did you mean 'saturation'?", 11),
        ('qc.flags == "Focus"', "did you mean 'focus'?", 12),
        ('qc.status in ("pass", "Warn")', "'qc.status' is one of 'pass', 'warn', 'fail'", 13),
        ('qc.flag.level == "error"', "'qc.flag.level' is one of 'warn', 'fail'", 17),
        ('qc.flag.severity != "high"', "'qc.flag.level' is one of 'warn', 'fail'", 20),
        ('qc.flag.kind == "limits"', "did you mean 'limit'?", 16),
        ('qc.flag.direction == "up"', "is one of 'above', 'below'", 21),
        (
            'channel.name == "DAPI" and tag == "x" and channel.name == "GFP"',
            'channel.name == "DAPI" and channel.name == "GFP" can never hold on one channel: '
            "channel predicates joined by `and` describe the same channel; for images that "
            'have both, write channels == "DAPI" and channels == "GFP"',
            42,
        ),
    ],
)
def test_semantic_errors_name_the_problem_and_point_at_it(
    repo: Repository, query: str, message: str, caret_at: int
) -> None:
    with pytest.raises(InvalidInput) as err:
        repo.query.find_ids(query)
    text = str(err.value)
    assert message in text
    line, mark = text.splitlines()[-2:]
    assert line == "  " + query
    assert mark == "  " + " " * caret_at + "^"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("qc.focus_plls[Cy5] < 0", "no image has a channel named 'Cy5' (channels: "),
        ("qc.focus_plls[dapi] < 0", "did you mean 'DAPI'?"),
        ("qc.focus_plls[7] < 0", "no image has a measured channel 7"),
    ],
)
def test_a_channel_no_image_has_is_an_error_not_an_empty_result(
    repo: Repository, query: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        repo.query.find_ids(query)


def test_values_are_bound_parameters_not_sql(repo: Repository) -> None:
    evil = "x'; DROP TABLE images; --"
    assert repo.query.find_ids(f'name == "{evil}"') == []
    assert repo.query.find_ids(f'tag == "{evil}"') == []
    assert len(repo.query.find_ids("")) == 5


def test_fields_lists_every_kind_with_types_and_examples(repo: Repository) -> None:
    fields = {f["name"]: f for f in repo.query.fields()}
    assert fields["objective.na"]["type"] == "number"
    assert fields["objective.na"]["aliases"] == ["objective_na"]
    assert 1.3 in fields["objective.na"]["examples"]
    assert fields["acquired"]["type"] == "datetime"
    assert fields["channel.name"]["kind"] == "channel"
    assert set(fields["channel.name"]["examples"]) <= {"DAPI", "GFP", "Brightfield"}
    assert fields["channel.excitation_wavelength_nm"]["unit"] == "nm"
    assert fields["pixel.size_x_um"]["unit"] == "µm"
    assert fields["plate"]["examples"] == ["P1", "P2"]
    assert fields["tag"]["examples"] == ["batch1", "control", "treated"]
    assert fields["biosample.organism"]["kind"] == "annotation"
    assert fields["treatment.concentration"]["type"] == "number"
    assert fields["treatment.concentration"]["unit"] == "µM"
    assert fields["qc.focus_plls"]["kind"] == "qc"
    assert fields["qc.focus_plls"]["examples"] == [-3.0, -1.0]
    assert fields["qc.status"]["examples"] == ["fail", "pass", "warn"]
    assert "plate_id" not in fields  # internal keys are hidden


def test_every_listed_field_is_queryable(repo: Repository) -> None:
    for f in repo.query.fields(examples=0):
        name = f["name"]
        field = name if all(p.isidentifier() for p in name.split(".")) else f"`{name}`"
        repo.query.find_ids(f"exists {field}")  # no error


def test_new_schema_columns_become_fields_without_code() -> None:
    from quantscope.catalog import _schema as S
    from quantscope.catalog._query import static_fields

    fields, aliases = static_fields()
    for col in S.images.columns:
        if col.name != "plate_id":
            assert col.name in fields or col.name in aliases, col.name
    for col in S.channels.columns:
        if col.name not in ("image_id", "idx"):
            assert f"channel.{col.name}" in fields


def test_empty_catalog(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r") as repo:
        assert repo.query.find_ids('channel.name == "DAPI"') == []
        assert repo.query.find("").empty
        with pytest.raises(InvalidInput, match="no quality metrics are recorded yet"):
            repo.query.find_ids("qc.focus_plls < 1")
        names = {f["name"] for f in repo.query.fields()}
        assert {"objective.na", "channel.name", "tag", "qc.status"} <= names


@pytest.mark.parametrize(
    "query",
    [
        'channel.name == "DAPI" and channel.exposure_time_s > 0.1',
        'channel.name != "DAPI"',
        'not channel.name == "DAPI"',
        'tag == "control"',
        "not exists tag",
        'biosample.organism == "Homo sapiens"',
        "biosample.organism == null",
        "treatment.concentration >= 5",
        "qc.focus_plls < -2",
        "qc.focus_plls[DAPI] < -2",
        'qc.status == "fail" or qc.status == null',
        'source.format == "czi"',
        'channel.name == "GFP" and (tag == "control" or qc.focus_plls < -2)',
        'study.title == "Screen A"',
    ],
)
def test_anchored_plans_give_the_same_images(repo: Repository, query: str) -> None:
    """With an indexed equality in the conjunction, related rows are tested image by image
    (correlated EXISTS); without, through one list of ids. Both must agree."""
    alone = set(found(repo, query))
    for anchor, members in (
        ('well in ("A01", "B02", "A02")', set("abcd")),
        ('plate in ("P1", "P2")', set("abcd")),
        ('plate == "P1"', set("ab")),
    ):
        both = found(repo, f"{anchor} and ({query})")
        assert set(both) == alone & members, anchor


def test_indexed_columns_come_from_the_schema() -> None:
    from quantscope.catalog._query._compile import _indexed

    assert {"id", "well", "plate_id"} <= _indexed()
    assert "objective_na" not in _indexed()


@pytest.mark.parametrize(
    "query",
    [
        'name == "ünïcødé ✓ 🧫"',
        'name == "' + "x" * 5000 + '"',
        'name like "%\\\\%%"',  # a literal backslash inside
        'name like "100\\%"',  # a literal %
        "size.x == 99999999999999999999999",  # beyond 64-bit integers
        "size.x > -0.0",
        "objective.na < 1e-320",
        "objective.na < 1.7e308",
        "acquired > 1000-01-01",
        "acquired < 9999-12-31T23:59:59.999999",
        'tag in ("a", 1, 2.5, true, 2024-01-01)',
        'biosample.organism == ""',
        "treatment.concentration == -99999999999999999999999",
        'well == "not a well"',
    ],
)
def test_odd_literals_run_on_every_backend(repo: Repository, query: str) -> None:
    assert isinstance(repo.query.find_ids(query), list)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('name == "a\x00b"', "NUL character at column 11"),
        ('name like "abc\\\\"', "cannot end with a lone backslash"),
        ('tag like "x\\\\"', "cannot end with a lone backslash"),
    ],
)
def test_literals_no_backend_accepts_are_refused(
    repo: Repository, query: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        repo.query.find_ids(query)
