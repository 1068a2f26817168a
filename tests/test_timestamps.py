"""Timestamp rules of docs/interface.md §4 (JSON) and §6 (CSV)."""

from datetime import UTC, datetime

import pytest

from ingest.timestamps import TimestampError, from_us, parse_csv_ts, parse_rfc3339, to_us

SHANGHAI_MIDNIGHT_JUNE_30 = datetime(2023, 6, 29, 16, 0, tzinfo=UTC)  # 2023-06-30 00:00 +08:00


def test_month_means_midnight_on_the_last_day_of_the_month_in_shanghai():
    assert from_us(parse_csv_ts("2023-06")) == SHANGHAI_MIDNIGHT_JUNE_30
    assert from_us(parse_csv_ts("2024-02")) == datetime(2024, 2, 28, 16, 0, tzinfo=UTC)  # leap year: 29th


def test_naive_datetime_is_taken_in_the_upload_time_zone():
    assert from_us(parse_csv_ts("2023-06-30 08:00:00")) == datetime(2023, 6, 30, 0, 0, tzinfo=UTC)
    assert from_us(parse_csv_ts("2023-06-30 08:00:00", "UTC")) == datetime(2023, 6, 30, 8, 0, tzinfo=UTC)


def test_date_means_midnight_local():
    assert from_us(parse_csv_ts("2023-06-30")) == SHANGHAI_MIDNIGHT_JUNE_30
    assert from_us(parse_csv_ts("2023/6/30")) == SHANGHAI_MIDNIGHT_JUNE_30


def test_offset_in_csv_wins_over_the_upload_time_zone():
    assert from_us(parse_csv_ts("2023-06-30T00:00:00Z", "Asia/Shanghai")) == datetime(2023, 6, 30, tzinfo=UTC)


def test_json_timestamp_without_offset_is_refused():
    with pytest.raises(TimestampError, match="no UTC offset"):
        parse_rfc3339("2023-06-30T00:00:00")
    with pytest.raises(TimestampError, match="not an RFC 3339"):
        parse_rfc3339("2023-06-30")


def test_json_timestamp_with_offset_or_z_is_exact_to_the_microsecond():
    assert parse_rfc3339("2023-06-30T00:00:00.000001+08:00") == to_us(SHANGHAI_MIDNIGHT_JUNE_30) + 1
    assert from_us(parse_rfc3339("2023-06-30T00:00:00Z")) == datetime(2023, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "June", "2023-13", "2023-02-30", "30/06/2023"])
def test_unreadable_csv_timestamps_say_what_forms_are_accepted(text):
    with pytest.raises(TimestampError):
        parse_csv_ts(text)


def test_quarter_and_year_mean_midnight_on_the_last_day_of_the_period():
    assert from_us(parse_csv_ts("2023-Q2")) == SHANGHAI_MIDNIGHT_JUNE_30
    assert from_us(parse_csv_ts("2023q2")) == SHANGHAI_MIDNIGHT_JUNE_30
    assert from_us(parse_csv_ts("2022")) == datetime(2022, 12, 30, 16, 0, tzinfo=UTC)  # 2022-12-31 00:00 +08:00
    with pytest.raises(TimestampError, match="quarter"):
        parse_csv_ts("2023-Q5")
