"""Where a bulletin finds a CJK font: the setting INFRAWATCH_BULLETIN_FONT, else the usual system locations of
Noto / Source Han, WenQuanYi, Droid fallback, SimSun or PingFang. Both the PDF and the charts embed it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.settings import get_settings

#: Tried in order; a .ttc is searched for its Simplified Chinese face.
CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/source-han-serif/SourceHanSerifSC-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "C:/Windows/Fonts/simsun.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
)
_BOLD = {
    "NotoSerifCJK-Regular.ttc": "NotoSerifCJK-Bold.ttc",
    "NotoSansCJK-Regular.ttc": "NotoSansCJK-Bold.ttc",
}


class NoCjkFont(RuntimeError):
    """No font with Chinese glyphs was found; the PDF and charts cannot show Chinese."""


@dataclass(frozen=True, slots=True)
class CjkFont:
    path: Path
    index: int  # face in a .ttc collection
    family: str
    bold_path: Path | None
    bold_index: int


def _sc_index(path: Path) -> tuple[int, str] | None:
    """The face of a font file (or collection) that has Chinese glyphs, preferring Simplified Chinese."""
    from fontTools.ttLib import TTCollection, TTFont

    try:
        faces = TTCollection(str(path)).fonts if path.suffix.lower() == ".ttc" else [TTFont(str(path), lazy=True)]
    except Exception:
        return None
    best: tuple[int, str] | None = None
    for i, face in enumerate(faces):
        try:
            name = str(face["name"].getDebugName(1) or path.stem)
            cmap = face.getBestCmap() or {}
        except Exception:
            continue
        if ord("国") not in cmap:
            continue
        if best is None or name.endswith(" SC") or "SC" in name.split():
            best = (i, name)
            if name.endswith(" SC"):
                break
    return best


@lru_cache(maxsize=1)
def find_cjk_font() -> CjkFont:
    """The first usable CJK font; NoCjkFont saying how to provide one when there is none. Found once per
    process (clear this cache and get_settings' to look again)."""
    configured = get_settings().bulletin_font
    paths = [configured] if configured else [Path(p) for p in CANDIDATES]
    for path in paths:
        if not path.is_file():
            continue
        found = _sc_index(path)
        if found is None:
            continue
        index, family = found
        bold = path.with_name(_BOLD[path.name]) if path.name in _BOLD else None
        bold_found = _sc_index(bold) if bold is not None and bold.is_file() else None
        return CjkFont(path, index, family, bold if bold_found else None, bold_found[0] if bold_found else index)
    where = str(configured) if configured else ", ".join(CANDIDATES[:2])
    raise NoCjkFont(
        f"no CJK font found ({where}); install one (Debian/Ubuntu: apt-get install fonts-noto-cjk) "
        "or set INFRAWATCH_BULLETIN_FONT to a .ttf/.otf/.ttc with Chinese glyphs"
    )
