"""Read 附件1, the activity statistics table, from one attachment.

Units fill the table in Excel, WPS, Word or a CSV export and drift from any template:
reworded, single- or two-level headers, traditional script, vertical layouts, units and
approximations inside cells. This module finds the table by its column headers (the words come
from `rules/columns.toml`), picks the unit's own data row and reads every figure, reporting each
cell it cannot read instead of guessing. Spreadsheets are read with python-calamine, Word tables
with python-docx, tables in PDFs with pdfplumber (`read.pdf`), tables in old binary .doc/.wps
through a program of the machine (`read.word`); every file is size- and shape-checked first so
one hostile attachment cannot stall the run.

An attachment is read once (`read_tables`: every table with all its rows); the unit's own row,
the week's sheet and the best table are then picked from what was read (`pick`), as often as
classification needs, without opening the file again.
"""

import codecs
import csv
import functools
import io
import math
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from operator import itemgetter
from pathlib import PurePath
from typing import Any

import docx
import openpyxl
import xlrd
from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum
from xlrd.compdoc import CompDoc

from mailproc.read import wordxml
from mailproc.read.budget import Budget, Limits, OverBudget
from mailproc.read.kinds import (
    OLD_WORD_KINDS,
    OLE2_MAGIC,
    OLE2_WORKBOOK_STREAMS,
    TABLE_TEXT_SUFFIXES,
    WORKBOOK_KINDS,
    ZIP_PREFIX,
    Container,
    password_protected,
)
from mailproc.read.text import normalize, simplify
from mailproc.read.word import converted_to_docx, printed_tables
from mailproc.values import BadCell, StatsTable

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 5_000
MAX_COLS = 200
MIN_COLUMNS = 3  # headers of rules.columns needed before a table counts as 附件1
HEADER_SCAN_ROWS = 40  # the header sits near the top; the rest is data or notes
VERTICAL_SCAN_ROWS = 120
VERTICAL_SCAN_COLS = 6
RARE_CHAR_SHARE = 0.2  # of non-ASCII characters outside GB2312 before a CSV reads as noise

_BRACKETED = re.compile(r"[（(\[【〔][^）)\]】〕]*[）)\]】〕]")
_LABEL_VALUE = re.compile(r"[:：]")
_BRACKETED_UNIT = re.compile(r"^(.+?)[（(]([^（()）]+)[）)]$")
_VALUE_END = re.compile(r"\s{2,}|\u3000|\s+(?=\S{1,10}[:：])")
_NEGATIVE = re.compile(r"^[-−－–]\s*\d")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
# An error cell's type attribute (t="e") as written, or with a reference or entity in its value
_ERROR_TYPE = re.compile(rb"t\s*=\s*[\"'][e&]")
# In a BIFF workbook stream: a BOOLERR record (0x0205, 8 bytes) with its error flag set, or a
# FORMULA record (0x0006; 0x0206, 0x0406 in BIFF3/4) whose cached result is an error (type 2,
# 0xFFFF in its last two bytes)
_BIFF_ERROR = re.compile(
    rb"\x05\x02\x08\x00.{7}\x01|\x06[\x00\x02\x04].{8}\x02.{5}\xff\xff", re.DOTALL
)
_CACHE_SIZE = 1 << 16  # distinct cell texts remembered; a run repeats the same headers and words
# Zip parts that hold no cells by their standard names: the error-mark check skips them
_CELL_FREE_PART = re.compile(
    r"\[Content_Types\]\.xml$|docProps/|.*\.rels$|xl/(?:workbook|styles|sharedStrings)\.xml$"
    r"|xl/theme/"
)


# What a unit reads of a file locked with a password: no damage, and what to do about it
PASSWORD_PROTECTED = "文件设有密码，无法打开，请取消密码后重新发送"
PDF_DAMAGED = "PDF 文件已损坏，无法读取"


class UnreadableFile(Exception):
    """A spreadsheet or document that cannot be opened: cut off, encrypted, corrupt, too big."""


Cell = Any  # what calamine gives: str, int, float, bool, date/time, or '' for blank
Grid = list[list[Cell]]


@dataclass
class Opened:
    """What opening one file gave: its sheets or Word tables with every row, and the error
    values (#REF!) behind cells that read as blank. Plain values, so the opening can happen in
    another process (`read.sandbox`) and be sent back."""

    filename: str
    grids: list["_Grid"]
    errors: dict[str, dict[tuple[int, int], str]]  # by sheet, then (row, column)
    picture: bool = False  # a PDF without text: a scan, a picture of whatever it shows


def open_file(
    source: Container,
    filename: str,
    kind: str,
    budget: Budget | None = None,
    seconds: float | None = None,
) -> Opened | None:
    """Every sheet or table of one attachment, with all their rows, read once: the only part
    of reading 附件1 that runs native code (calamine, lxml, zlib, pdfminer) or another program
    (for .doc), and so the part that runs in the sandbox.

    None when the file is of a kind that holds no tables (a photo, an old binary .doc whose
    tables no program here can read); `UnreadableFile` when a file that should be a
    spreadsheet or document cannot be opened, or would cost more than `budget` (the mail's) to
    unpack. `seconds`: what is left of the mail's wall time, for a program reading a .doc.
    """
    data = source.data
    if password_protected(source, kind):
        raise UnreadableFile(PASSWORD_PROTECTED)
    budget = budget or Budget.of(Limits())
    archive = None
    if kind in WORKBOOK_KINDS:
        archive = _checked_zip(source, budget)
        grids = _spreadsheet_grids(data)
    elif kind == "docx":
        grids = _docx_grids(data, _checked_zip(source, budget))
    elif kind == "pdf":
        return _pdf_opened(data, filename)
    elif kind in OLD_WORD_KINDS:
        found = _old_word_grids(data, budget, Limits().wall_seconds if seconds is None else seconds)
        return Opened(filename, found, {}) if found is not None else None
    elif kind == "csv" or (kind in {"text", "other"} and _suffix(filename) in TABLE_TEXT_SUFFIXES):
        grids = _csv_grids(data)
    else:
        return None
    return Opened(filename, grids, _error_cells(data, archive))


