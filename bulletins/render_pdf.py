"""The bulletin as PDF (fpdf2) with the CJK font embedded (subset), A4, the same blocks as the Word file,
its Chinese lines broken by our own kinsoku rule (`kinsoku_lines`) so none starts with closing punctuation
and none runs past the margin."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace

from bulletins.document import Block
from bulletins.fonts import CjkFont, find_cjk_font

_BODY, _BOLD = "cjk", "cjkb"
#: Never at the start of a line (closing punctuation, full-width and ASCII).
NO_LINE_START = frozenset("，。、；：？！）》」』”’】〕〉｝］…‥·％%‰℃°,.;:?!)]}>、〗〙〛｠｣～")
#: Never at the end of a line (opening punctuation).
NO_LINE_END = frozenset("（《「『“‘【〔〈｛［(<[{〖〘〚｟｢")
#: The subset logger reports every glyph at INFO; a bulletin's log need not carry them.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)


def _in_run(ch: str) -> bool:
    """Latin letters, digits and ASCII signs stay together in a run (an id, a date, a figure)."""
    return ch.isascii() and not ch.isspace() and ch not in NO_LINE_START and ch not in NO_LINE_END


def _units(text: str) -> list[str]:
    """The text cut where a line may break: between CJK characters, runs of Latin letters and digits
    (4,758.78 and 12:30 are one run) and spaces; closing punctuation glued to what precedes it, opening
    punctuation to what follows."""
    raw: list[str] = []
    i, n = 0, len(text)

    def inside_number(j: int) -> bool:
        return (
            text[j] in ",.:"
            and 0 < j < n - 1
            and text[j - 1].isascii()
            and text[j - 1].isalnum()
            and text[j + 1].isascii()
            and text[j + 1].isalnum()
        )

    while i < n:
        j = i
        while j < n and (_in_run(text[j]) or inside_number(j)):
            j += 1
        if j > i:
            raw.append(text[i:j])
            i = j
        else:
            raw.append(text[i])
            i += 1
    out: list[str] = []
    glue_next = False
    for u in raw:
        if out and u[0] in NO_LINE_START:
            tail = ""
            while len(out) > 1 and out[-1].isspace():
                tail = out.pop() + tail
            out[-1] += tail + u
        elif out and glue_next:
            out[-1] += u
        else:
            out.append(u)
        glue_next = u[-1] in NO_LINE_END
    return out


def _split_long(unit: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """A unit wider than a whole line, cut into pieces that fit, none starting with closing punctuation
    nor ending with opening punctuation (characters move to the next piece until both hold)."""
    pieces: list[str] = []
    cur = ""
    for ch in unit:
        if cur and measure(cur + ch) > width:
            k, nxt = len(cur), ch
            while k > 1 and (nxt[0] in NO_LINE_START or cur[k - 1] in NO_LINE_END):
                k -= 1
                nxt = cur[k] + nxt
            pieces.append(cur[:k])
            cur = nxt
        else:
            cur += ch
    if cur:
        pieces.append(cur)
    return pieces


def kinsoku_lines(text: str, width: float, measure: Callable[[str], float], *, indent: float = 0.0) -> list[str]:
    """Pure: `text` broken into lines of at most `width` (as `measure` gives a string's width; the first
    line `indent` narrower) without a line starting with closing punctuation (，。、；：？！）》」 …) or ending
    with opening punctuation (（《「 …), and without breaking a run of Latin letters or digits (an id, a
    date, 4,758.78) that fits on a line. Spaces at a break are dropped; "\\n" forces a break."""
    lines: list[str] = []
    for para in text.split("\n"):
        cur = ""
        avail = width - (indent if not lines else 0.0)
        units = _units(para)
        i = 0
        while i < len(units):
            u = units[i]
            if not cur and u.isspace():
                i += 1
                continue
            if measure(cur + u) <= avail:
                cur += u
                i += 1
                continue
            if not cur:  # one unit wider than the line
                pieces = _split_long(u, avail, measure)
                lines.append(pieces[0])
                units[i : i + 1] = pieces[1:]
                avail = width
                continue
            lines.append(cur.rstrip())
            cur = ""
            avail = width
        if cur.strip() or not para:
            lines.append(cur.rstrip())
    return lines


class _Pdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = title

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(_BODY, size=9)
        self.set_text_color(90, 90, 90)
        self.cell(0, 8, f"— {self.page_no()} —", align=Align.C)
        self.set_text_color(0, 0, 0)


def _add_fonts(pdf: FPDF, font: CjkFont) -> None:
    pdf.add_font(_BODY, fname=str(font.path), collection_font_number=font.index)
    pdf.add_font(_BOLD, fname=str(font.bold_path or font.path), collection_font_number=font.bold_index)


def _usable(pdf: FPDF, width: float) -> float:
    """The width text may take in a cell of `width`: its padding on both sides off, and half a millimetre
    for rounding, so a line never reaches the margin."""
    return width - 2 * pdf.c_margin - 0.5


def _page_break_at(lines: int, room: int) -> int | None:
    """Where a block of `lines` lines breaks to the next page when `room` lines fit on this one: never
    leaving one line alone on either page (a whole short block moves on); None when it fits."""
    if lines <= room:
        return None
    if lines - room == 1:
        room -= 1  # two lines go on, not one
    return room if room >= 2 else 0


def _write(pdf: FPDF, text: str, h: float, align: Align = Align.L, indent: float = 0.0) -> None:
    """A block of text in lines of our own breaking, each drawn as one cell (fpdf2 breaks none again)."""
    width = pdf.epw
    lines = kinsoku_lines(text, _usable(pdf, width), pdf.get_string_width, indent=indent)
    brk = _page_break_at(len(lines), int((pdf.page_break_trigger - pdf.get_y()) // h))
    for n, line in enumerate(lines):
        if n == brk:
            pdf.add_page()
        x = pdf.l_margin + (indent if n == 0 else 0.0)
        pdf.set_x(x)
        pdf.cell(width - (x - pdf.l_margin), h, line, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _keep_with_next(pdf: FPDF, room: float) -> None:
    """A heading starts a new page rather than end one: it needs `room` (mm) below it for what follows."""
    if pdf.get_y() + room > pdf.page_break_trigger:
        pdf.add_page()


def _cell_text(pdf: FPDF, text: str, width: float) -> str:
    """A table cell's text with its line breaks made by `kinsoku_lines` for the column's width."""
    return "\n".join(kinsoku_lines(text, _usable(pdf, width), pdf.get_string_width))


def render_pdf(blocks: list[Block], title: str, font: CjkFont | None = None) -> bytes:
    """Raises bulletins.fonts.NoCjkFont when no CJK font can be found."""
    pdf = _Pdf(title)
    _add_fonts(pdf, font or find_cjk_font())
    pdf.set_title(title)
    pdf.set_author("infrawatch")
    pdf.set_margins(25, 25, 22)
    pdf.set_auto_page_break(True, margin=22)
    pdf.add_page()
    width = pdf.epw
    for b in blocks:
        if b.kind == "title":
            pdf.set_font(_BOLD, size=19)
            pdf.ln(4)
            _write(pdf, b.text, 10, Align.C)
        elif b.kind in ("subtitle", "meta"):
            pdf.set_font(_BODY, size=12 if b.kind == "subtitle" else 10)
            pdf.set_text_color(0, 0, 0) if b.kind == "subtitle" else pdf.set_text_color(70, 70, 70)
            _write(pdf, b.text, 7, Align.C)
            pdf.set_text_color(0, 0, 0)
        elif b.kind == "h1":
            _keep_with_next(pdf, 35)
            pdf.ln(3)
            pdf.set_font(_BOLD, size=14)
            _write(pdf, b.text, 9)
        elif b.kind == "h2":
            _keep_with_next(pdf, 30)
            pdf.ln(1)
            pdf.set_font(_BOLD, size=12)
            _write(pdf, b.text, 8)
        elif b.kind == "note":
            _keep_with_next(pdf, 25)
            pdf.set_font(_BOLD, size=10.5)
            _write(pdf, b.text, 7)
        elif b.kind == "p":
            pdf.set_font(_BODY, size=11.5)
            _write(pdf, b.text, 7.2, indent=pdf.get_string_width("国国"))  # a two-character first-line indent
            pdf.ln(1)
        elif b.kind == "table":
            pdf.set_font(_BODY, size=9)
            widths = tuple(b.widths or [1.0] * len(b.headers))
            cols = [width * w / sum(widths) for w in widths]
            pdf.set_font(_BOLD, size=9)
            headers = [_cell_text(pdf, v, w) for v, w in zip(b.headers, cols, strict=True)]
            pdf.set_font(_BODY, size=9)
            rows = [[_cell_text(pdf, v, w) for v, w in zip(r, cols, strict=True)] for r in b.rows]
            with pdf.table(
                col_widths=widths,
                width=width,
                text_align="CENTER",
                line_height=5.2,
                headings_style=FontFace(family=_BOLD, emphasis=None, fill_color=(220, 228, 242)),
                first_row_as_headings=True,
            ) as table:
                for values in [headers, *rows]:
                    row = table.row()
                    for v in values:
                        row.cell(v)
            pdf.ln(2)
        elif b.kind == "image" and b.image:
            w = min(width, 150)
            h = w * 2.6 / 6.4
            if pdf.get_y() + h > pdf.h - pdf.b_margin:
                pdf.add_page()
            pdf.image(io.BytesIO(b.image), x=pdf.l_margin + (width - w) / 2, w=w, h=h)
            pdf.ln(2)
    return bytes(pdf.output())
