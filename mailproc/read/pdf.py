"""Tables in a PDF: 附件1 as a unit prints it from WPS or Excel, a ruled table with the same
two-level header as the spreadsheet, and the title and 填报单位 line above it as text.

pdfplumber (MIT licence) finds the ruled tables from the lines drawn and reads the text in each
cell; PyMuPDF would do it too but is AGPL. A cell merged across columns comes back in its first
column with blanks to its right, as a spreadsheet's merged cell does, so the header matching
of `read.tables` works on these rows unchanged. A table without rules is not guessed at: its
columns cannot be told apart reliably.

A PDF whose pages hold no text at all is a scan or a photo saved as PDF: a picture of whatever
it shows, with nothing to read.
"""

import io
import logging
import re
from dataclasses import dataclass

import pdfplumber

MAX_PAGES = 20  # 附件1 is a page or two; a summary with the table appended is rarely longer

# A line break inside a cell: dropped between Chinese characters (参加\n人次), a space elsewhere
_BREAK_IN_WORD = re.compile(r"(?<=[^\x00-\x7f])\s*\n\s*(?=[^\x00-\x7f])")

logging.getLogger("pdfminer").setLevel(logging.ERROR)  # warnings about odd fonts: not ours


@dataclass
class PdfTables:
    """What the pages of a PDF hold: each ruled table with its page, the text outside them."""

    tables: list[tuple[int, list[list[str]]]]  # (page number from 1, rows of cell texts)
    loose_text: list[str]  # lines outside the tables: the title, 填报单位 …
    picture: bool  # no page read holds any text: a scan


def read_pdf(data: bytes) -> PdfTables:
    """The ruled tables and loose text of the first MAX_PAGES pages. Raises whatever pdfminer
    raises for a file that is no readable PDF (the caller names it damaged)."""
    tables: list[tuple[int, list[list[str]]]] = []
    loose: list[str] = []
    any_text = False
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for number, page in enumerate(pdf.pages[:MAX_PAGES], start=1):
            if not page.chars:
                continue
            any_text = True
            outside = page
            for table in page.find_tables():
                rows = [[_cell_text(cell) for cell in row] for row in table.extract()]
                tables.append((number, rows))
                outside = outside.outside_bbox(table.bbox)
            loose.extend(line for line in (outside.extract_text() or "").splitlines() if line)
    return PdfTables(tables, loose, picture=not any_text)


def _cell_text(cell: str | None) -> str:
    """A cell as one line of text ('' for a cell covered by a merged one)."""
    if not cell:
        return ""
    return " ".join(_BREAK_IN_WORD.sub("", cell).split())