def tables_of(opened: Opened, rules: Any) -> "Tables":
    """An opened file ready to `pick` from, with the rules' words for finding 附件1."""
    matcher, words = _prepared(rules)
    return Tables(opened, matcher, words)


def read_tables(source: Container, filename: str, kind: str, rules: Any) -> "Tables | None":
    """`open_file` and `tables_of` in this process: where no sandbox is wanted (tests, the
    benchmark of reading)."""
    opened = open_file(source, filename, kind)
    return tables_of(opened, rules) if opened is not None else None


def pick(
    tables: "Tables",
    own_row: Callable[[str], bool] | None = None,
    sheet: Callable[[str], bool] | None = None,
) -> StatsTable | None:
    """The 附件1 figures among the tables read: None when none of them is 附件1.

    The figures are those of the first filled row under the header, or, with `own_row`, of
    the first row whose label it accepts (a town's own row below its villages' rows; a row the
    unit left blank reads as zeros). With `sheet`, only the sheets whose name it accepts are
    searched, when there are any (a sheet per week).
    """
    grids = tables.opened.grids
    every = range(len(grids))
    chosen = [i for i in every if sheet(grids[i].sheet)] if sheet is not None else []
    best = tables.best_layout(tuple(chosen or every))
    if best is None:
        return None
    return _read_table(best, tables, own_row)


def read_stats(
    data: bytes,
    filename: str,
    kind: str,
    rules: Any,
    own_row: Callable[[str], bool] | None = None,
    sheet: Callable[[str], bool] | None = None,
) -> StatsTable | None:
    """The 附件1 figures in one file's bytes: `read_tables`, then `pick`."""
    tables = read_tables(Container(data), filename, kind, rules)
    return pick(tables, own_row, sheet) if tables is not None else None


_last_rules: list[tuple[Any, "_Matcher", "_ValueWords"]] = []


def _prepared(rules: Any) -> tuple["_Matcher", "_ValueWords"]:
    """The rules' header and value words, normalised once per rules object (a run reads many
    attachments with the same rules)."""
    if not _last_rules or _last_rules[0][0] is not rules:
        _last_rules[:] = [(rules, _Matcher(rules), _ValueWords.of(rules))]
    return _last_rules[0][1], _last_rules[0][2]


# ---------------------------------------------------------------------------------------------
# Opening files: every reader gives its sheets or Word tables as _Grid rows


@dataclass
class _Grid:
    sheet: str
    rows: Grid
    loose_text: list[str]  # text outside the table (Word paragraphs) that may hold 填报单位


@dataclass
class Tables:
    """One opened file with the rules' words to find 附件1 with: `pick` reads it as often as a
    choice of row or sheet needs, without opening the file again."""

    opened: Opened
    matcher: "_Matcher" = field(repr=False)
    words: "_ValueWords" = field(repr=False)
    # the best table among some of the grids (by their positions): a layout is found once
    _layouts: dict[tuple[int, ...], "_Layout | None"] = field(
        default_factory=dict, init=False, repr=False
    )

    def best_layout(self, positions: tuple[int, ...]) -> "_Layout | None":
        """`_best_table` of the grids at `positions`, found once for each choice of them."""
        if positions not in self._layouts:
            grids = [self.opened.grids[i] for i in positions]
            self._layouts[positions] = _best_table(grids, self.matcher)
        return self._layouts[positions]


def _check_size(data: bytes) -> None:
    if len(data) > MAX_BYTES:
        raise UnreadableFile(f"文件过大，超过 {MAX_BYTES // 2**20} MB")


def _checked_zip(source: Container, budget: Budget) -> zipfile.ZipFile | None:
    """Refuse oversized files and broken or bomb-like zips; the opened zip when the bytes are
    one (kept for the error-mark scan), None when they are not. Every part is inflated once
    and counted: the sizes a zip declares are not believed."""
    _check_size(source.data)
    if not source.data.startswith(ZIP_PREFIX):
        return None
    try:
        archive = source.zip()
        budget.check_package(archive)
    except OverBudget as over:
        raise UnreadableFile(f"{over}，文件过大") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError):
        raise UnreadableFile("文件已损坏或不完整，无法打开") from None
    return archive


def _too_big(rows: int, cols: int) -> UnreadableFile:
    return UnreadableFile(f"表格过大（{rows} 行 × {cols} 列，上限 {MAX_ROWS} 行 × {MAX_COLS} 列）")


def _spreadsheet_grids(data: bytes) -> list[_Grid]:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        grids = []
        for name in _visible_sheets(workbook):
            sheet = workbook.get_sheet_by_name(name)
            end = sheet.end
            rows, cols = (end[0] + 1, end[1] + 1) if end else (0, 0)
            if rows > MAX_ROWS or cols > MAX_COLS:
                raise _too_big(rows, cols)
            grid = sheet.to_python(skip_empty_area=False, nrows=MAX_ROWS)
            grids.append(_Grid(name, grid, []))
    except (KeyboardInterrupt, SystemExit, UnreadableFile):
        raise
    except BaseException:  # CalamineError, OverflowError on absurd dates, Rust panics
        raise UnreadableFile("文件已损坏，无法打开") from None
    return grids


