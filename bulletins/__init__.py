"""Monthly, quarterly and yearly bulletins in Chinese (Word, PDF, Excel) built from the metrics layer."""

from bulletins.content import Bulletin, UnknownRegion, build_bulletin
from bulletins.files import FILE_KINDS, BulletinFile, render_files, write_files
from bulletins.periods import Period, due_periods, parse_period

__all__ = [
    "FILE_KINDS",
    "Bulletin",
    "BulletinFile",
    "Period",
    "UnknownRegion",
    "build_bulletin",
    "due_periods",
    "parse_period",
    "render_files",
    "write_files",
]
