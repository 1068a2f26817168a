"""Write a long-format CSV of N synthetic meter observations (for the CSV benchmarks)."""

from __future__ import annotations

import sys
from pathlib import Path

CITIES = [360100, 360200, 360300, 360400, 360500, 360600, 360700, 360800, 360900, 361000, 361100]


def write_csv(path: Path, rows: int, entities: int = 500) -> None:
    """Rows of dc_energy_total_kwh for `entities` data centres at 5-minute steps from 2023-01-01."""
    steps = -(-rows // entities)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("ts,region,operator,entity,metric,value\n")
        n = 0
        for step in range(steps):
            minutes = step * 5
            ts = f"2023-01-{1 + minutes // 1440:02d}T{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00+08:00"
            lines = []
            for e in range(entities):
                if n >= rows:
                    break
                lines.append(f"{ts},{CITIES[e % 11]},cmcc,dc{e:05d},dc_energy_total_kwh,{1000 + step * 37 + e}\n")
                n += 1
            fh.write("".join(lines))


if __name__ == "__main__":
    write_csv(Path(sys.argv[1]), int(sys.argv[2]))