def _visible_sheets(workbook: CalamineWorkbook) -> list[str]:
    """The worksheets a person opening the file sees: a hidden sheet (last week's table kept
    out of sight) is not read, unless every sheet is hidden."""
    shown = [
        sheet.name
        for sheet in workbook.sheets_metadata
        if sheet.visible == SheetVisibleEnum.Visible and sheet.typ == SheetTypeEnum.WorkSheet
    ]
    return shown or workbook.sheet_names


def _docx_grids(data: bytes, package: zipfile.ZipFile | None) -> list[_Grid]:
    """The tables of a .docx, read from its main document XML in the zip already opened
    (`read.wordxml`), or through python-docx when that reading meets anything it does not
    expect."""
    try:
        paragraphs, tables = wordxml.read_docx(data, package)
        grids = []
        for number, (rows, columns, table) in enumerate(tables, start=1):
            if rows > MAX_ROWS or columns > MAX_COLS:
                raise _too_big(rows, columns)
            grids.append(_Grid(f"表格{number}", wordxml.table_cells(table), paragraphs))
    except wordxml.Unexpected:
        return _python_docx_grids(data)
    return grids


def _python_docx_grids(data: bytes) -> list[_Grid]:
    try:
        document = docx.Document(io.BytesIO(data))
        paragraphs = [p.text for p in document.paragraphs]
        grids = []
        for number, table in enumerate(document.tables, start=1):
            if len(table.rows) > MAX_ROWS or len(table.columns) > MAX_COLS:
                raise _too_big(len(table.rows), len(table.columns))
            rows = [[cell.text for cell in row.cells] for row in table.rows]
            grids.append(_Grid(f"表格{number}", rows, paragraphs))
    except UnreadableFile:
        raise
    except Exception:  # python-docx raises many types for a broken package
        raise UnreadableFile("文档已损坏，无法打开") from None
    return grids


def _pdf_opened(data: bytes, filename: str) -> Opened:
    """The ruled tables of a text PDF, each page's text outside them as loose text; a PDF with
    no text at all is a picture (a scan)."""
    _check_size(data)
    from mailproc.read.pdf import read_pdf  # pdfplumber costs half a second: only for a PDF

    try:
        found = read_pdf(data)
    except Exception:  # pdfminer raises many types for a damaged file
        raise UnreadableFile(PDF_DAMAGED) from None
    grids = []
    for number, (page, rows) in enumerate(found.tables, start=1):
        if len(rows) > MAX_ROWS or max(map(len, rows), default=0) > MAX_COLS:
            raise _too_big(len(rows), max(map(len, rows)))
        grids.append(_Grid(f"第{page}页表格{number}", rows, found.loose_text))
    return Opened(filename, grids, {}, picture=found.picture)


def _old_word_grids(data: bytes, budget: Budget, seconds: float) -> list[_Grid] | None:
    """The tables of an old binary Word file (.doc, .wps) as LibreOffice converts them, else
    as antiword prints them; None when no program here reads it (`read.word`)."""
    _check_size(data)
    deadline = time.monotonic() + seconds
    converted = converted_to_docx(data, seconds)
    if converted is not None:
        return _docx_grids(converted, _checked_zip(Container(converted), budget))
    printed = printed_tables(data, deadline - time.monotonic())
    if printed is None:
        return None
    for rows in printed.tables:
        if len(rows) > MAX_ROWS or max(map(len, rows), default=0) > MAX_COLS:
            raise _too_big(len(rows), max(map(len, rows)))
    return [
        _Grid(f"表格{number}", rows, printed.paragraphs)
        for number, rows in enumerate(printed.tables, start=1)
    ]


def _csv_grids(data: bytes) -> list[_Grid]:
    _check_size(data)
    text = _decode_csv(data)
    head = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(head, delimiters=",\t;")
    except csv.Error:  # e.g. tabs between cells and commas inside them (1,200): the tabs win
        dialect = csv.excel_tab if head.count("\t") > head.count(",") else csv.excel
    rows: Grid = []
    for row in csv.reader(io.StringIO(text, newline=""), dialect):
        if len(rows) >= MAX_ROWS or len(row) > MAX_COLS:
            raise _too_big(len(rows) + 1, len(row))
        rows.append(row)
    return [_Grid("csv", rows, [])]


def _decode_csv(data: bytes) -> str:
    """UTF-16 (Excel's "Unicode text": a BOM, or none and little-endian), then UTF-8 (with or
    without BOM), then GB18030 (covers GBK/GB2312 from Chinese Excel).

    Text in UTF-8 or GBK never holds a zero byte, UTF-16 holds one in every ASCII character (the
    tabs, commas, digits and line ends of any table): on the odd bytes when little-endian.
    GB18030 decodes almost any run of high bytes into some rare character, so a GB18030
    reading only counts when it looks like Chinese text: mostly GB2312 (common) characters.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\0" in data[:4096]:
        head = data[:4096]
        big_endian = data.startswith(codecs.BOM_UTF16_BE) or (
            not data.startswith(codecs.BOM_UTF16_LE) and head[::2].count(0) > head[1::2].count(0)
        )
        try:
            return data.decode("utf-16-be" if big_endian else "utf-16-le").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise UnreadableFile("CSV 文件编码无法识别（UTF-16 文字不完整）") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    wide = [c for c in text if ord(c) >= 0x80]
    rare = sum(1 for c in wide if not _in_gb2312(c))
    if not text or (wide and rare > len(wide) * RARE_CHAR_SHARE):
        raise UnreadableFile("CSV 文件编码无法识别")
    return text


def _suffix(filename: str) -> str:
    """A file name's extension, lower case, without its dot ("" when it has none)."""
    return PurePath(filename).suffix.lower().removeprefix(".")


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Finding the columns


