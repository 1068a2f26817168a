"""Every metric and indicator of the catalogue has a Chinese name and unit in bulletins/labels.py, so none
can appear in a bulletin as a bare identifier."""

from __future__ import annotations

import re

import pytest

from bulletins.labels import COUNT_UNIT_ZH, INDICATOR_ZH, UNIT_ZH, indicator_zh, unit_zh
from reference.catalogue import INDICATORS, METRICS

_CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("item", sorted(set(METRICS) | set(INDICATORS)))
def test_every_metric_and_indicator_has_a_chinese_name_and_unit(item: str) -> None:
    assert item in INDICATOR_ZH, f"{item} has no Chinese name in bulletins/labels.py"
    assert _CJK.search(indicator_zh(item)), (item, indicator_zh(item))
    unit = INDICATORS[item].unit
    assert unit in UNIT_ZH, f"unit {unit!r} of {item} has no Chinese label in bulletins/labels.py"
    if unit not in ("ratio", "0/1"):
        assert unit_zh(item), item
    if unit == "count":
        assert _CJK.search(unit_zh(item)), item  # 个, 户, 家, 架 …


def test_names_and_units_name_only_what_the_catalogue_knows() -> None:
    known = set(METRICS) | set(INDICATORS)
    assert set(INDICATOR_ZH) <= known
    assert set(COUNT_UNIT_ZH) <= known and all(INDICATORS[i].unit == "count" for i in COUNT_UNIT_ZH)
    assert set(UNIT_ZH) == {i.unit for i in INDICATORS.values()}
    assert len(set(INDICATOR_ZH.values())) == len(INDICATOR_ZH)  # no two share a name
