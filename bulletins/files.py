"""A bulletin's three files (.docx, .pdf, .xlsx): render them once, name them, write them to a folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bulletins.content import Bulletin
from bulletins.document import blocks, bulletin_title
from bulletins.render_docx import render_docx
from bulletins.render_pdf import render_pdf
from bulletins.render_xlsx import render_xlsx

CONTENT_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FILE_KINDS = tuple(CONTENT_TYPES)


@dataclass(frozen=True, slots=True)
class BulletinFile:
    kind: str  # docx | pdf | xlsx
    filename: str
    content: bytes

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]


def base_name(b: Bulletin) -> str:
    return f"bulletin-{b.region}-{b.period.label}"


def render_files(b: Bulletin) -> list[BulletinFile]:
    """The Word, PDF and Excel files of a bulletin (charts drawn once, shared by Word and PDF)."""
    title = bulletin_title(b)
    content = blocks(b)
    name = base_name(b)
    return [
        BulletinFile("docx", f"{name}.docx", render_docx(content, title)),
        BulletinFile("pdf", f"{name}.pdf", render_pdf(content, title)),
        BulletinFile("xlsx", f"{name}.xlsx", render_xlsx(b)),
    ]


def write_files(files: list[BulletinFile], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in files:
        path = out_dir / f.filename
        path.write_bytes(f.content)
        paths.append(path)
    return paths