_normalize = functools.lru_cache(maxsize=_CACHE_SIZE)(normalize)


def _is_str(value: Cell) -> bool:
    return isinstance(value, str)


def _text(value: Cell) -> str:
    return value if isinstance(value, str) else ""


class _Memo(dict):
    """A bounded cache filled by `find` on a miss, so a hit is a plain dict lookup: the layout
    search asks it for every cell of the header rows."""

    def __init__(self, find: Callable[[Any], Any]):
        super().__init__()
        self.find = find

    def __missing__(self, key: Any) -> Any:
        if len(self) >= _CACHE_SIZE:
            self.clear()
        value = self[key] = self.find(key)
        return value


def _lookup(words: Iterable[str], column_id: str, into: dict[str, set[str]]) -> None:
    for word in words:
        into.setdefault(normalize(word), set()).add(column_id)


class _Matcher:
    """Header words of every column, normalised once, with lookups for flat and two-level cells.

    A header names a column when exactly one column claims it. Words the rules list (`flat`,
    group + header) are tried before words derived from them (group + unit: 警示教育(场)), and
    the cell as written before the cell stripped of brackets and of `header_prefixes` /
    `header_suffixes` (开展宣讲次数, 发现隐患数).
    """

    def __init__(self, rules: Any):
        self.listed: dict[str, set[str]] = {}
        self.derived: dict[str, set[str]] = {}
        self.pairs: dict[tuple[str, str], set[str]] = {}
        for column in rules.columns:
            # a one-level header has no group: its header and synonyms name it alone
            groups = [column.group, *column.group_synonyms] if column.group else []
            headers = [column.header, *column.synonyms]
            one_level = () if groups else headers
            _lookup((*column.flat, column.title, *one_level), column.id, self.listed)
            _lookup((g + h for g in groups for h in headers), column.id, self.derived)
            _lookup((g + column.unit for g in groups), column.id, self.derived)
            for g in groups:
                for h in headers:
                    self.pairs.setdefault((normalize(g), normalize(h)), set()).add(column.id)
        self.order = [c.id for c in rules.columns]
        self.group_forms = {g for g, _ in self.pairs}
        table = rules.table
        self.prefixes = [normalize(w) for w in table.get("header_prefixes", [])]
        self.suffixes = [normalize(w) for w in table.get("header_suffixes", [])]
        self.reporter_labels = {normalize(w) for w in table.get("reporter_labels", [])}
        self.total_labels = {normalize(w) for w in table.get("total_row_labels", [])}
        self.header_row_labels = {normalize(w) for w in table.get("header_row_labels", [])}
        self.value_labels = {normalize(w) for w in table.get("vertical_value_labels", [])}
        self.layout_words = self.value_labels | {
            normalize(w) for w in table.get("vertical_labels", [])
        }
        self._forms: dict[str, list[str]] = {}
        # the column a header cell names alone (宣讲场次), or None
        self.single: dict[str, str | None] = _Memo(self._find_single)
        # the column a group cell and the sub-header under it name (宣讲活动 / 场次), or None
        self.pair: dict[tuple[str, str], str | None] = _Memo(self._find_pair)
        # whether a cell may be a group over sub-headers (only then is a pair worth looking up)
        self.is_group: dict[str, bool] = _Memo(
            lambda text: any(f in self.group_forms for f in self.forms(text))
        )
        # whether a cell labels a 累计/合计 row (numbers and blanks do not)
        self.total: dict[Cell, bool] = _Memo(lambda cell: _is_str(cell) and self._is_total(cell))
        # the value after a reporter label in a cell or line (see _labelled_value)
        self.labelled: dict[Cell, str | None] = _Memo(
            lambda cell: _labelled_value(cell, self) if _is_str(cell) else None
        )

    def forms(self, text: str) -> list[str]:
        """Normalised readings of a header cell, most literal first."""
        if text not in self._forms:
            if len(self._forms) >= _CACHE_SIZE:
                self._forms.clear()
            found = [normalize(text), normalize(_BRACKETED.sub("", text))]
            for form in list(found):
                for prefix in self.prefixes:
                    if form.startswith(prefix):
                        found.append(form[len(prefix) :])
                for suffix in self.suffixes:
                    if form.endswith(suffix):
                        found.append(form[: -len(suffix)])
            self._forms[text] = [f for n, f in enumerate(found) if f and f not in found[:n]]
        return self._forms[text]

    @staticmethod
    def _one(found: set[str] | None) -> str | None:
        return next(iter(found)) if found and len(found) == 1 else None

    def _find_single(self, text: str) -> str | None:
        for table in (self.listed, self.derived):
            for form in self.forms(text):
                hit = self._one(table.get(form))
                if hit:
                    return hit
        return None

    def _find_pair(self, key: tuple[str, str]) -> str | None:
        group, header = key
        for g in self.forms(group):
            for h in self.forms(header):
                hit = self._one(self.pairs.get((g, h)))
                if hit:
                    return hit
        return None

    def _is_total(self, text: str) -> bool:
        norm = _normalize(text)
        return bool(norm) and any(label in norm for label in self.total_labels)


@dataclass
class _Layout:
    """Where a table's figures are: one entry per column found."""

    grid: _Grid
    vertical: bool
    top: int  # first row of the header (of the labels, if vertical): 填报单位 is above it
    columns: dict[str, tuple[int, str]]  # id → (column index, or row index if vertical; header)
    header_rows: tuple[int, ...] = ()  # horizontal layout
    value_col: int = -1  # vertical layout: the column holding the figures


