"""Jiangxi's regions by GB/T 2260 code: the province and its eleven prefecture-level cities."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    code: int
    name_zh: str
    name_en: str
    parent: int | None


PROVINCE = 360000

REGIONS: dict[int, Region] = {
    r.code: r
    for r in [
        Region(360000, "江西省", "Jiangxi", None),
        Region(360100, "南昌", "Nanchang", PROVINCE),
        Region(360200, "景德镇", "Jingdezhen", PROVINCE),
        Region(360300, "萍乡", "Pingxiang", PROVINCE),
        Region(360400, "九江", "Jiujiang", PROVINCE),
        Region(360500, "新余", "Xinyu", PROVINCE),
        Region(360600, "鹰潭", "Yingtan", PROVINCE),
        Region(360700, "赣州", "Ganzhou", PROVINCE),
        Region(360800, "吉安", "Ji'an", PROVINCE),
        Region(360900, "宜春", "Yichun", PROVINCE),
        Region(361000, "抚州", "Fuzhou", PROVINCE),
        Region(361100, "上饶", "Shangrao", PROVINCE),
    ]
}

CITIES: tuple[int, ...] = tuple(code for code, r in REGIONS.items() if r.parent == PROVINCE)


def is_city(code: int) -> bool:
    """True for a prefecture-level city (the level operators report at)."""
    return code in REGIONS and REGIONS[code].parent is not None


def cities_of(code: int) -> tuple[int, ...]:
    """The cities a region is made of: itself for a city, all eleven for the province."""
    if code == PROVINCE:
        return CITIES
    if is_city(code):
        return (code,)
    raise KeyError(f"unknown region {code}")


def region_name(code: int) -> str:
    r = REGIONS.get(code)
    return f"{r.name_en} {r.name_zh}" if r else str(code)
