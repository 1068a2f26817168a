"""Operator identifiers: the built-in carriers and the rule for ids an administrator registers."""

from __future__ import annotations

import re

OPERATOR_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
ENTITY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

#: Built-in operators: id -> (English name, Chinese name).
BUILTIN_OPERATORS: dict[str, tuple[str, str]] = {
    "cmcc": ("China Mobile", "中国移动"),
    "ctcc": ("China Telecom", "中国电信"),
    "cucc": ("China Unicom", "中国联通"),
    "cbn": ("China Broadnet", "中国广电"),
    "tower": ("China Tower", "中国铁塔"),
}

#: The pseudo-operator under which the administration's own reference series are stored.
ADMIN_OPERATOR = "admin"
#: The pseudo-operator of figures for all operators together (official statistics).
ALL_OPERATOR = "all"
#: Operators only the administration writes (admin keys and the admin's command line).
ADMIN_WRITTEN: frozenset[str] = frozenset({ADMIN_OPERATOR, ALL_OPERATOR})


def is_valid_operator_id(value: str) -> bool:
    return bool(OPERATOR_ID_PATTERN.match(value))


def is_valid_entity_id(value: str) -> bool:
    return value == "" or bool(ENTITY_ID_PATTERN.match(value))