def _row(rows: Grid, index: int) -> list[Cell]:
    return rows[index] if 0 <= index < len(rows) else []


def _cell(row: Sequence[Cell], index: int) -> Cell:
    return row[index] if 0 <= index < len(row) else ""


def _stripped(rows: Grid) -> list[list[str]]:
    """Each cell's text without surrounding white space ('' for numbers and blanks), worked
    out once per sheet: the layout scans look at every cell several times."""
    return [[v.strip() if isinstance(v, str) else "" for v in row] for row in rows]


def _horizontal(grid: _Grid, texts: list[list[str]], m: _Matcher) -> _Layout | None:
    """The header row (or group row over sub-headers) naming the most columns, the first on a
    tie; None when none names MIN_COLUMNS.

    Rows are tried by how many columns their words could name at most, so the search stops
    once no row left can beat the best found: usually right after the header row.
    """
    words = [len(row) - row.count("") for row in texts] + [0]  # text cells per row
    rows = range(min(len(grid.rows), HEADER_SCAN_ROWS))
    most = [min(words[r] + words[r + 1], len(m.order)) for r in rows]
    best: tuple[int, list[str | None], tuple[int, ...]] | None = None
    # (columns named, not under a 累计 title, -row): higher wins, so of two tables on a sheet
    # naming as many columns, the week's beats the running totals' above it
    best_key = (MIN_COLUMNS - 1, True, 0)
    for r in sorted(rows, key=most.__getitem__, reverse=True):
        if (most[r], True, -r) <= best_key:
            if most[r] < best_key[0]:
                break
            continue
        if (min(words[r], len(m.order)), True, -r) <= best_key and not _has_group(texts[r], m):
            continue  # read alone, row r cannot beat the best
        named, hits, header_rows = _header_at(texts, r, m)
        key = (named, not _under_total_title(texts, r, m), -r)
        if key > best_key:
            best, best_key = (r, hits, header_rows), key
    if best is None:
        return None
    r, hits, header_rows = best
    headers = _header_texts(texts, header_rows, m)
    return _Layout(grid, False, r, _first_cells(hits, headers), header_rows=header_rows)


def _under_total_title(texts: list[list[str]], r: int, m: _Matcher) -> bool:
    """Whether the nearest line above a header is a title saying 累计 (一、截至6月18日累计)."""
    above = next((row for row in reversed(texts[max(0, r - 2) : r]) if any(row)), [])
    return any(m.total[cell] for cell in above if cell)


def _header_at(
    texts: list[list[str]], r: int, m: _Matcher
) -> tuple[int, list[str | None], tuple[int, ...]]:
    """(columns named, the column each cell names or None, header rows) for row r read alone,
    or as group cells over the sub-headers in row r+1 when that names more. Cells are looked
    up a row at a time (map), not one by one."""
    top, below = texts[r], _row(texts, r + 1)
    single_of = m.single
    hits = list(map(single_of.__getitem__, top))
    named = _count_named(hits)
    if not any(below) or not _has_group(top, m):
        return named, hits, (r,)
    top, below = _same_width(top, below)
    pairs = list(map(m.pair.__getitem__, zip(accumulate(top, _carry), below, strict=True)))
    if not any(pairs):  # without one group/sub-header pair this is just row r+1 read alone
        return named, hits, (r,)
    hits += [None] * (len(top) - len(hits))
    double = [
        pair or (single_of[text] if text else hit)
        for pair, text, hit in zip(pairs, below, hits, strict=True)
    ]
    named_double = _count_named(double)
    return (named_double, double, (r, r + 1)) if named_double > named else (named, hits, (r,))


def _count_named(hits: list[str | None]) -> int:
    found = set(hits)
    return len(found) - (None in found)


def _same_width(top: list[str], below: list[str]) -> tuple[list[str], list[str]]:
    width = max(len(top), len(below))
    return top + [""] * (width - len(top)), below + [""] * (width - len(below))


def _header_texts(texts: list[list[str]], header_rows: tuple[int, ...], m: _Matcher) -> list[str]:
    """Each column's header as the office reads it: the cell, or group/sub-header when the
    pair names the column."""
    if len(header_rows) == 1:
        return texts[header_rows[0]]
    top, below = _same_width(texts[header_rows[0]], texts[header_rows[1]])
    groups = list(accumulate(top, _carry))  # merged group cells come back blank right of the first
    return [
        f"{group}/{text}" if m.pair[group, text] else text or above
        for group, text, above in zip(groups, below, top, strict=True)
    ]


def _has_group(texts: list[str], m: _Matcher) -> bool:
    return any(map(m.is_group.__getitem__, texts))


def _carry(group: str, text: str) -> str:
    return text or group


def _first_cells(hits: list[str | None], headers: list[str]) -> dict[str, tuple[int, str]]:
    """Each column hit, with the index and header of the first cell naming it."""
    first: dict[str, tuple[int, str]] = {}
    for j, hit in enumerate(hits):
        if hit and hit not in first:
            first[hit] = (j, headers[j])
    return first


