"""China's regions by GB/T 2260 code, nation to county, read from the shipped list (reference/data/regions.csv).

Levels and parents follow the code structure: the nation 100000, provinces XX0000, prefecture-level cities
XXYY00, county-level divisions XXYYZZ (under their city, or under the province where no such city exists).
Jiangxi (360000) is the default province of boards and targets; nothing else here is specific to it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar, overload

import yaml

from core.settings import get_settings

_T = TypeVar("_T")
Level = Literal["nation", "province", "city", "county"]
LEVELS: tuple[Level, ...] = ("nation", "province", "city", "county")
LEVEL_NAMES: dict[str, str] = {
    "nation": "nation",
    "province": "province",
    "city": "prefecture-level city",
    "county": "county-level division",
}

DATA_DIR = Path(__file__).with_name("data")
REGIONS_FILE = DATA_DIR / "regions.csv"
REGIONS_META_FILE = DATA_DIR / "regions.meta.yaml"

NATION = 100000
#: The default province (boards, targets, the API's default scope).
PROVINCE = 360000


@dataclass(frozen=True, slots=True)
class Region:
    code: int
    name_zh: str
    name_en: str
    parent: int | None
    level: Level = "city"


class RegionListError(ValueError):
    """A region list file that cannot be used."""


def level_of_code(code: int) -> Level:
    """The level a six-digit code stands for by its structure alone."""
    if code == NATION:
        return "nation"
    if code % 10000 == 0:
        return "province"
    if code % 100 == 0:
        return "city"
    return "county"


def structural_parent(code: int, known: Iterable[int] | set[int]) -> int | None:
    """Parent by code structure: county → its city (or the province without one), city → province,
    province → nation."""
    known = known if isinstance(known, set) else set(known)
    level = level_of_code(code)
    if level == "nation":
        return None
    if level == "province":
        return NATION
    if level == "city":
        return code // 10000 * 10000
    city = code // 100 * 100
    return city if city in known else code // 10000 * 10000


def parse_region_list(rows: Iterable[dict[str, str]]) -> dict[int, Region]:
    """Regions from CSV rows with `code` and `name_zh` (or `name`), optional `name_en`; levels and parents
    are derived from the codes. Raises RegionListError naming the first bad row."""
    entries: dict[int, tuple[str, str]] = {NATION: ("中华人民共和国", "China")}
    for n, row in enumerate(rows, start=2):
        text = (row.get("code") or "").strip()
        if not (len(text) == 6 and text.isdigit()):
            raise RegionListError(f"line {n}: code {text!r} is not a six-digit GB/T 2260 code")
        name = (row.get("name_zh") or row.get("name") or "").strip()
        if not name:
            raise RegionListError(f"line {n}: region {text} has no name")
        entries[int(text)] = (name, (row.get("name_en") or "").strip())
    known = set(entries)
    out: dict[int, Region] = {}
    for code in sorted(entries):
        parent = structural_parent(code, known)
        if parent is not None and parent not in known:
            raise RegionListError(f"region {code} has no parent {parent} in the list")
        zh, en = entries[code]
        out[code] = Region(code, zh, en, parent, level_of_code(code))
    return out


def read_region_list(path: Path) -> dict[int, Region]:
    """A region list file: CSV (UTF-8) with a header naming `code` and `name_zh` (or `name`)."""
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as fh:
            return parse_region_list(csv.DictReader(fh))
    except OSError as exc:
        raise RegionListError(f"cannot read region list {path}: {exc.strerror}") from None


def region_list_file() -> Path:
    """Where the region list in force is kept: the setting INFRAWATCH_REGIONS_FILE (a list loaded by
    `infrawatch regions update` outside the package), else the shipped file."""
    return get_settings().regions_file or REGIONS_FILE


class RegionList(Mapping[int, Region]):
    """The regions by code, read from the list in force on first use (not at import: the setting is read
    when the regions are first needed), then kept for the life of the process."""

    def __init__(self) -> None:
        self._regions: dict[int, Region] | None = None

    @property
    def loaded(self) -> bool:
        return self._regions is not None

    def _load(self) -> dict[int, Region]:
        if self._regions is None:
            path = region_list_file()
            self._regions = read_region_list(path if path.exists() else REGIONS_FILE)
        return self._regions

    def __getitem__(self, code: int) -> Region:
        return self._load()[code]

    def __iter__(self) -> Iterator[int]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __contains__(self, code: object) -> bool:
        return code in self._load()

    @overload
    def get(self, code: int, /) -> Region | None: ...
    @overload
    def get(self, code: int, default: Region | _T, /) -> Region | _T: ...
    def get(self, code: int, default: object = None, /) -> object:
        return self._load().get(code, default)

    def keys(self) -> KeysView[int]:
        return self._load().keys()

    def values(self) -> ValuesView[Region]:
        return self._load().values()

    def items(self) -> ItemsView[int, Region]:
        return self._load().items()

    def __repr__(self) -> str:
        return f"RegionList({len(self)} regions)" if self.loaded else "RegionList(not read yet)"


REGIONS = RegionList()


class RegionCodes(Sequence[int]):
    """A tuple of region codes computed from REGIONS on first use (so that importing does not read the list)."""

    def __init__(self, compute: Callable[[], tuple[int, ...]]) -> None:
        self._compute = compute
        self._codes: tuple[int, ...] | None = None

    def _get(self) -> tuple[int, ...]:
        if self._codes is None:
            self._codes = self._compute()
        return self._codes

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[int, ...]: ...
    def __getitem__(self, i: int | slice) -> int | tuple[int, ...]:
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self) -> Iterator[int]:
        return iter(self._get())

    def __contains__(self, code: object) -> bool:
        return code in self._get()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RegionCodes):
            return self._get() == other._get()
        return self._get() == other if isinstance(other, tuple) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


def region_list_info() -> dict[str, object]:
    """Which list is in force: standard, year, publisher and source."""
    meta_file = region_list_file().with_name(REGIONS_META_FILE.name)
    meta = yaml.safe_load((meta_file if meta_file.exists() else REGIONS_META_FILE).read_text(encoding="utf-8")) or {}
    return {**meta, "regions": len(REGIONS)}


@lru_cache(maxsize=1)
def _children_index() -> dict[int, tuple[int, ...]]:
    out: dict[int, list[int]] = {}
    for code, r in REGIONS.items():
        if r.parent is not None:
            out.setdefault(r.parent, []).append(code)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def children(code: int) -> tuple[int, ...]:
    """The regions directly below `code` (a province's cities, a city's counties)."""
    return _children_index().get(code, ())


@lru_cache(maxsize=4096)
def subtree(code: int) -> frozenset[int]:
    """`code` and every region below it."""
    out = {code}
    for c in children(code):
        out |= subtree(c)
    return frozenset(out)


def ancestors(code: int) -> tuple[int, ...]:
    """The regions above `code`, nearest first (a county's city, province, nation)."""
    out = []
    r = REGIONS.get(code)
    while r is not None and r.parent is not None:
        out.append(r.parent)
        r = REGIONS.get(r.parent)
    return tuple(out)


def level(code: int) -> Level:
    return REGIONS[code].level


def provinces() -> tuple[int, ...]:
    return children(NATION)


def cities_in(code: int) -> tuple[int, ...]:
    """The prefecture-level cities within `code` (itself for a city)."""
    return tuple(c for c in sorted(subtree(code)) if REGIONS[c].level == "city")


#: The default province's prefecture-level cities (a tuple, computed on first use).
CITIES: Sequence[int] = RegionCodes(lambda: cities_in(PROVINCE))


def is_city(code: int) -> bool:
    """True for a prefecture-level city."""
    return code in REGIONS and REGIONS[code].level == "city"


def cities_of(code: int) -> tuple[int, ...]:
    """The parts a region's figures break down into: a province's cities (and county-level divisions
    directly under it), the nation's provinces; a city or county is its own single part."""
    if code not in REGIONS:
        raise KeyError(f"unknown region {code}")
    if REGIONS[code].level in ("nation", "province"):
        return children(code) or (code,)
    return (code,)


def nearest_known(code_text: str) -> int | None:
    """For an unknown code, the nearest valid region by structure: its city XXYY00, else its province
    XX0000, else None."""
    text = str(code_text).strip()
    if not (len(text) == 6 and text.isdigit()):
        return None
    code = int(text)
    for cand in (code // 100 * 100, code // 10000 * 10000):
        if cand != code and cand in REGIONS:
            return cand
    return None


def unknown_region_message(code_text: str) -> str:
    """Why a region code is refused, naming the nearest valid level."""
    text = str(code_text).strip()
    near = nearest_known(text)
    if near is not None:
        r = REGIONS[near]
        return (
            f"unknown region '{text}': not in the GB/T 2260 list; the nearest valid level is {near} "
            f"{r.name_zh} ({LEVEL_NAMES[r.level]})"
        )
    if len(text) == 6 and text.isdigit():
        return f"unknown region '{text}': no such province in the GB/T 2260 list; use 100000 for the nation"
    return f"unknown region '{text}': use a six-digit GB/T 2260 code such as 360000 (province) or 360100 (city)"


def region_name(code: int) -> str:
    r = REGIONS.get(code)
    if r is None:
        return str(code)
    return f"{r.name_en} {r.name_zh}" if r.name_en else r.name_zh
