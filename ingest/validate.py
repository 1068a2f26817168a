"""Validation of observations (docs/interface.md §4), column-wise over a batch so one bad item never blocks the rest.

Collectors turn their input into a raw frame (columns metric, region, operator, entity, ts, value,
location, raw); `validate_frame` splits it into valid, normalised rows and rejections with reasons.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from core.planzone import plan_offset_s, plan_tz_name
from ingest.distinct import Distinct
from ingest.report import Rejection
from ingest.text import MAX_ABS_INTEGER, integer_fault, raw_text, text_fault
from ingest.timestamps import TimestampError, parse_csv_ts, parse_rfc3339
from reference.catalogue import METRICS, Kind
from reference.operators import ADMIN_OPERATOR, ENTITY_ID_PATTERN
from reference.regions import REGIONS, unknown_region_message

RAW_COLUMNS = ["metric", "region", "operator", "entity", "ts", "value", "location", "raw", "index", "line"]
VALID_COLUMNS = ["metric", "region", "operator", "entity", "ts_us", "value"]

_INTEGER_METRICS = {m.id for m in METRICS.values() if m.integer}
_ENTITY_METRICS = {m.id for m in METRICS.values() if m.entity_required}
_ADMIN_METRICS = {m.id for m in METRICS.values() if m.admin_only}
_MAX = {m.id: m.max_value for m in METRICS.values()}
_YTD_METRICS = {m.id for m in METRICS.values() if m.kind == Kind.YTD}
_PLAN_OFFSET_US = plan_offset_s() * 1_000_000  # INFRAWATCH_TIMEZONE (one offset all year)
_UNIT = {m.id: m.unit for m in METRICS.values()}


@lru_cache(maxsize=1)
def _region_text() -> frozenset[str]:
    """The codes of the region list in force as text (read on first use, not at import)."""
    return frozenset(str(code) for code in REGIONS)


@dataclass(frozen=True, slots=True)
class TimestampRule:
    """How `ts` text is read: strict RFC 3339 (JSON) or the spreadsheet forms in a time zone (CSV)."""

    strict: bool = True
    #: None: the plans' time zone (INFRAWATCH_TIMEZONE)
    timezone: str | None = None

    def parser(self) -> Callable[[str], int]:
        if self.strict:
            return parse_rfc3339
        tz = self.timezone or plan_tz_name()
        return lambda text: parse_csv_ts(text, tz)


JSON_TS = TimestampRule(strict=True)


def empty_raw_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in RAW_COLUMNS})


def frame_from_items(
    items: Iterable[Any],
    *,
    operator: str,
    metric: str | None = None,
    operator_may_vary: bool = False,
    location_prefix: str = "index",
) -> tuple[pd.DataFrame, list[Rejection]]:
    """JSON items (already decoded) → raw frame, refusing items whose structure or types are wrong.

    `operator` is the trusted operator (MQTT topic or API key). An item's own `operator` field must
    agree with it unless `operator_may_vary` (an admin key naming the operator per item).
    `metric` comes from the MQTT topic; otherwise each item names its metric.
    """
    items = items if isinstance(items, list) else list(items)
    c_metric: list[Any] = []
    c_region: list[str] = []
    c_operator: list[str] = []
    c_entity: list[str] = []
    c_ts: list[str] = []
    c_value: list[float] = []
    c_where: list[str] = []
    c_index: list[int] = []
    rejections: list[Rejection] = []
    for i, item in enumerate(items):
        # Fast path: the common well-formed item, checked by exact types (bool is not int here).
        if type(item) is dict:
            get = item.get
            m, ts, region, value = (
                (metric if metric is not None else get("metric")),
                get("ts"),
                get("region"),
                get("value"),
            )
            entity, item_operator = get("entity", ""), get("operator")
            if (
                type(m) is str
                and (metric is None or "metric" not in item or item["metric"] == metric)
                and type(ts) is str
                and (type(value) is float or (type(value) is int and -MAX_ABS_INTEGER <= value <= MAX_ABS_INTEGER))
                and (type(region) is str or type(region) is int)
                and (type(entity) is str or entity is None)
                and (item_operator is None or item_operator == "" or item_operator == operator or operator_may_vary)
            ):
                c_metric.append(m)
                c_region.append(region if type(region) is str else str(region))
                c_operator.append(item_operator if (operator_may_vary and item_operator) else operator)
                c_entity.append(entity or "")
                c_ts.append(ts)
                c_value.append(float(value))
                c_where.append(f"{location_prefix} {i}")
                c_index.append(i)
                continue
        where = f"{location_prefix} {i}"

        def reject(fld: str, reason: str, item: Any = item, where: str = where, i: int = i) -> None:
            rejections.append(Rejection(where, fld, reason, _raw_text(item), index=i))

        if not isinstance(item, Mapping):
            reject("", f"item is a JSON {type(item).__name__}, expected an object with ts, region, value")
            continue
        item_metric = metric if metric is not None else item.get("metric")
        if metric is not None and "metric" in item and item["metric"] != metric:
            reject("metric", f"metric {item['metric']!r} in the payload does not match the topic's metric {metric!r}")
            continue
        missing = [k for k in ("ts", "region", "value") if k not in item]
        if item_metric is None:
            missing.insert(0, "metric")
        if missing:
            reject(missing[0], f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
            continue
        if not isinstance(item_metric, str):
            reject("metric", f"metric must be a string, got {type(item_metric).__name__}")
            continue
        value = item["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            reject("value", f"value must be a JSON number, got {type(value).__name__} {raw_text(value, 80)}")
            continue
        if isinstance(value, int) and (fault := integer_fault(value)) is not None:
            reject("value", fault)  # checked before float() could overflow
            continue
        ts = item["ts"]
        if not isinstance(ts, str):
            reject("ts", f"ts must be an RFC 3339 string, got {type(ts).__name__}")
            continue
        region = item["region"]
        if isinstance(region, bool) or not isinstance(region, str | int):
            reject("region", f"region must be a six-digit code, got {type(region).__name__}")
            continue
        entity = item.get("entity", "")
        if entity is None:
            entity = ""
        if not isinstance(entity, str):
            reject("entity", f"entity must be a string, got {type(entity).__name__}")
            continue
        item_operator = item.get("operator")
        if item_operator not in (None, "", operator) and not operator_may_vary:
            reject(
                "operator",
                f"operator {item_operator!r} in the payload does not match the sender's operator {operator!r} "
                "(the operator comes from the credentials, not the payload)",
            )
            continue
        op = item_operator if (operator_may_vary and item_operator) else operator
        c_metric.append(item_metric)
        c_region.append(str(region))
        c_operator.append(op)
        c_entity.append(entity)
        c_ts.append(ts)
        c_value.append(float(value))
        c_where.append(where)
        c_index.append(i)
    if c_index:
        frame = pd.DataFrame(
            {
                "metric": np.asarray(c_metric, dtype=object),
                "region": np.asarray(c_region, dtype=object),
                "operator": np.asarray(c_operator, dtype=object),
                "entity": np.asarray(c_entity, dtype=object),
                "ts": np.asarray(c_ts, dtype=object),
                "value": np.asarray(c_value, dtype=np.float64),
                "location": np.asarray(c_where, dtype=object),
                "raw": np.full(len(c_index), None, dtype=object),  # filled lazily for rejected rows only
                "index": np.asarray(c_index, dtype=np.int64),
                "line": np.full(len(c_index), None, dtype=object),
            }
        )
    else:
        frame = empty_raw_frame()
    if c_index:
        # Kept for quarantining rejected items' raw text; pandas deep-copies `attrs` on every operation,
        # so the list is shared rather than copied.
        frame.attrs["items"] = SharedItems(items)
    return frame, rejections


class SharedItems(list[Any]):
    """Received items referenced (not copied) by every frame pandas derives from the first one."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedItems:
        return self


