"""Read 附件1, the activity statistics table, from one attachment.

Units fill the table in Excel, WPS, Word or a CSV export and drift from any template:
reworded, single- or two-level headers, traditional script, vertical layouts, units and
approximations inside cells. This module finds the table by its column headers (the words come
from `rules/columns.toml`), picks the unit's own data row and reads every figure, reporting each
cell it cannot read instead of guessing. Spreadsheets are read with python-calamine, Word tables
with python-docx; every file is size- and shape-checked first so one hostile attachment cannot
stall the run.
"""

import csv
import functools
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import zip_longest
from typing import Any

import docx
import openpyxl
from python_calamine import CalamineWorkbook

from mailproc.text import normalize, simplify

MAX_BYTES = 50 * 1024 * 1024
MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # a zip bomb dressed as xlsx/docx; 附件1 is ~20 KB
MAX_ROWS = 5_000
MAX_COLS = 200
MIN_COLUMNS = 3  # headers of rules.columns needed before a table counts as 附件1
HEADER_SCAN_ROWS = 40  # the header sits near the top; the rest is data or notes
VERTICAL_SCAN_ROWS = 120
VERTICAL_SCAN_COLS = 6
RARE_CHAR_SHARE = 0.2  # of non-ASCII characters outside GB2312 before a CSV reads as noise

SPREADSHEET_KINDS = frozenset({"xlsx", "xls", "et", "ods"})
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_BRACKETED = re.compile(r"[（(\[【〔][^）)\]】〕]*[）)\]】〕]")
_LABEL_VALUE = re.compile(r"[:：]")
_VALUE_END = re.compile(r"\s{2,}|\u3000|\s+(?=\S{1,10}[:：])")
_NEGATIVE = re.compile(r"^[-−－–]\s*\d")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
# An error cell's type attribute (t="e") as written, or with a reference or entity in its value
_ERROR_TYPE = re.compile(rb"t\s*=\s*[\"'][e&]")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip member's local header; sizes of name, extra last
_INFLATERS = {
    zipfile.ZIP_STORED: bytes,
    zipfile.ZIP_DEFLATED: lambda packed: zlib.decompressobj(-15).decompress(packed),
}
_CACHE_SIZE = 1 << 16  # distinct cell texts remembered; a run repeats the same headers and words


class UnreadableFile(Exception):
    """A spreadsheet or document that cannot be opened: cut off, encrypted, corrupt, too big."""


@dataclass
class BadCell:
    sheet: str
    cell: str
    column: str
    header: str
    text: str


