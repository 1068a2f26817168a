"""Property-based checks of the parsers (hypothesis): arbitrary bytes, JSON and CSV rows never raise out
of validation, every rejection's text is storable (UTF-8, no NUL), and valid items beside invalid ones
are always stored."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.csvfile.reader import UnusableInput, detect_layout, iter_raw_frames, read_header, scan_file
from collectors.mqtt.messages import to_pending
from ingest.delivery import Delivery
from ingest.pipeline import IngestPipeline, now_us
from ingest.report import Rejection
from ingest.validate import TimestampRule, frame_from_items, validate_frame

OPERATORS = {"cmcc", "ctcc", "admin"}
ANY_CHAR = st.characters(blacklist_categories=())  # surrogates and control characters included
TEXT = st.text(ANY_CHAR, max_size=30)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.one_of(TEXT, st.just("2024-03-31T00:00:00+08:00"), JSON),
        "region": st.one_of(TEXT, st.sampled_from(["360100", "360200", 360300]), JSON),
        "value": st.one_of(st.integers(), st.floats(), TEXT, JSON),
        "entity": st.one_of(TEXT, JSON),
        "operator": st.one_of(st.sampled_from(["cmcc", "ctcc", ""]), TEXT),
        "metric": st.one_of(st.sampled_from(["bs5g_total", "gigabit_users"]), TEXT),
    },
)


def _storable(rejections: list[Rejection]) -> None:
    for r in rejections:
        for text in (r.location, r.field, r.reason, r.raw):
            text.encode("utf-8")  # no lone surrogate
            assert "\x00" not in text


def _delivery() -> Delivery:
    d = Delivery(lambda: None)  # type: ignore[arg-type, return-value]  # never connects: nothing is stored here
    d.pipeline._operators = set(OPERATORS)
    return d


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=600) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_mqtt_payload_is_read_and_validated_without_raising(payload: bytes) -> None:
    message = to_pending("infra/v1/cmcc/bs5g_total", payload)
    group = _delivery()._prepare_group("cmcc", [message])
    assert group.batch is not None
    _storable(group.batch.rejections)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(ITEM | JSON, max_size=8))
def test_any_json_items_validate_without_raising_and_every_item_is_accounted_for(items: list[Any]) -> None:
    frame, rejections = frame_from_items(items, operator="cmcc", operator_may_vary=False)
    valid, found = validate_frame(frame, known_operators=OPERATORS, now_us=now_us())
    assert len(valid) + len(rejections) + len(found) == len(items)
    _storable(rejections + found)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(st.text(max_size=12), max_size=7), max_size=6))
def test_any_csv_rows_are_read_and_validated_without_raising(tmp_path: Path, rows: list[list[str]]) -> None:
    path = tmp_path / "rows.csv"
    body = "\n".join(",".join(r) for r in rows)
    path.write_text("ts,region,metric,value\n" + body, encoding="utf-8", errors="surrogatepass")
    try:
        scan = scan_file(path)
        layout = detect_layout(read_header(path, scan.encoding))
        for frame, rejections, _ in iter_raw_frames(path, scan, layout, operator="cmcc", operator_column_trusted=True):
            _, found = validate_frame(
                frame, known_operators=OPERATORS, now_us=now_us(), ts_rule=TimestampRule(strict=False)
            )
            _storable(rejections + found)
    except UnusableInput:
        pass  # the whole file refused with a reason (e.g. not text): allowed, and not a crash


_serial = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.lists(ITEM | JSON, min_size=1, max_size=5), good=st.integers(min_value=1, max_value=5))
def test_valid_items_beside_invalid_ones_are_always_stored(conn, bad: list[Any], good: int) -> None:
    base = next(_serial) * 10
    valid = [
        {
            "ts": f"2024-01-01T00:{(base + i) // 60 % 60:02d}:{(base + i) % 60:02d}+08:00",
            "region": "360100",
            "metric": "bs5g_total",
            "value": base + i,
        }
        for i in range(good)
    ]
    items = [x for pair in itertools.zip_longest(valid, bad) for x in pair if x is not None]
    report = IngestPipeline().submit_items(conn, items, source="property", operator="cmcc")
    stored = {
        int(v)
        for (v,) in conn.execute("SELECT value FROM observation WHERE value >= %s AND value < %s", (base, base + 10))
    }
    assert {base + i for i in range(good)} <= stored
    assert report.rejected <= len(bad)