def _raw_text(item: Any) -> str:
    return raw_text(item)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _text_faults(column: Distinct, name: str) -> np.ndarray | None:
    """Per row, why its text in `column` cannot be accepted (see ingest.text), or None for all rows when
    no value holds a forbidden character (one scan over the distinct values joined)."""
    texts = [_as_text(u) for u in column.uniques]
    if text_fault("".join(texts), name) is None:
        return None
    return column.map(lambda u: text_fault(_as_text(u), name))


def _row_text_faults(values: np.ndarray, name: str) -> np.ndarray | None:
    """_text_faults for a column of mostly distinct values (the readings): one scan over every row joined,
    row by row only when it finds a forbidden character."""
    try:
        joined = "".join(values)
    except TypeError:  # a value that is not text
        joined = "".join(map(_as_text, values))
    if text_fault(joined, name) is None:
        return None
    return np.array([text_fault(_as_text(v), name) for v in values], dtype=object)


def _parse_unique(values: Distinct, parse: Callable[[str], int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse each distinct ts once: per row (epoch µs, 0 where it failed) and the error texts per row (None
    where it parsed), or None when every ts parsed."""
    us = np.zeros(len(values.uniques), dtype=np.int64)
    errors = np.full(len(values.uniques), None, dtype=object)
    for i, text in enumerate(values.uniques):
        try:
            us[i] = parse(text)
        except TimestampError as exc:
            errors[i] = str(exc)
        except (TypeError, ValueError, OverflowError):
            errors[i] = f"ts {text!r} is not a valid date-time"
    failed = any(e is not None for e in errors)
    return us[values.codes], errors[values.codes] if failed else None


def _matches_unique(text: Distinct, pattern: str) -> np.ndarray:
    """Whether each value fully matches `pattern`, testing each distinct value once."""
    full = re.compile(pattern).fullmatch
    return text.map(lambda u: isinstance(u, str) and full(u) is not None, bool)


def _entity_text(entity: Any) -> str:
    """An entity cell as text: missing (None, NaN) is no entity."""
    if isinstance(entity, str):
        return entity
    if entity is None or entity is pd.NA or (isinstance(entity, float) and math.isnan(entity)):
        return ""
    return str(entity)


#: An empty metric (a long CSV row with fewer fields than the header reads as one: its last fields empty).
_NO_METRIC = "metric is missing: fill the metric column (a row with fewer fields than the header leaves it empty)"


def _limit(metric: str) -> float:
    limit = _MAX.get(metric)
    return math.inf if limit is None else float(limit)


def validate_frame(
    frame: pd.DataFrame,
    *,
    known_operators: set[str],
    now_us: int,
    ts_rule: TimestampRule = JSON_TS,
    future_tolerance_s: int = 300,
) -> tuple[pd.DataFrame, list[Rejection]]:
    """Split a raw frame into valid normalised rows (VALID_COLUMNS) and rejections, one per bad row.

    Each row is judged on its own; the first failing check names the field and the reason.
    """
    n = len(frame)
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in VALID_COLUMNS}), []
    reason = np.full(n, None, dtype=object)
    field = np.full(n, None, dtype=object)
    open_ = np.ones(n, dtype=bool)  # rows no check has failed yet

    def fail(mask: Any, fld: str, message: Any) -> None:
        """Record `message` (text, an array, or a callable making one) for rows in mask not yet failed."""
        mask = np.asarray(mask, dtype=bool) & open_
        if not mask.any():
            return
        if callable(message):
            message = message()
        if isinstance(message, pd.Series):
            message = message.to_numpy(dtype=object)
        reason[mask] = message[mask] if isinstance(message, np.ndarray) else message
        field[mask] = fld
        open_[mask] = False

    # Every check of the identity columns runs once per distinct value (ingest.distinct).
    metric_d = Distinct.of(frame["metric"]).converted(str)
    operator_d = Distinct.of(frame["operator"]).converted(str)
    entity_d = Distinct.of(frame["entity"]).converted(_entity_text)
    region_raw = Distinct.of(frame["region"])
    region_d = region_raw.converted(lambda r: str(r).strip())
    ts_d = Distinct.of(frame["ts"])
    metric = pd.Series(metric_d.values(), index=frame.index)
    operator = pd.Series(operator_d.values(), index=frame.index)
    entity = pd.Series(entity_d.values(), index=frame.index)
    region_text = pd.Series(region_d.values(), index=frame.index)

    # text: NUL, control characters and lone surrogates, before any check quotes the text in its reason
    text_columns = [("metric", metric_d), ("region", region_raw), ("operator", operator_d), ("entity", entity_d)]
    text_columns.append(("ts", ts_d))
    for name, column in text_columns:
        faults = _text_faults(column, name)
        if faults is not None:
            fail(pd.notna(faults), name, faults)
    if not pd.api.types.is_numeric_dtype(frame["value"].dtype):
        faults = _row_text_faults(frame["value"].to_numpy(dtype=object), "value")
        if faults is not None:
            fail(pd.notna(faults), "value", faults)

    # metric
    bad = ~metric_d.isin(METRICS)
    if bad.any():
        unknown = ("unknown metric '" + metric + "'; see GET /v1/indicators for the catalogue").to_numpy()
        fail(bad, "metric", np.where(metric.to_numpy() == "", _NO_METRIC, unknown))
    # operator
    bad = ~operator_d.isin(known_operators)
    if bad.any():
        fail(
            bad,
            "operator",
            ("unknown operator '" + operator + "'; an administrator registers operators first").to_numpy(),
        )
    admin_metric = metric_d.isin(_ADMIN_METRICS)
    is_admin = operator_d.map(ADMIN_OPERATOR.__eq__, bool)
    if (admin_metric & ~is_admin).any():
        fail(
            admin_metric & ~is_admin,
            "metric",
            ("metric " + metric + " is entered by the administration only").to_numpy(),
        )
    if (~admin_metric & is_admin).any():
        fail(
            ~admin_metric & is_admin,
            "metric",
            (
                "metric " + metric + " is pushed by operators; the administration enters only reference series "
                "(" + ", ".join(sorted(_ADMIN_METRICS)) + ")"
            ).to_numpy(),
        )
    # region
    # any level of the GB/T 2260 list (nation, province, city, county); an unknown code names the nearest
    known_region = region_d.isin(_region_text())
    if (~known_region).any():
        fail(~known_region, "region", lambda: region_text.map(unknown_region_message).to_numpy(dtype=object))
    # entity
    has_entity = entity_d.map(bool, bool)
    if has_entity.any():
        ok = _matches_unique(entity_d, ENTITY_ID_PATTERN.pattern)
        fail(
            has_entity & ~ok,
            "entity",
            lambda: ("entity '" + entity.str.slice(0, 80) + "' must match [A-Za-z0-9_.:-]{1,64}").to_numpy(),
        )
    needs_entity = metric_d.isin(_ENTITY_METRICS)
    fail(
        needs_entity & ~has_entity,
        "entity",
        lambda: ("metric " + metric + " needs an entity (the data centre's id)").to_numpy(),
    )
    # ts
    ts_vals, ts_err = _parse_unique(ts_d, ts_rule.parser())
    ts_bad = np.zeros(n, dtype=bool) if ts_err is None else pd.notna(ts_err)
    if ts_bad.any():
        fail(ts_bad, "ts", ts_err)
    future = ~ts_bad & (ts_vals > now_us + future_tolerance_s * 1_000_000)
    if future.any():
        fail(
            future,
            "ts",
            (
                "ts " + frame["ts"].astype(str) + f" is more than {future_tolerance_s // 60} minutes in the future"
            ).to_numpy(),
        )
    # value
    raw_value = frame["value"]
    if not pd.api.types.is_numeric_dtype(raw_value.dtype):
        # Read as given (surrounding spaces are no obstacle); only the texts that give no number are looked
        # at again, stripped: a missing value, a literal NaN, a text that is not a number.
        value = np.array(pd.to_numeric(raw_value, errors="coerce"), dtype=float)  # a copy of our own
        again = np.flatnonzero(np.isnan(value))
        if len(again):
            raw_again = raw_value.iloc[again]
            text = raw_again.astype(str).str.strip()
            value[again] = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
            missing = np.zeros(n, dtype=bool)
            missing[again] = (text == "").to_numpy() | raw_again.isna().to_numpy()
            fail(missing, "value", "value is missing")
            unparsable = np.zeros(n, dtype=bool)
            unparsable[again] = np.isnan(value[again]) & ~text.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
            if unparsable.any():
                quoted = np.full(n, None, dtype=object)
                quoted[again] = ("value '" + text.str.slice(0, 40) + "' is not a number").to_numpy(dtype=object)
                fail(unparsable, "value", quoted)
    else:
        value = raw_value.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        fail(np.isnan(value), "value", "value is NaN; it must be a finite number")
        fail(np.isinf(value), "value", "value is infinite or too large for a float; it must be a finite number")

        def value_text() -> np.ndarray:
            return pd.Series(value).map(_fmt).to_numpy(dtype=object)

        fail(value < 0, "value", lambda: "value " + value_text() + " is negative; values are ≥ 0")
        integer = metric_d.isin(_INTEGER_METRICS)
        fractional = integer & np.isfinite(value) & (np.floor(value) != value)
        if fractional.any():
            fail(
                fractional,
                "value",
                "value "
                + value_text()
                + " must be a whole number for "
                + metric.to_numpy(dtype=object)
                + " ("
                + metric.map(_UNIT).fillna("").to_numpy(dtype=object)
                + ")",
            )
        limit = metric_d.map(_limit, float)
        too_big = value > limit
        if too_big.any():
            fail(
                too_big,
                "value",
                "value "
                + value_text()
                + " exceeds the plausible maximum "
                + pd.Series(limit).map(_fmt).to_numpy(dtype=object)
                + " for "
                + metric.to_numpy(dtype=object),
            )

    # a year-to-date figure never falls within its year: a lower figure after a higher one is a probable error
    ytd = metric_d.isin(_YTD_METRICS) & open_
    if ytd.any():
        falling = ytd_decreases(
            metric.to_numpy(dtype=object)[ytd],
            region_text.to_numpy(dtype=object)[ytd],
            operator.to_numpy(dtype=object)[ytd],
            entity.to_numpy(dtype=object)[ytd],
            ts_vals[ytd],
            value[ytd],
        )
        if falling:
            mask = np.zeros(n, dtype=bool)
            messages = np.full(n, None, dtype=object)
            positions = np.flatnonzero(ytd)
            for i, (earlier_ts, earlier_value) in falling.items():
                pos = positions[i]
                mask[pos] = True
                messages[pos] = (
                    f"year-to-date figure {_fmt(float(value[pos]))} is below {_fmt(earlier_value)} reported for "
                    f"{_plan_date(earlier_ts)} of the same year: a year-to-date volume cannot fall (probable error; "
                    "if the earlier figure was wrong, send a revision of it)"
                )
            fail(mask, "value", messages)

    rejected = ~open_
    rejections: list[Rejection] = []
    if rejected.any():
        items = frame.attrs.get("items")
        raw_lines = frame.attrs.get("raw_lines")  # a CSV chunk's fields (collectors.csvfile.reader.RawLines)
        location = frame.attrs.get("location")  # a format of the row's line and `location` (CSV chunks)
        for pos in np.flatnonzero(rejected):
            row = frame.iloc[pos]
            raw = row["raw"]
            if raw is None or (isinstance(raw, float) and math.isnan(raw)):
                idx = row["index"]
                if items is not None and pd.notna(idx):
                    raw = _raw_text(items[int(idx)])
                elif raw_lines is not None and pd.notna(row["line"]):
                    raw = raw_lines.text(int(row["line"]))
                else:
                    raw = _raw_text({k: row[k] for k in ("ts", "region", "metric", "value", "operator", "entity")})
            where = str(row["location"])
            if location is not None:
                where = location.format(line=row["line"], location=where)
            rejections.append(
                Rejection(
                    where,
                    str(field[pos]),
                    str(reason[pos]),
                    str(raw),
                    index=None if pd.isna(row["index"]) else int(row["index"]),
                    line=None if pd.isna(row["line"]) else int(row["line"]),
                )
            )
    keep = open_
    regions = _region_text()
    valid = pd.DataFrame(
        {
            "metric": metric.to_numpy()[keep],
            "region": region_d.map(lambda r: int(r) if r in regions else -1, np.int64)[keep],
            "operator": operator.to_numpy()[keep],
            "entity": entity.to_numpy()[keep],
            "ts_us": ts_vals[keep],
            "value": value[keep],
        }
    )
    return valid, rejections


def plan_year(ts_us: np.ndarray) -> np.ndarray:
    """Calendar year in Asia/Shanghai of each UTC epoch-µs instant."""
    local = (np.asarray(ts_us, dtype=np.int64) + _PLAN_OFFSET_US).astype("datetime64[us]")
    return local.astype("datetime64[Y]").astype(np.int64) + 1970


def _plan_date(ts_us: int) -> str:
    return str((np.int64(ts_us) + _PLAN_OFFSET_US).astype("datetime64[us]").astype("datetime64[D]"))


def ytd_decreases(
    metric: np.ndarray,
    region: np.ndarray,
    operator: np.ndarray,
    entity: np.ndarray,
    ts_us: np.ndarray,
    value: np.ndarray,
) -> dict[int, tuple[int, float]]:
    """Rows of year-to-date figures lower than an earlier figure of the same series and year: position →
    (ts, value) of the highest earlier figure. Pure; a figure equal to the earlier one is fine."""
    years = plan_year(ts_us)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, key in enumerate(zip(metric, region, operator, entity, years, strict=True)):
        groups.setdefault(key, []).append(i)
    out: dict[int, tuple[int, float]] = {}
    for rows in groups.values():
        if len(rows) < 2:
            continue
        rows.sort(key=lambda i: int(ts_us[i]))
        best_i = rows[0]
        for i in rows[1:]:
            if int(ts_us[i]) == int(ts_us[best_i]):
                continue
            if value[i] < value[best_i]:
                out[i] = (int(ts_us[best_i]), float(value[best_i]))
            elif value[i] >= value[best_i]:
                best_i = i
    return out


def _fmt(v: float) -> str:
    if math.isfinite(v) and v == int(v) and abs(v) < 1e16:
        return str(int(v))
    return repr(v)
