"""The query parser: grammar, literals, error messages, and property tests (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantscope.catalog._query import (
    And,
    Compare,
    Exists,
    Field,
    In,
    Like,
    Not,
    Or,
    QuerySyntaxError,
    parse,
    to_text,
)
from quantscope.catalog._query._ast import KEYWORDS
from quantscope.errors import InvalidInput


def F(name: str, qualifier: str | int | None = None) -> Field:
    return Field(tuple(name.split(".")), qualifier)


# ----------------------------------------------------------------------------- examples
@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ('well == "A01"', Compare(F("well"), "==", "A01")),
        ("well = 'A01'", Compare(F("well"), "==", "A01")),
        ("objective.na >= 1.3", Compare(F("objective.na"), ">=", 1.3)),
        ("x < -2.5e3", Compare(F("x"), "<", -2500.0)),
        ("x != 7", Compare(F("x"), "!=", 7)),
        ("x > .5", Compare(F("x"), ">", 0.5)),
        ("x == 1e3", Compare(F("x"), "==", 1000.0)),
        ("b == TRUE", Compare(F("b"), "==", True)),
        ("b == false", Compare(F("b"), "==", False)),
        ("b == Null", Compare(F("b"), "==", None)),
        ("acquired >= 2024-01-01", Compare(F("acquired"), ">=", date(2024, 1, 1))),
        (
            "acquired < 2024-01-01T10:30",
            Compare(F("acquired"), "<", datetime(2024, 1, 1, 10, 30)),
        ),
        (
            "acquired < 2024-01-01 10:30:00+02:00",
            Compare(F("acquired"), "<", datetime(2024, 1, 1, 8, 30, tzinfo=UTC)),
        ),
        (
            "acquired < 2024-01-01T10:30:00.5Z",
            Compare(F("acquired"), "<", datetime(2024, 1, 1, 10, 30, 0, 500000, tzinfo=UTC)),
        ),
        ('well in ("A01", "B02",)', In(F("well"), ("A01", "B02"))),
        ("x NOT IN (1, 2.5)", In(F("x"), (1, 2.5), negated=True)),
        ('name like "%.tif"', Like(F("name"), "%.tif")),
        ('name not like "a\\_%"', Like(F("name"), "a\\_%", negated=True)),
        ("exists objective.na", Exists(F("objective.na"))),
        ("not exists objective.na", Not(Exists(F("objective.na")))),
        ("qc.focus_plls[DAPI] < -2.5", Compare(F("qc.focus_plls", "DAPI"), "<", -2.5)),
        ('qc.focus_plls["Alexa 488"] < 0', Compare(F("qc.focus_plls", "Alexa 488"), "<", 0)),
        ("qc.focus_plls[1] < 0", Compare(F("qc.focus_plls", 1), "<", 0)),
        ("`my key`.`in` == 1", Compare(Field(("my key", "in")), "==", 1)),
        ("android == 1", Compare(F("android"), "==", 1)),  # a keyword prefix is a name
        ('s == "say \\"hi\\" \\\\ \'x\'"', Compare(F("s"), "==", "say \"hi\" \\ 'x'")),
        ("s == 'it\\'s'", Compare(F("s"), "==", "it's")),
        (
            "a == 1 and b == 2 or c == 3",
            Or(
                (
                    And((Compare(F("a"), "==", 1), Compare(F("b"), "==", 2))),
                    Compare(F("c"), "==", 3),
                )
            ),
        ),
        (
            "a == 1 and (b == 2 or c == 3)",
            And(
                (Compare(F("a"), "==", 1), Or((Compare(F("b"), "==", 2), Compare(F("c"), "==", 3))))
            ),
        ),
        ("not a == 1 and b == 2", And((Not(Compare(F("a"), "==", 1)), Compare(F("b"), "==", 2)))),
        ("not (a == 1 and b == 2)", Not(And((Compare(F("a"), "==", 1), Compare(F("b"), "==", 2))))),
        ("a==1AND b==2", And((Compare(F("a"), "==", 1), Compare(F("b"), "==", 2)))),
        ("\n a == 1 \t", Compare(F("a"), "==", 1)),
    ],
)
def test_parse_examples(text: str, tree: Any) -> None:
    assert parse(text) == tree


def test_empty_query_is_none() -> None:
    assert parse("") is None
    assert parse(" \n\t") is None


@pytest.mark.parametrize(
    ("text", "message", "caret_at"),
    [
        ("well ==", "the query ends too early at column 8; expected", 7),
        ('well == == "A01"', "unexpected '==' at column 9; expected", 8),
        ('(well == "A01"', 'expected ")"', 14),
        ('well == "A01', "a string that is never closed?", 8),
        ("well in 'A01'", 'expected "("', 8),
        ("well ! 'A01'", "unexpected character '!'", 5),
        ("and == 1", "'and' at column 1 is a keyword", 0),
        ("x == 2024-13-01", "2024-13-01 is not a valid date", 5),
        ("x == 2024-01-01T25:00", "not a valid date-time", 5),
        ("x > 1e999", "number 1e999 is out of range", 4),
        ("x == 1 y == 2", "unexpected 'y' at column 8", 7),
        ("x like 5", "expected a string", 7),
        ("exists", "the query ends too early", 6),
        ("`x == 1", "quoted field", 0),
    ],
)
def test_syntax_errors_show_a_caret_and_the_expected_tokens(
    text: str, message: str, caret_at: int
) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse(text)
    assert isinstance(err.value, InvalidInput)
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert message in msg
    line, mark = msg.splitlines()[-2:]
    assert line == "  " + text
    assert mark == "  " + " " * caret_at + "^"


def test_expected_tokens_are_named_in_words() -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse("well")
    first = str(err.value).splitlines()[0]
    assert 'a comparison (== != < <= > >=), "in", "not" or "like"' in first or all(
        w in first for w in ('"in"', '"like"', "a comparison")
    )


def test_query_must_be_text() -> None:
    with pytest.raises(InvalidInput, match="a query is text"):
        parse(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- property tests
# any text but NUL (refused by the parser: PostgreSQL cannot store it)
_chars = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_segment = st.one_of(
    _name,
    st.sampled_from([*sorted(KEYWORDS), "And", "NULL"]),
    st.text(
        st.characters(blacklist_characters="`\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=8,
    ),
)
_field = st.builds(
    Field,
    st.lists(_segment, min_size=1, max_size=3).map(tuple),
    st.one_of(st.none(), st.integers(-3, 99), st.text(_chars, max_size=6)),
)
_value = st.one_of(
    st.text(_chars, max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.dates(min_value=date(1000, 1, 1)),
    st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.sampled_from([None, UTC])),
)
_leaf = st.one_of(
    st.builds(Compare, _field, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _value),
    st.builds(In, _field, st.lists(_value, min_size=1, max_size=4).map(tuple), st.booleans()),
    st.builds(Like, _field, st.text(_chars, max_size=10), st.booleans()),
    st.builds(Exists, _field),
)
_tree = st.recursive(
    _leaf,
    lambda sub: st.one_of(
        st.builds(Not, sub),
        st.builds(And, st.lists(sub, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(sub, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=8,
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(_tree)
def test_printed_trees_parse_back_to_the_same_tree(tree: Any) -> None:
    assert parse(to_text(tree)) == tree


_soup = st.lists(
    st.sampled_from(
        [
            "a",
            "b.c",
            "==",
            "!=",
            "<",
            ">=",
            "=",
            "and",
            "or",
            "not",
            "in",
            "like",
            "exists",
            "(",
            ")",
            "[",
            "]",
            ",",
            ".",
            '"x"',
            "'y'",
            "1",
            "-2.5",
            "2024-01-01",
            "true",
            "null",
            "`q`",
            '"',
            "'",
            "`",
            "!",
            "\\",
            "1e999",
            "2024-02-30",
        ]
    ),
    max_size=12,
).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), _soup))
def test_any_text_parses_or_raises_invalid_input(text: str) -> None:
    try:
        parse(text)
    except InvalidInput as e:
        assert str(e).startswith("invalid query:")


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from _query_data import build

    repo = build(Path(tmp_path_factory.mktemp("qp")) / "r")
    yield repo
    repo.close()


_known_field = st.sampled_from(
    [
        "well",
        "objective.na",
        "acquired",
        "size.x",
        "plate",
        "channel.name",
        "channel.exposure_time_s",
        "source.path",
        "tag",
        "biosample.organism",
        "treatment.concentration",
        "qc.status",
        "qc.focus_plls",
        "annotation.x",
        "nope",
    ]
).map(lambda n: Field(tuple(n.split("."))))
_known_leaf = st.one_of(
    st.builds(Compare, _known_field, st.sampled_from(["==", "!=", "<", ">="]), _value),
    st.builds(In, _known_field, st.lists(_value, min_size=1, max_size=3).map(tuple), st.booleans()),
    st.builds(Like, _known_field, st.text(_chars, max_size=5), st.booleans()),
    st.builds(Exists, _known_field),
)
_known_tree = st.recursive(
    _known_leaf,
    lambda sub: st.one_of(
        st.builds(Not, sub),
        st.builds(And, st.lists(sub, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(sub, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=5,
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_known_tree)
def test_any_query_on_a_catalog_runs_or_raises_invalid_input(small_repo: Any, tree: Any) -> None:
    """Every well-formed tree, with values of any type on fields of every kind, either runs
    as SQL or is refused with InvalidInput — never a database error."""
    try:
        ids = small_repo.query.find_ids(to_text(tree))
    except InvalidInput as e:
        assert str(e).startswith("invalid query:")
    else:
        assert set(ids) <= set(small_repo.query.find_ids(""))
        # the complement at the image level: not Q matches exactly the others
        others = small_repo.query.find_ids(to_text(Not(tree)))
        assert set(ids).isdisjoint(others)
        assert set(ids) | set(others) == set(small_repo.query.find_ids(""))
