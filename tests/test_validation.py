"""Validation of observations (docs/interface.md §4): every bad value named, good ones kept. Pure, no database."""

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.distinct import Distinct
from ingest.pipeline import now_us
from ingest.timestamps import parse_rfc3339
from ingest.validate import frame_from_items, validate_frame

OPERATORS = {"cmcc", "ctcc", "admin"}
TS = "2023-06-30T00:00:00+08:00"


def check(items, *, operator="cmcc", metric=None):
    frame, rejections = frame_from_items(items, operator=operator, metric=metric)
    valid, found = validate_frame(frame, known_operators=OPERATORS, now_us=now_us())
    return valid, {r.index: (r.field, r.reason) for r in rejections + found}


def item(**kw):
    return {"ts": TS, "region": "360100", "metric": "bs5g_total", "value": 10, **kw}


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        (item(value=float("nan")), "value", "NaN"),
        (item(value=float("inf")), "value", "infinite"),
        (item(value=-1), "value", "negative"),
        (item(value=2.5), "value", "whole number"),
        (item(value="12"), "value", "JSON number"),
        (item(value=True), "value", "JSON number"),
        (item(region="999999"), "region", "unknown region"),
        (item(region="360199"), "region", "nearest valid level is 360100"),
        (item(metric="bs6g_total"), "metric", "unknown metric"),
        (item(metric="population"), "metric", "administration only"),
        (item(ts="2023-06-30T00:00:00"), "ts", "no UTC offset"),
        (item(ts="2999-01-01T00:00:00Z"), "ts", "future"),
        (item(metric="dc_energy_it_kwh", value=1.0), "entity", "needs an entity"),
        (item(entity="bad entity!"), "entity", "must match"),
        (item(operator="ctcc"), "operator", "does not match"),
        (item(value=50_000_000), "value", "plausible maximum"),
        ({"ts": TS, "value": 1, "metric": "bs5g_total"}, "region", "missing"),
        ([1, 2], "", "expected an object"),
    ],
)
def test_each_bad_observation_is_rejected_with_its_field_and_reason(bad, field, words):
    good = item(region="360200")
    valid, rejected = check([good, bad])
    assert list(valid["region"]) == [360200]  # the good neighbour survives
    assert rejected[1][0] == field
    assert words in rejected[1][1]


def test_unknown_operator_is_rejected():
    valid, rejected = check([item()], operator="nobody")
    assert valid.empty
    assert "unknown operator 'nobody'" in rejected[0][1]


def test_the_administration_may_enter_population_at_province_level():
    valid, rejected = check([item(metric="population", region="360000", value=45_279_800)], operator="admin")
    assert rejected == {}
    assert valid.iloc[0]["region"] == 360000


def test_valid_rows_are_normalised_to_utc_microseconds_and_integer_regions():
    valid, rejected = check([item(value=12345, entity="")])
    assert rejected == {}
    row = valid.iloc[0]
    assert row["ts_us"] == parse_rfc3339("2023-06-29T16:00:00Z")
    assert row["region"] == 360100 and row["value"] == 12345.0 and row["entity"] == ""


def test_csv_strings_are_checked_as_numbers():
    frame = pd.DataFrame(
        {
            "metric": ["bs5g_total"] * 4,
            "region": ["360100"] * 4,
            "operator": ["cmcc"] * 4,
            "entity": [""] * 4,
            "ts": [TS] * 4,
            "value": ["12", "abc", "", "nan"],
            "location": ["l2", "l3", "l4", "l5"],
            "raw": ["r"] * 4,
            "index": [None] * 4,
            "line": [2, 3, 4, 5],
        }
    )
    valid, found = validate_frame(frame, known_operators=OPERATORS, now_us=now_us())
    assert list(valid["value"]) == [12.0]
    assert [(r.line, r.reason) for r in found] == [
        (3, "value 'abc' is not a number"),
        (4, "value is missing"),
        (5, "value is NaN; it must be a finite number"),
    ]


def test_figures_at_every_level_of_the_national_list_are_accepted() -> None:
    # the nation, a province, a city and a county (360111 青山湖区, Nanchang)
    items = [item(region=r) for r in ("100000", "360000", "440000", "360100", "360111")]
    valid, rejected = check(items)
    assert rejected == {} and list(valid["region"]) == [100000, 360000, 440000, 360100, 360111]


def test_an_unknown_region_names_the_nearest_valid_level() -> None:
    _, rejected = check([item(region="360199"), item(region="369900"), item(region="990000")])
    assert rejected[0] == ("region", rejected[0][1]) and "nearest valid level is 360100 南昌市" in rejected[0][1]
    assert "nearest valid level is 360000 江西省 (province)" in rejected[1][1]
    assert "no such province" in rejected[2][1]


def test_only_the_administration_writes_the_all_operator() -> None:
    # an operator's credentials cannot name `all` (the operator comes from the sender, not the payload)
    _, rejected = check([item(operator="all")], operator="cmcc")
    assert rejected[0][0] == "operator" and "does not match" in rejected[0][1]
    frame, _ = frame_from_items([item(operator="all")], operator="admin", operator_may_vary=True)
    valid, found = validate_frame(frame, known_operators=OPERATORS | {"all"}, now_us=now_us())
    assert found == [] and list(valid["operator"]) == ["all"]


def test_a_year_to_date_figure_that_falls_within_its_year_is_rejected_as_a_probable_error() -> None:
    ytd = [
        item(metric="bs5g_built_ytd", ts="2023-06-30T00:00:00+08:00", value=9000),
        item(metric="bs5g_built_ytd", ts="2023-09-30T00:00:00+08:00", value=8000),  # falls: rejected
        item(metric="bs5g_built_ytd", ts="2023-12-31T00:00:00+08:00", value=12000),
        item(metric="bs5g_built_ytd", ts="2024-02-29T00:00:00+08:00", value=1000),  # a new year starts low
    ]
    valid, rejected = check(ytd)
    assert set(rejected) == {1}
    assert rejected[1][0] == "value" and "below 9000 reported for 2023-06-30" in rejected[1][1]
    assert "probable error" in rejected[1][1]
    assert sorted(valid["value"]) == [1000, 9000, 12000]


CELLS = st.lists(st.one_of(st.sampled_from(["cmcc", " cmcc ", "", "dc-a", "360100"]), st.text(max_size=4),
                           st.none(), st.just(math.nan)), max_size=40)  # fmt: skip


@given(CELLS)
def test_a_column_by_its_distinct_values_gives_what_each_cell_gives(cells):
    """ingest.distinct: a check run once per distinct value, spread over the rows, equals the check of each
    row; missing cells (None, NaN) are values too."""
    column = Distinct.of(pd.Series(cells, dtype=object))
    assert len(column) == len(cells)
    assert [c is v or c == v for c, v in zip(column.values().tolist(), cells, strict=True)] == [True] * len(cells)
    text = lambda c: c.strip() if isinstance(c, str) else repr(c)  # noqa: E731
    assert column.map(text).tolist() == [text(c) for c in cells]
    assert column.converted(text).values().tolist() == [text(c) for c in cells]
    allowed = {"cmcc", ""}
    assert column.isin(allowed).tolist() == [isinstance(c, str) and c in allowed for c in cells]