def _vertical(grid: _Grid, head: list[list[str]], m: _Matcher, to_beat: int) -> _Layout | None:
    """The vertical layout naming the most columns, or None when it cannot name more than
    `to_beat`: each label row names one column at most. `head`: the top rows' texts."""
    rows = grid.rows[:VERTICAL_SCAN_ROWS]
    if len(rows) <= to_beat:
        return None  # each label row names one column at most
    width = VERTICAL_SCAN_COLS + 1
    texts = [row[:width] for row in head[: len(rows)]]
    texts += _stripped([row[:width] for row in rows[len(texts) :]])
    if sum(map(any, texts)) <= to_beat:
        return None
    best: _Layout | None = None
    for c in range(VERTICAL_SCAN_COLS):
        found: dict[str, tuple[int, str]] = {}
        last_label_col = c
        group = ""
        for i, row in enumerate(texts):
            label, beside = _cell(row, c), _cell(row, c + 1)
            group = label or group  # a merged group cell runs down the label column
            hit, header = m.single[label], label
            if not hit and beside:
                hit, header = m.pair[group, beside], f"{group}/{beside}"
                if hit:
                    last_label_col = c + 1
            if hit and hit not in found:
                found[hit] = (i, header)
        if found and (best is None or len(found) > len(best.columns)):
            value_col = _vertical_value_col(rows, m, found, last_label_col)
            if value_col >= 0:
                top = min(i for i, _ in found.values())
                best = _Layout(grid, True, top, found, value_col=value_col)
    return best


def _vertical_value_col(
    rows: Grid, m: _Matcher, found: dict[str, tuple[int, str]], label_col: int
) -> int:
    """The figures' column: the one headed 数量/本周…, else the first right of the labels with
    any entry on the labelled rows (a 累计 column never counts)."""
    width = max((len(r) for r in rows), default=0)
    first_label_row = min(i for i, _ in found.values())
    for row in rows[: first_label_row + 1]:
        for j in range(label_col + 1, width):
            if _normalize(_text(_cell(row, j))) in m.value_labels:
                return j
    for j in range(label_col + 1, width):
        heads = [_text(_cell(r, j)) for r in rows[:first_label_row]]
        if any(m.total[h] for h in heads):
            continue
        if any(_cell(rows[i], j) not in ("", None) for i, _ in found.values()):
            return j
    return -1


def _best_table(grids: Iterable[_Grid], m: _Matcher) -> _Layout | None:
    """The sheet or Word table with the most 附件1 columns (at least MIN_COLUMNS)."""
    best: _Layout | None = None
    for grid in grids:
        texts = _stripped(grid.rows[: HEADER_SCAN_ROWS + 1])
        layout = _horizontal(grid, texts, m)
        if _beats(layout, best):
            best = layout
        to_beat = len(best.columns) if best else MIN_COLUMNS - 1
        layout = _vertical(grid, texts, m, to_beat)
        if _beats(layout, best):
            best = layout
    return best


def _beats(layout: _Layout | None, best: _Layout | None) -> bool:
    found = len(layout.columns) if layout else 0
    return found >= MIN_COLUMNS and (best is None or found > len(best.columns))


# ---------------------------------------------------------------------------------------------
# Reading the figures


