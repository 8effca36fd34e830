"""The tables and body paragraphs of a .docx read straight from its main document XML.

python-docx opens every part of the package (styles, numbering, settings, headers, each
parsed) to read one table: 30 ms a file, a sixth of ingesting a mail. Here only the package's
relationships, its content types and the main document are read, and the text is taken as
python-docx takes it (runs and hyperlinks of each paragraph; tabs, breaks and no-break
hyphens as characters; a cell spanning columns repeated for each; a vertically merged cell
read from its first row). Anything this reading does not expect raises `Unexpected`, and the
caller reads the file through python-docx as before, so a damaged file fails as it did.
"""

import io
import posixpath
import zipfile

from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_TYPES = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_OFFICE_DOCUMENT = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
)
_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False)  # as python-docx
_RUN_TEXT = {W + "t", W + "tab", W + "ptab", W + "cr", W + "br", W + "noBreakHyphen"}
_RUN_CHARACTER = {W + "tab": "\t", W + "ptab": "\t", W + "cr": "\n", W + "noBreakHyphen": "-"}

Table = tuple[int, int, etree._Element]  # rows, grid columns, the w:tbl element


class Unexpected(Exception):
    """Something this reading does not handle: python-docx reads the file instead."""


def _main_part(package: zipfile.ZipFile) -> str:
    relationships = etree.fromstring(package.read("_rels/.rels"), _PARSER)
    targets = [
        r.get("Target", "")
        for r in relationships.iter(_RELS + "Relationship")
        if r.get("Type") == _OFFICE_DOCUMENT and r.get("TargetMode") != "External"
    ]
    if len(targets) != 1:
        raise Unexpected("no single main document")
    name = posixpath.normpath(targets[0]).lstrip("/")
    types = etree.fromstring(package.read("[Content_Types].xml"), _PARSER)
    override = [
        o.get("ContentType")
        for o in types.iter(_TYPES + "Override")
        if o.get("PartName", "").lstrip("/") == name
    ]
    if override != [_MAIN]:
        raise Unexpected("not a Word document's main part")
    return name


def _run_text(run: etree._Element) -> str:
    pieces = []
    for child in run:
        tag = child.tag
        if tag not in _RUN_TEXT:
            continue
        if tag == W + "t":
            pieces.append(child.text or "")
        elif tag == W + "br":
            pieces.append("\n" if child.get(W + "type", "textWrapping") == "textWrapping" else "")
        else:
            pieces.append(_RUN_CHARACTER[tag])
    return "".join(pieces)


def paragraph_text(paragraph: etree._Element) -> str:
    pieces = []
    for child in paragraph:
        if child.tag == W + "r":
            pieces.append(_run_text(child))
        elif child.tag == W + "hyperlink":
            pieces.extend(_run_text(run) for run in child.iterchildren(W + "r"))
    return "".join(pieces)


def _property(cell_or_row: etree._Element, holder: str, name: str) -> etree._Element | None:
    properties = cell_or_row.find(W + holder)
    return None if properties is None else properties.find(W + name)


def _number(element: etree._Element | None, default: int) -> int:
    if element is None:
        return default
    value = element.get(W + "val")
    if value is None or not value.strip().lstrip("-").isdigit():
        raise Unexpected("a span that is not a number")
    return int(value)


def _rows(table: etree._Element) -> list[list[str]]:
    rows: list[list[str]] = []
    # per row: (grid offset, span, text or None when it continues the cell above) of each w:tc
    laid_out: list[list[tuple[int, int, str | None]]] = []
    for row in table.iterchildren(W + "tr"):
        offset = _number(_property(row, "trPr", "gridBefore"), 0)
        cells: list[tuple[int, int, str | None]] = []
        for cell in row.iterchildren(W + "tc"):
            span = _number(_property(cell, "tcPr", "gridSpan"), 1)
            merge = _property(cell, "tcPr", "vMerge")
            continues = merge is not None and merge.get(W + "val", "continue") == "continue"
            if merge is not None and merge.get(W + "val", "continue") not in (
                "continue",
                "restart",
            ):
                raise Unexpected("an unknown vertical merge")
            text = None if continues else "\n".join(map(paragraph_text, cell.iterchildren(W + "p")))
            cells.append((offset, span, text))
            offset += span
        texts: list[str] = []
        for offset, span, text in cells:
            above, where = text, len(laid_out) - 1
            while above is None:  # the first row of the merge holds the text (and its span)
                if where < 0:
                    raise Unexpected("a merge that starts nowhere")
                found = [c for c in laid_out[where] if c[0] == offset]
                if not found:
                    raise Unexpected("a merge with no cell above")
                _offset, span, above = found[0]
                where -= 1
            texts.extend([above] * span)
        laid_out.append(cells)
        rows.append(texts)
    return rows


def read_docx(data: bytes, package: zipfile.ZipFile | None = None) -> tuple[list[str], list[Table]]:
    """The body's paragraphs and its top-level tables, each with its size, so the caller can
    refuse a huge one before its cells are read (`table_cells`). `package`: the file's zip,
    when the caller has it open already."""
    try:
        package = package or zipfile.ZipFile(io.BytesIO(data))
        document = etree.fromstring(package.read(_main_part(package)), _PARSER)
    except Unexpected:
        raise
    except Exception as exc:
        raise Unexpected(str(exc)) from None
    body = document.find(W + "body")
    if document.tag != W + "document" or body is None:
        raise Unexpected("no document body")
    paragraphs = [paragraph_text(p) for p in body.iterchildren(W + "p")]
    tables = []
    for table in body.iterchildren(W + "tbl"):
        grid = table.find(W + "tblGrid")
        if grid is None:
            raise Unexpected("a table without its grid")
        columns = len(grid.findall(W + "gridCol"))
        tables.append((len(table.findall(W + "tr")), columns, table))
    return paragraphs, tables


def table_cells(table: etree._Element) -> list[list[str]]:
    """Each row's cells as python-docx's `_Row.cells` gives them, as texts."""
    return _rows(table)
