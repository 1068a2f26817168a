"""Reference data every part of infrawatch reads: regions, operators and the metric catalogue."""

from reference.catalogue import (
    DERIVED_INDICATORS,
    INDICATORS,
    METRICS,
    Indicator,
    Kind,
    Metric,
    indicator,
    metric,
)
from reference.operators import BUILTIN_OPERATORS, OPERATOR_ID_PATTERN, is_valid_operator_id
from reference.regions import CITIES, PROVINCE, REGIONS, Region, is_city, region_name

__all__ = [
    "BUILTIN_OPERATORS",
    "CITIES",
    "DERIVED_INDICATORS",
    "INDICATORS",
    "METRICS",
    "OPERATOR_ID_PATTERN",
    "PROVINCE",
    "REGIONS",
    "Indicator",
    "Kind",
    "Metric",
    "Region",
    "indicator",
    "is_city",
    "is_valid_operator_id",
    "metric",
    "region_name",
]
