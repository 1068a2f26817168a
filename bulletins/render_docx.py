"""The bulletin as Word (.docx, python-docx), laid out as an official document: 文号, a 小标宋-style title,
黑体 / 楷体 headings, 仿宋 body, tables and charts."""

from __future__ import annotations

import io

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from docx.text.run import Run

from bulletins.document import Block

TITLE_FONT, HEADING_FONT, SUB_FONT, BODY_FONT = "方正小标宋简体", "黑体", "楷体_GB2312", "仿宋_GB2312"


def _font(run: Run, name: str, size: float, bold: bool = False) -> None:
    run.font.name = name
    run.font.size = Pt(size)
    run.font.bold = bold
    rpr = run._element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(rfonts)
    rfonts.set(qn("w:eastAsia"), name)


def render_docx(blocks: list[Block], title: str) -> bytes:
    doc = Document()
    doc.core_properties.title = title
    doc.core_properties.author = "infrawatch"
    sec = doc.sections[0]
    sec.page_height, sec.page_width = Cm(29.7), Cm(21.0)  # A4, GB/T 9704 margins
    sec.top_margin, sec.bottom_margin = Cm(3.7), Cm(3.5)
    sec.left_margin, sec.right_margin = Cm(2.8), Cm(2.6)
    text_width = sec.page_width - sec.left_margin - sec.right_margin
    for b in blocks:
        if b.kind == "title":
            para = doc.add_paragraph()
            para.alignment = WD_ALIGN_PARAGRAPH.CENTER
            para.paragraph_format.space_before = Pt(12)
            _font(para.add_run(b.text), TITLE_FONT, 22)
        elif b.kind in ("subtitle", "meta"):
            para = doc.add_paragraph()
            para.alignment = WD_ALIGN_PARAGRAPH.CENTER
            run = para.add_run(b.text)
            _font(run, SUB_FONT if b.kind == "subtitle" else BODY_FONT, 14 if b.kind == "subtitle" else 12)
            if b.kind == "meta":
                run.font.color.rgb = RGBColor(0x40, 0x40, 0x40)
        elif b.kind == "h1":
            para = doc.add_paragraph()
            para.paragraph_format.space_before = Pt(10)
            para.paragraph_format.keep_with_next = True
            _font(para.add_run(b.text), HEADING_FONT, 16)
        elif b.kind == "h2":
            para = doc.add_paragraph()
            para.paragraph_format.space_before = Pt(6)
            para.paragraph_format.keep_with_next = True
            _font(para.add_run(b.text), SUB_FONT, 15, bold=True)
        elif b.kind == "note":
            para = doc.add_paragraph()
            para.paragraph_format.keep_with_next = True
            _font(para.add_run(b.text), HEADING_FONT, 12)
        elif b.kind == "p":
            para = doc.add_paragraph()
            para.paragraph_format.first_line_indent = Pt(32)
            para.paragraph_format.line_spacing = Pt(28)
            _font(para.add_run(b.text), BODY_FONT, 16)
        elif b.kind == "table":
            table = doc.add_table(rows=1, cols=len(b.headers))
            table.style = "Table Grid"
            table.alignment = WD_TABLE_ALIGNMENT.CENTER
            widths = b.widths or [1.0] * len(b.headers)
            total = sum(widths)
            for row_cells, values, head in [(table.rows[0].cells, b.headers, True)] + [
                (table.add_row().cells, r, False) for r in b.rows
            ]:
                for cell, value, w in zip(row_cells, values, widths, strict=True):
                    cell.width = int(text_width * w / total)
                    cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
                    _font(cell.paragraphs[0].add_run(value), HEADING_FONT if head else BODY_FONT, 10.5, bold=False)
            doc.add_paragraph()
        elif b.kind == "image" and b.image:
            para = doc.add_paragraph()
            para.alignment = WD_ALIGN_PARAGRAPH.CENTER
            para.add_run().add_picture(io.BytesIO(b.image), width=Cm(15))
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
