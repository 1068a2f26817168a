"""Loading a newer GB/T 2260 region list: check it, keep it as the list the product reads, mirror it in SQL."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import psycopg
import yaml

from reference.regions import LEVELS, REGIONS_FILE, REGIONS_META_FILE, Region, read_region_list, region_list_file


def write_region_list(regions: dict[int, Region], path: Path) -> None:
    """The list as the product ships it: code, name_zh, name_en, level, parent."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["code", "name_zh", "name_en", "level", "parent"])
        for code in sorted(regions):
            r = regions[code]
            w.writerow([code, r.name_zh, r.name_en, r.level, r.parent or ""])


def sync_region_table(conn: psycopg.Connection, regions: dict[int, Region]) -> int:
    """Make iw_region (the boards' region names) equal to `regions`; codes no longer listed are removed
    (observations keep their codes). Returns the number of regions."""
    order = sorted(regions, key=lambda c: (LEVELS.index(regions[c].level), c))
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE new_region (LIKE iw_region INCLUDING DEFAULTS) ON COMMIT DROP")
        with conn.cursor().copy("COPY new_region (code, name_en, name_zh, parent, level) FROM STDIN") as copy:
            for c in order:
                r = regions[c]
                copy.write_row((c, r.name_en, r.name_zh, r.parent, r.level))
        conn.execute(
            "INSERT INTO iw_region (code, name_en, name_zh, parent, level)"
            " SELECT code, name_en, name_zh, NULL, level FROM new_region"
            " ON CONFLICT (code) DO UPDATE SET name_en = EXCLUDED.name_en, name_zh = EXCLUDED.name_zh,"
            " level = EXCLUDED.level"
        )
        conn.execute("UPDATE iw_region g SET parent = n.parent FROM new_region n WHERE n.code = g.code")
        conn.execute("UPDATE iw_region SET parent = NULL WHERE code NOT IN (SELECT code FROM new_region)")
        conn.execute("DELETE FROM iw_region WHERE code NOT IN (SELECT code FROM new_region)")
    return len(regions)


def update_regions(
    conn: psycopg.Connection | None, source: Path, *, list_name: str, source_note: str = ""
) -> dict[int, Region]:
    """Check `source` (CSV with code and name_zh or name), keep it as the list in force with a note of which
    list it is, and mirror it in iw_region. Raises reference.regions.RegionListError for a bad file."""
    regions = read_region_list(source)
    target = region_list_file()
    tmp = target.with_suffix(".tmp")
    write_region_list(regions, tmp)
    shutil.move(tmp, target)
    meta_path = target.with_name(REGIONS_META_FILE.name) if target != REGIONS_FILE else REGIONS_META_FILE
    meta = {
        "standard": "GB/T 2260 行政区划代码 (county level and above)",
        "list": list_name,
        "year": int(list_name[:4]) if list_name[:4].isdigit() else None,
        "source_url": source_note,
        "transcribed_from": str(source),
        "loaded_on": date.today().isoformat(),
    }
    meta_path.write_text(yaml.safe_dump(meta, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if conn is not None:
        sync_region_table(conn, regions)
    return regions