@dataclass
class StatsTable:
    filename: str
    sheet: str
    reporter: str | None
    values: dict[str, int] = field(default_factory=dict)
    columns_found: list[str] = field(default_factory=list)
    bad_cells: list[BadCell] = field(default_factory=list)
    approximations: list[BadCell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Cell = Any  # what calamine gives: str, int, float, bool, date/time, or '' for blank
Grid = list[list[Cell]]


def read_stats(data: bytes, filename: str, kind: str, rules: Any) -> StatsTable | None:
    """The 附件1 figures in one attachment.

    None when the file is readable but holds no 附件1 table (a report without a table, a photo,
    an old binary .doc whose tables cannot be read); `UnreadableFile` when a file that should be
    a spreadsheet or document cannot be opened.
    """
    if data.startswith(_OLE2_MAGIC) and _ENCRYPTED_STREAM in data:
        raise UnreadableFile("文件已加密，无法打开 (encrypted document)")
    if kind in SPREADSHEET_KINDS:
        grids = _spreadsheet_grids(data)
    elif kind == "docx":
        grids = _docx_grids(data)
    elif kind == "csv" or (kind == "text" and filename.lower().endswith(".csv")):
        grids = _csv_grids(data)
    else:
        return None
    matcher, words = _prepared(rules)
    best = _best_table(grids, matcher)
    if best is None:
        return None
    return _read_table(best, filename, matcher, words, data)


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
    zip_workbook: bool = False  # xlsx-like: error cells can be re-checked with openpyxl


def _check_size(data: bytes) -> None:
    if len(data) > MAX_BYTES:
        raise UnreadableFile(f"文件过大，超过 {MAX_BYTES // 2**20} MB (file too large)")


def _check_container(data: bytes) -> bool:
    """Refuse oversized files and broken or bomb-like zips; True when `data` is a zip."""
    _check_size(data)
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UnreadableFile(f"文件已损坏或不完整，无法打开 (corrupt zip: {exc})") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise UnreadableFile("文件解压后过大 (file too large when unpacked)")
    return True


def _too_big(rows: int, cols: int) -> UnreadableFile:
    return UnreadableFile(
        f"表格过大（{rows} 行 × {cols} 列，上限 {MAX_ROWS} 行 × {MAX_COLS} 列）(sheet too large)"
    )


def _spreadsheet_grids(data: bytes) -> list[_Grid]:
    is_zip = _check_container(data)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        grids = []
        for name in workbook.sheet_names:
            sheet = workbook.get_sheet_by_name(name)
            end = sheet.end
            rows, cols = (end[0] + 1, end[1] + 1) if end else (0, 0)
            if rows > MAX_ROWS or cols > MAX_COLS:
                raise _too_big(rows, cols)
            grid = sheet.to_python(skip_empty_area=False, nrows=MAX_ROWS)
            grids.append(_Grid(name, grid, [], zip_workbook=is_zip))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # CalamineError, OverflowError on absurd dates, Rust panics
        raise UnreadableFile(f"文件已损坏，无法打开 ({type(exc).__name__}: {exc})") from None
    return grids


def _docx_grids(data: bytes) -> list[_Grid]:
    _check_container(data)
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
    except Exception as exc:  # python-docx raises many types for a broken package
        raise UnreadableFile(f"文档已损坏，无法打开 ({type(exc).__name__}: {exc})") from None
    return grids


def _csv_grids(data: bytes) -> list[_Grid]:
    _check_size(data)
    text = _decode_csv(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    rows: Grid = []
    for row in csv.reader(io.StringIO(text, newline=""), dialect):
        if len(rows) >= MAX_ROWS or len(row) > MAX_COLS:
            raise _too_big(len(rows) + 1, len(row))
        rows.append(row)
    return [_Grid("csv", rows, [])]


def _decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030 (covers GBK/GB2312 from Chinese Excel).

    GB18030 decodes almost any run of high bytes into some rare character, so a GB18030
    reading only counts when it looks like Chinese text: mostly GB2312 (common) characters.
    """
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
        raise UnreadableFile("CSV 文件编码无法识别 (unknown text encoding)")
    return text


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Finding the columns


_normalize = functools.lru_cache(maxsize=_CACHE_SIZE)(normalize)


def _text(value: Cell) -> str:
    return value if isinstance(value, str) else ""


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
            groups = [column.group, *column.group_synonyms]
            headers = [column.header, *column.synonyms]
            _lookup((*column.flat, column.group + column.header), column.id, self.listed)
            _lookup((g + h for g in groups for h in headers), column.id, self.derived)
            _lookup((g + column.unit for g in groups), column.id, self.derived)
            for g in groups:
                for h in headers:
                    self.pairs.setdefault((normalize(g), normalize(h)), set()).add(column.id)
        self.order = [c.id for c in rules.columns]
        table = rules.table
        self.prefixes = [normalize(w) for w in table.get("header_prefixes", [])]
        self.suffixes = [normalize(w) for w in table.get("header_suffixes", [])]
        self.reporter_labels = {normalize(w) for w in table.get("reporter_labels", [])}
        self.total_labels = {normalize(w) for w in table.get("total_row_labels", [])}
        self.value_labels = {normalize(w) for w in table.get("vertical_value_labels", [])}
        self.layout_words = self.value_labels | {
            normalize(w) for w in table.get("vertical_labels", [])
        }
        self._forms: dict[str, list[str]] = {}
        self._singles: dict[str, str | None] = {}
        self._pairs: dict[tuple[str, str], str | None] = {}

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

    def single(self, text: str) -> str | None:
        """The column a header cell names alone (宣讲场次), or None."""
        if text not in self._singles:
            if len(self._singles) >= _CACHE_SIZE:
                self._singles.clear()
            self._singles[text] = self._find_single(text)
        return self._singles[text]

    def _find_single(self, text: str) -> str | None:
        for table in (self.listed, self.derived):
            for form in self.forms(text):
                hit = self._one(table.get(form))
                if hit:
                    return hit
        return None

    def pair(self, group: str, header: str) -> str | None:
        """The column named by a group cell and the sub-header under it (宣讲活动 / 场次)."""
        key = (group, header)
        if key not in self._pairs:
            if len(self._pairs) >= _CACHE_SIZE:
                self._pairs.clear()
            self._pairs[key] = self._find_pair(group, header)
        return self._pairs[key]

    def _find_pair(self, group: str, header: str) -> str | None:
        for g in self.forms(group):
            for h in self.forms(header):
                hit = self._one(self.pairs.get((g, h)))
                if hit:
                    return hit
        return None

    def is_total(self, text: str) -> bool:
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


def _horizontal(grid: _Grid, m: _Matcher) -> _Layout | None:
    best: _Layout | None = None
    texts = _stripped(grid.rows[: HEADER_SCAN_ROWS + 1])
    for r in range(min(len(grid.rows), HEADER_SCAN_ROWS)):
        single: dict[str, tuple[int, str]] = {}
        for j, value in enumerate(grid.rows[r]):
            hit = m.single(value) if isinstance(value, str) and value else None
            if hit and hit not in single:
                single[hit] = (j, value.strip())
        double: dict[str, tuple[int, str]] = {}
        paired = False  # without one group/sub-header pair this is just row r+1 read alone
        group = ""
        for j, (raw_top, below) in enumerate(
            zip_longest(texts[r], _row(texts, r + 1), fillvalue="")
        ):
            group = raw_top or group  # merged group cells come back blank right of the first
            hit, header = None, ""
            if below:
                hit = m.pair(group, below)
                header, paired = f"{group}/{below}", paired or bool(hit)
                if not hit:
                    hit, header = m.single(below), below
            elif raw_top:
                hit, header = m.single(raw_top), raw_top
            if hit and hit not in double:
                double[hit] = (j, header)
        candidates = [(single, (r,))]
        if paired:
            candidates.append((double, (r, r + 1)))
        for found, header_rows in candidates:
            if best is None or len(found) > len(best.columns):
                best = _Layout(grid, False, r, found, header_rows=header_rows)
    return best


def _vertical(grid: _Grid, m: _Matcher) -> _Layout | None:
    rows = grid.rows[:VERTICAL_SCAN_ROWS]
    texts = _stripped([row[: VERTICAL_SCAN_COLS + 1] for row in rows])
    best: _Layout | None = None
    for c in range(VERTICAL_SCAN_COLS):
        found: dict[str, tuple[int, str]] = {}
        last_label_col = c
        group = ""
        for i, row in enumerate(texts):
            label, beside = _cell(row, c), _cell(row, c + 1)
            group = label or group  # a merged group cell runs down the label column
            hit, header = m.single(label), label
            if not hit and beside:
                hit, header = m.pair(group, beside), f"{group}/{beside}"
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
        if any(m.is_total(h) for h in heads):
            continue
        if any(_cell(rows[i], j) not in ("", None) for i, _ in found.values()):
            return j
    return -1


def _best_table(grids: Iterable[_Grid], m: _Matcher) -> _Layout | None:
    """The sheet or Word table with the most 附件1 columns (at least MIN_COLUMNS)."""
    best: _Layout | None = None
    for grid in grids:
        for layout in (_horizontal(grid, m), _vertical(grid, m)):
            found = len(layout.columns) if layout else 0
            if found >= MIN_COLUMNS and (best is None or found > len(best.columns)):
                best = layout
    return best


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
    # figures of cell texts already read: units write the same few ("3场", "约500") everywhere
    read: dict[str, tuple[int, bool] | None] = field(default_factory=dict, compare=False)

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
        )


def _figure(value: Cell, words: _ValueWords) -> tuple[int, bool] | None:
    """(figure, approximate?) for one cell, or None when the cell is not a readable number."""
    if value is None or value == "":
        return 0, False
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (value, False) if value >= 0 else None
    if isinstance(value, float):
        return (int(value), False) if value.is_integer() and value >= 0 else None
    if not isinstance(value, str):
        return None  # dates and times
    if value not in words.read:
        if len(words.read) >= _CACHE_SIZE:
            words.read.clear()
        words.read[value] = _text_figure(value, words)
    return words.read[value]


def _text_figure(value: str, words: _ValueWords) -> tuple[int, bool] | None:
    text = re.sub(r"\s+", "", simplify(value))
    if _normalize(text) in words.zero:
        return 0, False
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
    number = Decimal(text) * factor
    if number != number.to_integral_value():
        return None
    return int(number), approx


def _may_hold_errors(data: bytes) -> bool:
    """False only when no part of the zip can mark a cell as an error, so the slow openpyxl
    reading in `_error_cells` would find none (most files: blanks there are true blanks).

    Parts are inflated straight from `data` (zipfile's reader costs more than the inflating);
    a part this cannot read plainly counts as one that may hold errors.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
        for info in infos:
            if info.flag_bits & 1 or info.compress_type not in _INFLATERS:
                return True  # encrypted, or a compression left to zipfile
            start = info.header_offset + _LOCAL_HEADER.size
            name_size, extra_size = _LOCAL_HEADER.unpack_from(data, info.header_offset)[-2:]
            packed = data[start + name_size + extra_size :][: info.compress_size]
            part = _INFLATERS[info.compress_type](packed)
            utf16 = part[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in part[:4]
            if utf16 or _ERROR_TYPE.search(part):
                return True
    except Exception:  # whatever openpyxl makes of it
        return True
    return False


def _error_cells(
    data: bytes, sheet: str, wanted: set[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    """Error values (#REF!, #DIV/0!) among some blank-looking cells of an xlsx sheet.

    python-calamine reads error cells as '' (dimastbk/python-calamine#105), which would pass
    them off as blanks = 0; openpyxl keeps the cached error, so those cells are asked again.
    """
    first, last = min(r for r, _ in wanted), max(r for r, _ in wanted)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            rows = workbook[sheet].iter_rows(min_row=first + 1, max_row=last + 1)
            return {
                (cell.row - 1, cell.column - 1): str(cell.value)
                for row in rows
                for cell in row
                if getattr(cell, "data_type", None) == "e"
                and (cell.row - 1, cell.column - 1) in wanted
            }
        finally:
            workbook.close()
    except Exception:  # WPS files openpyxl rejects: calamine's reading stands
        return {}


def _reporter(layout: _Layout, m: _Matcher, data_row: Sequence[Cell] | None) -> str | None:
    """The 填报单位 value as written: from a 'label：value' line or a label cell and its
    neighbour above the table or in loose text; else the data row's 单位 cell."""
    lines: list[list[str]] = [[_text(c) for c in row] for row in layout.grid.rows[: layout.top]]
    lines += [[t] for t in layout.grid.loose_text]
    for cells in lines:
        for j, text in enumerate(cells):
            if not text:
                continue
            value = _labelled_value(text, m)
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
                    if name and not m.is_total(name):
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


def _read_table(
    layout: _Layout, filename: str, m: _Matcher, words: "_ValueWords", data: bytes
) -> StatsTable:
    grid = layout.grid
    order = {cid: n for n, cid in enumerate(m.order)}
    columns = dict(sorted(layout.columns.items(), key=lambda kv: order[kv[0]]))
    notes: list[str] = []
    # (column id, row, col, header, value) for every column found
    cells: list[tuple[str, int, int, str, Cell]] = []
    data_row: list[Cell] | None = None
    if layout.vertical:
        notes.append("竖排表格 (vertical layout)")
        for cid, (r, header) in columns.items():
            cells.append((cid, r, layout.value_col, header, _cell(grid.rows[r], layout.value_col)))
    else:
        first_col = min(j for j, _ in columns.values())
        chosen = -1
        for r in range(layout.header_rows[-1] + 1, len(grid.rows)):
            row = grid.rows[r]
            labels = [_text(c) for c in row[: max(first_col, 1)]]
            filled = any(_cell(row, j) not in ("", None) for j, _ in columns.values())
            total = next((t.strip() for t in labels if m.is_total(t)), None)
            if total:
                if filled:
                    notes.append(f"{total} row ignored")
                continue
            if filled and chosen < 0:
                chosen = r
        if chosen < 0:
            notes.append("未找到数据行 (no data row under the header)")
        else:
            data_row = grid.rows[chosen]
            for cid, (j, header) in columns.items():
                cells.append((cid, chosen, j, header, _cell(data_row, j)))
    blanks = {(r, j) for _, r, j, _, value in cells if value == ""}
    if grid.zip_workbook and blanks and _may_hold_errors(data):
        errors = _error_cells(data, grid.sheet, blanks)
        cells = [(c, r, j, h, errors.get((r, j), v)) for c, r, j, h, v in cells]
    table = StatsTable(
        filename=filename,
        sheet=grid.sheet,
        reporter=_reporter(layout, m, data_row),
        columns_found=list(columns),
        notes=notes,
    )
    for cid, r, j, header, value in cells:
        figure = _figure(value, words)
        if figure is not None:
            table.values[cid] = figure[0]
        if figure is None or figure[1]:
            where = BadCell(grid.sheet, _address(r, j), cid, header, _as_written(value))
            (table.bad_cells if figure is None else table.approximations).append(where)
    return table