def _address(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return f"{letters}{row + 1}"


def _as_written(value: Cell) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _longest_first(words: Iterable[str]) -> list[str]:
    return sorted({simplify(w) for w in words}, key=len, reverse=True)


@dataclass
class _ValueWords:
    """How figures may be written (rules.values), in the form cells are compared in."""

    zero: set[str]
    prefixes: list[str]
    suffixes: list[str]
    units: list[str]
    multipliers: dict[str, int]
    columns: dict[str, Any] = field(default_factory=dict)  # id → the rules' Column
    # figures of cells already read, by (type, value): units write the same few figures and
    # texts ("3场", "约500") everywhere; the type keeps True apart from 1
    read: dict[tuple[type, Cell], tuple[Decimal, bool] | None] = field(
        init=False, repr=False, compare=False
    )
    unit_forms: set[str] = field(init=False, repr=False, compare=False)  # 场, 人次 … normalised

    def __post_init__(self) -> None:
        self.read = _Memo(lambda key: _figure(key[1], self))
        self.unit_forms = {normalize(unit) for unit in self.units}

    def figures(self, values: list[Cell]) -> list[tuple[Decimal, bool] | None]:
        """`_figure` of each value, looked up a row at a time."""
        return list(map(self.read.__getitem__, zip(map(type, values), values, strict=True)))

    def fit(
        self, column_id: str, figure: tuple[Decimal, bool] | None
    ) -> tuple[int | float, bool] | None:
        """A figure as its column takes it: a whole number, or a decimal kept to the column's
        places (more places are rounded and marked approximate); None when the column refuses
        it (a fraction in a whole-number column, an approximation where `approx` is false)."""
        if figure is None:
            return None
        number, approx = figure
        column = self.columns.get(column_id)
        if column is not None and column.type == "decimal":
            kept = round(number, column.places)
            value: int | float = float(kept)
            approx = approx or kept != number
        elif number != number.to_integral_value():
            return None
        else:
            value = int(number)
        if approx and column is not None and not column.approx:
            return None
        return value, approx

    @classmethod
    def of(cls, rules: Any) -> "_ValueWords":
        values = rules.values
        units = [c.unit for c in rules.columns] + list(values.get("unit_suffixes", []))
        return cls(
            zero={normalize(z) for z in values.get("zero", [])},
            prefixes=_longest_first(values.get("approx_prefixes", [])),
            suffixes=_longest_first(values.get("approx_suffixes", [])),
            units=_longest_first(units),
            multipliers={simplify(k): int(v) for k, v in values.get("multipliers", {}).items()},
            columns={c.id: c for c in rules.columns},
        )


def _figure(value: Cell, words: _ValueWords) -> tuple[Decimal, bool] | None:
    """(figure, approximate?) for one cell, or None when the cell is not a readable number;
    a fraction is kept for the column to take or refuse (`_ValueWords.fit`)."""
    if value is None or value == "":
        return Decimal(0), False
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (Decimal(value), False) if value >= 0 else None
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            return None
        return Decimal(repr(value)), False
    if not isinstance(value, str):
        return None  # dates and times
    return _text_figure(value, words)


def _text_figure(value: str, words: _ValueWords) -> tuple[Decimal, bool] | None:
    text = re.sub(r"\s+", "", simplify(value))
    bracketed = _BRACKETED_UNIT.match(text)  # 5（场） reads as 5场; (5) stays unreadable
    if bracketed and bracketed.group(2) in words.units:
        text = bracketed.group(1) + bracketed.group(2)
    if _normalize(text) in words.zero:
        return Decimal(0), False
    if _NEGATIVE.match(text):
        return None
    approx = False
    for prefix in words.prefixes:
        if text.startswith(prefix) and len(text) > len(prefix):
            text, approx = text[len(prefix) :], True
            break
    changed = True
    while changed:
        changed = False
        for unit in words.units:
            if text.endswith(unit) and len(text) > len(unit):
                text, changed = text[: -len(unit)], True
        for suffix in words.suffixes:
            if text.endswith(suffix) and len(text) > len(suffix):
                text, changed, approx = text[: -len(suffix)], True, True
    factor = 1
    for word, multiplier in words.multipliers.items():
        if text.endswith(word) and len(text) > len(word):
            text, factor, approx = text[: -len(word)], multiplier, True
            break
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    if not _NUMBER.match(text):
        return None
    return Decimal(text) * factor, approx


def _may_hold_errors(archive: zipfile.ZipFile) -> bool:
    """False only when no part of the zip can mark a cell as an error, so the slow openpyxl
    reading in `_error_cells` would find none (most files: blanks there are true blanks).
    Parts are streamed; parts that hold no cells by their standard names (workbook, styles,
    theme, shared strings, properties, relationships) are skipped: what is left is the
    worksheets, and whatever a program names otherwise."""
    try:
        for member in archive.infolist():
            if _CELL_FREE_PART.match(member.filename):
                continue
            with archive.open(member) as part:
                tail = part.read(4)
                if tail[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in tail:
                    return True  # UTF-16 XML: left to openpyxl
                while chunk := part.read(1 << 16):
                    window = tail + chunk
                    if _ERROR_TYPE.search(window):
                        return True
                    tail = window[-16:]
                if _ERROR_TYPE.search(tail):
                    return True
    except Exception:  # whatever zipfile makes of it, openpyxl will have the last word
        return True
    return False


def _error_cells(data: bytes, archive: zipfile.ZipFile | None) -> dict[str, dict[Any, str]]:
    """Error values (#REF!, #DIV/0!) of every sheet, by sheet and (row, column).

    python-calamine reads error cells as '' (dimastbk/python-calamine#105), which would pass
    them off as blanks = 0. openpyxl (xlsx) and xlrd (xls, binary WPS et) keep the cached
    error, so the file is read again by one of them, but only when a cheap scan finds an error
    mark at all: most files have none. It is done while the file is open, so what is sent back
    from the sandbox is complete; a file the second reader rejects keeps calamine's reading.
    """
    try:
        if archive is not None and _may_hold_errors(archive):
            return _xlsx_error_cells(data)
        if data.startswith(OLE2_MAGIC) and _biff_may_hold_errors(data):
            return _xls_error_cells(data)
    except Exception:
        pass
    return {}


def _xlsx_error_cells(data: bytes) -> dict[str, dict[Any, str]]:
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    found: dict[str, dict[Any, str]] = {}
    for sheet in workbook.worksheets:
        cells = {
            (cell.row - 1, cell.column - 1): str(cell.value)
            for row in sheet.iter_rows(max_row=MAX_ROWS, max_col=MAX_COLS)
            for cell in row
            if getattr(cell, "data_type", None) == "e"
        }
        if cells:
            found[sheet.title] = cells
    workbook.close()
    return found


def _biff_may_hold_errors(data: bytes) -> bool:
    """False only when the workbook stream holds no cell record carrying an error: a BOOLERR
    with its error flag set, or a FORMULA whose cached result is an error. False alarms only
    cost an xlrd reading; the stream comes from xlrd's compound-file reader."""
    document = CompDoc(data, logfile=io.StringIO())
    workbook, book = OLE2_WORKBOOK_STREAMS
    stream = document.get_named_stream(workbook) or document.get_named_stream(book)
    return stream is None or _BIFF_ERROR.search(stream) is not None


def _xls_error_cells(data: bytes) -> dict[str, dict[Any, str]]:
    book = xlrd.open_workbook(file_contents=data, logfile=io.StringIO())
    found: dict[str, dict[Any, str]] = {}
    for cells in book.sheets():
        errors = {
            (r, c): xlrd.error_text_from_code.get(cells.cell_value(r, c), "#ERROR")
            for r in range(min(cells.nrows, MAX_ROWS))
            for c in range(min(cells.ncols, MAX_COLS))
            if cells.cell_type(r, c) == xlrd.XL_CELL_ERROR
        }
        if errors:
            found[cells.name] = errors
    return found


def _reporter(layout: _Layout, m: _Matcher, data_row: Sequence[Cell] | None) -> str | None:
    """The 填报单位 value as written: from a 'label：value' line or a label cell and its
    neighbour above the table or in loose text; else the data row's 单位 cell."""
    lines: list[list[Cell]] = layout.grid.rows[: layout.top]
    lines += [[t] for t in layout.grid.loose_text]
    for line in lines:
        labelled = list(map(m.labelled.__getitem__, line))
        if labelled.count(None) == len(labelled):
            continue  # no reporter label on this line (most of them)
        cells = [c if isinstance(c, str) else "" for c in line]
        for j, text in enumerate(cells):
            if not text:
                continue
            value = labelled[j]
            if value == "":  # label cell, value in the next filled cell unless that is a label
                beside = next((c.strip() for c in cells[j + 1 :] if c.strip()), "")
                is_label = _LABEL_VALUE.search(beside) or _normalize(beside) in m.layout_words
                value = "" if is_label else beside
            if value:
                return value
    if data_row is not None:
        for r in layout.header_rows:
            for j, head in enumerate(_row(layout.grid.rows, r)):
                if _normalize(_text(head)) in m.reporter_labels:
                    name = _text(_cell(data_row, j)).strip()
                    if name and not m.total[name]:
                        return name
    return None


def _labelled_value(text: str, m: _Matcher) -> str | None:
    """The value after a reporter label in `text` ('' when the label stands alone or is left
    blank: 填报单位：    填报人：…), or None when `text` holds no reporter label."""
    for segment in re.split(r"\s{2,}|\u3000+", text.strip()):
        label, *rest = _LABEL_VALUE.split(segment, maxsplit=1)
        value = rest[0] if rest else ""
        if label.strip() and _normalize(label) in m.reporter_labels:
            return _VALUE_END.split(value.strip(), maxsplit=1)[0].strip()
    return None


def _data_rows(
    rows: Grid,
    first: int,
    indexes: list[int],
    lead: int,
    m: _Matcher,
    words: "_ValueWords",
    notes: list[str],
) -> list[tuple[int, str, Sequence[Cell], bool]]:
    """(row, label, figures, filled?) of each row under the header that may be a unit's own:
    not a 累计/合计 row, not a row of the header (栏次, 计量单位), and labelled or filled."""
    figures_of, last = itemgetter(*indexes), max(indexes)
    found = []
    for r in range(first, len(rows)):
        row = rows[r]
        figures = figures_of(row) if len(row) > last else [_cell(row, j) for j in indexes]
        filled = figures.count("") + figures.count(None) < len(figures)
        labels = list(map(m.total.__getitem__, row[:lead]))
        if True in labels:
            total = row[labels.index(True)].strip()
            if filled:
                notes.append(f"{total} row ignored")
            continue
        label = "".join(_text(cell).strip() for cell in row[:lead])
        if _normalize(label) in m.header_row_labels or (
            filled and _belongs_to_header(figures, words)
        ):
            notes.append(f"表头下的“{label or _as_written(figures[0])}”行不是数据")
            continue
        if filled or label:
            found.append((r, label, figures, filled))
    return found


def _belongs_to_header(figures: Sequence[Cell], words: "_ValueWords") -> bool:
    """Units of measure across (场 | 人次 | 个), or the columns numbered 1, 2, 3 … across."""
    written = [f for f in figures if f != "" and f is not None]
    if all(type(f) is str for f in written):
        return all(_normalize(f) in words.unit_forms for f in written)
    if len(written) < 5 or not all(type(f) in (int, float) for f in written):
        return False
    return written == list(range(1, len(written) + 1))  # 1 == 1.0: ints and floats alike


def _read_table(
    layout: _Layout, tables: Tables, own_row: Callable[[str], bool] | None = None
) -> StatsTable:
    grid, m, words = layout.grid, tables.matcher, tables.words
    columns = {cid: layout.columns[cid] for cid in m.order if cid in layout.columns}
    notes: list[str] = []
    # (column id, row, col, header, value) for every column found
    cells: list[tuple[str, int, int, str, Cell]] = []
    data_row: list[Cell] | None = None
    label, data_rows = "", 1
    if layout.vertical:
        notes.append("竖排表格 (vertical layout)")
        for cid, (r, header) in columns.items():
            cells.append((cid, r, layout.value_col, header, _cell(grid.rows[r], layout.value_col)))
    else:
        indexes = [j for j, _ in columns.values()]
        lead = max(min(indexes), 1)  # the label cells left of the figures
        rows = _data_rows(grid.rows, layout.header_rows[-1] + 1, indexes, lead, m, words, notes)
        filled = [row for row in rows if row[3]]
        data_rows = len(filled)
        own = [row for row in rows if own_row(row[1])] if own_row else []
        chosen = (own or filled or [None])[0]
        if chosen is None:
            notes.append("未找到数据行 (no data row under the header)")
        else:
            r, label, figures, _ = chosen
            data_row = grid.rows[r]
            cells = [
                (cid, r, j, header, value)
                for (cid, (j, header)), value in zip(columns.items(), figures, strict=True)
            ]
    errors = tables.opened.errors.get(grid.sheet, {})
    if errors:
        cells = [(c, r, j, h, errors.get((r, j), v) if v == "" else v) for c, r, j, h, v in cells]
    table = StatsTable(
        filename=tables.opened.filename,
        sheet=grid.sheet,
        reporter=_reporter(layout, m, data_row),
        columns_found=list(columns),
        notes=notes,
        row_label=label,
        data_rows=data_rows,
    )
    figures = words.figures([cell[4] for cell in cells])
    figures = [words.fit(cell[0], figure) for cell, figure in zip(cells, figures, strict=True)]
    for (cid, r, j, header, value), figure in zip(cells, figures, strict=True):
        if figure is not None:
            table.values[cid] = figure[0]
        if figure is None or figure[1]:
            where = BadCell(grid.sheet, _address(r, j), cid, header, _as_written(value))
            (table.bad_cells if figure is None else table.approximations).append(where)
    return table
