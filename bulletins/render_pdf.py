"""The bulletin as PDF (fpdf2) with the CJK font embedded (subset), A4, the same blocks as the Word file."""

from __future__ import annotations

import io

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace

from bulletins.document import Block
from bulletins.fonts import CjkFont, find_cjk_font

_BODY, _BOLD = "cjk", "cjkb"


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
            pdf.multi_cell(width, 10, b.text, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif b.kind in ("subtitle", "meta"):
            pdf.set_font(_BODY, size=12 if b.kind == "subtitle" else 10)
            pdf.set_text_color(0, 0, 0) if b.kind == "subtitle" else pdf.set_text_color(70, 70, 70)
            pdf.multi_cell(width, 7, b.text, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_text_color(0, 0, 0)
        elif b.kind == "h1":
            pdf.ln(3)
            pdf.set_font(_BOLD, size=14)
            pdf.multi_cell(width, 9, b.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif b.kind == "h2":
            pdf.ln(1)
            pdf.set_font(_BOLD, size=12)
            pdf.multi_cell(width, 8, b.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif b.kind == "note":
            pdf.set_font(_BOLD, size=10.5)
            pdf.multi_cell(width, 7, b.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif b.kind == "p":
            pdf.set_font(_BODY, size=11.5)
            # no break at ASCII spaces: Chinese lines wrap at any character, an early break leaves a ragged line
            # (fpdf2 trims ideographic spaces at a line start, so the two-character indent is no-break spaces)
            indent = "\u00a0" * round(pdf.get_string_width("国国") / pdf.get_string_width("\u00a0"))
            pdf.multi_cell(width, 7.2, indent + b.text.replace(" ", "\u00a0"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(1)
        elif b.kind == "table":
            pdf.set_font(_BODY, size=9)
            widths = tuple(b.widths or [1.0] * len(b.headers))
            with pdf.table(
                col_widths=widths,
                width=width,
                text_align="CENTER",
                line_height=5.2,
                headings_style=FontFace(family=_BOLD, emphasis=None, fill_color=(220, 228, 242)),
                first_row_as_headings=True,
            ) as table:
                for values in [b.headers, *b.rows]:
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
