"""The consolidated workbook: the table the office sends upward, instead of retyping 34 sheets.

Three sheets: the period's figures (units in rules order, grouped by category, the one- or
two-level headers of the rules' table, a 合计 row, missing and late units marked), the figures
added up to date, and the receipt log. Laid out to print on A4 landscape and to open the same
in WPS and Excel. Text that came from units is written as text, never as a formula.
"""

import copy
import datetime as dt
import io
import json
from itertools import groupby
from pathlib import Path
from typing import Any

import openpyxl
import sqlite_utils
from openpyxl.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from mailproc.archive import safe_name
from mailproc.labels import problem_words
from mailproc.ledger import received_by
from mailproc.outgoing.render import long_time
from mailproc.private import write_private
from mailproc.reports.stats import cumulative_stats, period_stats
from mailproc.rules import Column, Rules

FONT_NAME = (
    "宋体"  # SimSun: present in every Chinese Windows/WPS; LibreOffice maps it to a CJK font
)
# What makes a spreadsheet read a cell typed in as a formula: = + - @, their full-width forms
# (a Chinese input method types ＝; Excel and WPS read it as =), and a tab or carriage return
# before them (stripped on input, or a DDE payload's usual disguise)
FORMULA_STARTS = ("=", "+", "-", "@", "＝", "＋", "－", "＠", "\t", "\r")
THIN = Side(style="thin", color="808080")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
LEFT = Alignment(horizontal="left", vertical="center")
BODY_FONT = Font(name=FONT_NAME, size=10)
BOLD_FONT = Font(name=FONT_NAME, size=10, bold=True)
NO_FILL = PatternFill()
FILLS = {
    "header": PatternFill("solid", fgColor="DDEBF7"),
    "category": PatternFill("solid", fgColor="F2F2F2"),
    "missing": PatternFill("solid", fgColor="F8CBAD"),
    "late": PatternFill("solid", fgColor="FFE699"),
    "incomplete": PatternFill("solid", fgColor="FCE4D6"),
    "total": PatternFill("solid", fgColor="E2EFDA"),
}
STATUS_TEXT = {"on_time": "按时", "late": "逾期"}
FIGURE_WIDTH = 11  # characters: 设置咨询点 and （人次） each fit on one line
LANDSCAPE_A4_INCHES = 11.69
# Smallest print scale for one page across: 10-pt text stays 8 pt; below it, two pages
MIN_PRINT_SCALE = 0.8


def write(sheet: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Write one value, unstyled. Every cell mailproc writes goes through here: a text that a
    spreadsheet would run as a formula (FORMULA_STARTS; a unit's subject or name) stays text,
    marked with a quote prefix as Excel and WPS mark text typed with a leading apostrophe."""
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def put(sheet: Worksheet, row: int, column: int, value: Any, **style: Any) -> Cell:
    """Write one cell of a table (`write`), with its border, font and alignment.

    A style is made once per workbook: openpyxl files each font, border and fill it is given
    in the workbook's shared lists, hashing it anew every time (a 5,000-row receipt log spent
    seconds there), so a cell styled like one before takes that cell's style as it stands.
    Styles are told apart by the objects given, which the cache keeps alive: pass shared
    ones (BODY_FONT, LEFT, FILLS...), not new ones per cell."""
    cell = write(sheet, row, column, value)
    style.setdefault("font", BODY_FONT)
    style.setdefault("alignment", CENTER)
    style["border"] = BORDER
    cache = sheet.parent.__dict__.setdefault("_mailproc_styles", {})
    key = (cell.quotePrefix, *((name, id(setting)) for name, setting in style.items()))
    made = cache.get(key)
    if made is not None:
        cell._style = copy.copy(made[0])
        return cell
    for name, setting in style.items():
        setattr(cell, name, setting)
    cache[key] = (copy.copy(cell._style), list(style.values()))
    return cell


def save_private(book: openpyxl.Workbook, path: Path) -> None:
    """Save a workbook as `path`, 0600 like every report: it names units and their standing."""
    data = io.BytesIO()
    book.save(data)
    write_private(path, data.getvalue())


def report_path(folder: Path, stem: str, as_of: dt.datetime) -> Path:
    """A new file for a report as the ledger stood at `as_of`, named by that moment
    (安全月_周报_2019-06-13_截至0613-1105.xlsx): a later report, the tick's or the office's,
    never overwrites it; the same moment twice gets _2, _3."""
    base = safe_name(f"{stem}_截至{as_of:%m%d-%H%M}")
    path = folder / f"{base}.xlsx"
    number = 1
    while path.exists():
        number += 1
        path = folder / f"{base}_{number}.xlsx"
    return path


def _title(sheet: Worksheet, width: int, title: str, subtitle: str) -> None:
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=width)
    cell = write(sheet, 1, 1, title)
    cell.font = Font(name=FONT_NAME, size=14, bold=True)
    cell.alignment = CENTER
    cell = write(sheet, 2, 1, subtitle)
    cell.font = Font(name=FONT_NAME, size=10)
    cell.alignment = Alignment(horizontal="left", vertical="center")
    sheet.row_dimensions[1].height = 28


def _headers(sheet: Worksheet, rules: Rules, extra: list[str]) -> int:
    """序号 | 单位 | two-level 附件1 headers | extra columns; returns the number of columns."""
    bold = Font(name=FONT_NAME, size=10, bold=True)
    for column, label in ((1, "序号"), (2, "单位")):
        sheet.merge_cells(start_row=3, start_column=column, end_row=4, end_column=column)
        put(sheet, 3, column, label, font=bold, fill=FILLS["header"])
        put(sheet, 4, column, None, fill=FILLS["header"])
    column = 3
    for group, members in groupby(rules.columns, key=lambda c: c.group):
        members = list(members)
        if not group:  # one-level headers: each column's header over both rows
            for member in members:
                sheet.merge_cells(start_row=3, start_column=column, end_row=4, end_column=column)
                put(sheet, 3, column, _with_unit(member), font=bold, fill=FILLS["header"])
                put(sheet, 4, column, None, fill=FILLS["header"])
                column += 1
            continue
        if len(members) > 1:
            sheet.merge_cells(
                start_row=3, start_column=column, end_row=3, end_column=column + len(members) - 1
            )
        put(sheet, 3, column, group, font=bold, fill=FILLS["header"])
        for offset, member in enumerate(members):
            if offset:
                put(sheet, 3, column + offset, None, fill=FILLS["header"])
            # the unit on a line of its own: a narrow column never breaks 参加人次 mid-word
            put(sheet, 4, column + offset, _with_unit(member), font=bold, fill=FILLS["header"])
        column += len(members)
    for label in extra:
        sheet.merge_cells(start_row=3, start_column=column, end_row=4, end_column=column)
        put(sheet, 3, column, label, font=bold, fill=FILLS["header"])
        put(sheet, 4, column, None, fill=FILLS["header"])
        column += 1
    sheet.row_dimensions[4].height = 42
    return column - 1


def _with_unit(column: Column) -> str:
    """场次 over （场）: the unit on a line of its own, also where the header names it already
    (投入资金（万元）), never twice."""
    shown = f"（{column.unit}）"
    return f"{column.header.removesuffix(shown)}\n{shown}"


def _number_format(column: Column) -> str:
    """Whole numbers as General (as typed); a decimal column with its places: 0.00."""
    return f"0.{'0' * column.places}" if column.type == "decimal" else "General"


def _layout(sheet: Worksheet, width: int, extra_widths: list[int]) -> None:
    sheet.column_dimensions["A"].width = 5
    sheet.column_dimensions["B"].width = 22
    for column in range(3, width - len(extra_widths) + 1):
        sheet.column_dimensions[get_column_letter(column)].width = FIGURE_WIDTH
    for offset, size in enumerate(extra_widths):
        sheet.column_dimensions[
            get_column_letter(width - len(extra_widths) + 1 + offset)
        ].width = size
    sheet.freeze_panes = "C5"
    print_setup(sheet, header_rows="3:4", name_columns="A:B")


def print_setup(sheet: Worksheet, header_rows: str, name_columns: str | None = None) -> None:
    """A4 landscape, as many pages down as needed, the header rows on every page. One page
    wide when that keeps the text at MIN_PRINT_SCALE or larger; else two pages across, each
    repeating the unit names (`name_columns`), rather than 10-pt text shrunk to 6."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.print_options.horizontalCentered = True
    sheet.print_title_rows = header_rows
    printable = (LANDSCAPE_A4_INCHES - 0.8) * 96  # pixels between the margins at 100%
    needed = sum(_column_pixels(sheet, column) for column in range(1, sheet.max_column + 1))
    pages_across = 1 if needed * MIN_PRINT_SCALE <= printable else 2
    if pages_across > 1 and name_columns:
        sheet.print_title_cols = name_columns
    sheet.page_setup.fitToWidth = pages_across
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True


def _column_pixels(sheet: Worksheet, column: int) -> float:
    """A column's printed width at 100%, as Excel turns a width in characters into pixels."""
    dimension = sheet.column_dimensions.get(get_column_letter(column))
    width = dimension.width if dimension is not None and dimension.width else 8.43
    return width * 7 + 5


def _unit_rows(
    sheet: Worksheet,
    rules: Rules,
    figures: dict[str, dict[str, int]],
    totals: dict[str, int],
    status: dict[str, tuple[str, str]] | None = None,
) -> int:
    """Category rows, one row per unit, the 合计 row; returns the last row written."""
    width = 2 + len(rules.columns) + (3 if status is not None else 0)
    labels = dict(rules.categories)
    row, number = 5, 0
    for category, units in groupby(rules.units, key=lambda u: u.category):
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
        put(sheet, row, 1, labels.get(category, category), fill=FILLS["category"],
            font=BOLD_FONT, alignment=LEFT)  # fmt: skip
        row += 1
        for unit in units:
            number += 1
            values = figures.get(unit.name)
            put(sheet, row, 1, number)
            put(sheet, row, 2, unit.name, alignment=LEFT)
            for offset, column in enumerate(rules.columns):
                put(sheet, row, 3 + offset, values.get(column.id) if values else None,
                    number_format=_number_format(column))  # fmt: skip
            if status is not None:
                text, fill, first_received, versions = status[unit.name]
                put(sheet, row, width - 2, text, fill=FILLS[fill] if fill else NO_FILL)
                put(sheet, row, width - 1, first_received)
                put(sheet, row, width, versions)
            row += 1
    bold = Font(name=FONT_NAME, size=10, bold=True)
    put(sheet, row, 1, None, fill=FILLS["total"])
    put(sheet, row, 2, "合计", font=bold, fill=FILLS["total"])
    for offset, column in enumerate(rules.columns):
        put(sheet, row, 3 + offset, totals[column.id], font=bold, fill=FILLS["total"],
            number_format=_number_format(column))  # fmt: skip
    for column in range(3 + len(rules.columns), width + 1):
        put(sheet, row, column, None, fill=FILLS["total"])
    return row


def _receipts(
    db: sqlite_utils.Database, item: str, period: str, as_of: dt.datetime | None
) -> list[dict]:
    """The period's receipts (with sender and subject) received by `as_of`, in time order."""
    rows = db.query(
        "select r.*, m.sender, m.subject from receipts r join messages m on m.id = r.message "
        "where r.item = ? and r.period = ? order by r.received_at, r.id",
        [item, period],
    )
    return [row for row in rows if received_by(row, as_of)]


def _statuses(
    db: sqlite_utils.Database,
    item: str,
    period: str,
    counted: dict,
    as_of: dt.datetime | None,
    table_name: str,
) -> dict:
    """Per unit: (报送情况, fill, first receipt time, versions) for the period's table."""
    receipts: dict[str, list[dict]] = {}
    for row in sorted(_receipts(db, item, period, as_of), key=lambda r: r["version"]):
        receipts.setdefault(row["unit"], []).append(row)
    result = {}
    for unit, rows in receipts.items():
        first = rows[0]
        text = STATUS_TEXT.get(first["status"], first["status"])
        fill = "late" if first["status"] == "late" else None
        if unit not in counted:
            text, fill = f"{text}，{table_name}待更正", "incomplete"
        when = dt.datetime.fromisoformat(first["received_at"]).strftime("%m-%d %H:%M")
        result[unit] = (text, fill, when, len(rows))
    return result


def write_workbook(
    db: sqlite_utils.Database,
    rules: Rules,
    period: str,
    folder: Path,
    item_id: str | None = None,
    as_of: dt.datetime | None = None,
) -> tuple[Path, dict]:
    """Write the consolidated workbook of one period as the ledger stood at `as_of` (default:
    everything in it); returns its path and the period's stats."""
    stats = period_stats(db, rules, period, item_id, as_of)
    item, period = stats.item, stats.period
    now = as_of or dt.datetime.now(rules.timezone)
    deadline = item.deadline_for(period)
    named = item.period(period)
    label = named.titled(brackets=True) if item.periodic else item.label
    title = rules.table.get("summary_title") or f"{rules.campaign['name']}{rules.table['title']}"
    table_name = rules.table["name"]
    book = openpyxl.Workbook()

    sheet = book.active
    sheet.title = "本期汇总"
    width = _headers(sheet, rules, ["报送情况", "首次接收", "版本数"])
    _title(
        sheet,
        width,
        f"{title} · {label}",
        f"{rules.office['name']}汇总  截止时间：{long_time(deadline)}  已计入 "
        f"{len(stats.units)} 个单位，未计入 {len(stats.missing)} 个  生成：{now:%Y-%m-%d %H:%M}",
    )
    status = dict.fromkeys((u.name for u in rules.units), ("未报送", "missing", None, None))
    status.update(dict.fromkeys(stats.excused, ("免报", None, None, None)))
    status.update(
        {
            unit: (f"延期至 {when[5:16].replace('T', ' ')}", None, None, None)
            for unit, when in stats.extended.items()
        }
    )
    status.update(_statuses(db, item.id, period, stats.units, as_of, table_name))
    last = _unit_rows(sheet, rules, stats.units, stats.totals, status)
    notes = [
        f"{unit}：{'、'.join(c.title for c in rules.columns if c.id in columns)}为约数"
        for unit, columns in stats.approximate.items()
    ]
    if stats.unconfirmed:
        notes.append(
            f"{'、'.join(stats.unconfirmed)}：数据来自未登记或未通过验证的发件地址，待办公室核实"
        )
    for offset, note in enumerate(
        [f"注：同一单位多次报送的，以最新一版可读取的{table_name}为准。", *notes]
    ):
        cell = write(sheet, last + 2 + offset, 1, note)
        cell.font = Font(name=FONT_NAME, size=9)
    _layout(sheet, width, [16, 12, 7])

    if item.periodic:
        cumulative = cumulative_stats(db, rules, period, item, as_of)
        sheet = book.create_sheet("累计")
        width = _headers(sheet, rules, [])
        _title(sheet, width, f"{title} · 累计（截至{label}）", rules.office["name"])
        _unit_rows(sheet, rules, cumulative["units"], cumulative["totals"])
        _layout(sheet, width, [])

    sheet = book.create_sheet("报送记录")
    headings = [
        "单位",
        "类别",
        "版本",
        "接收时间",
        "是否按时",
        "是否完整",
        "问题",
        "发件人",
        "邮件主题",
    ]
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headings))
    write(sheet, 1, 1, f"报送记录 · {item.name} · {label}").font = Font(
        name=FONT_NAME, size=14, bold=True
    )
    bold = Font(name=FONT_NAME, size=10, bold=True)
    for column, heading in enumerate(headings, 1):
        put(sheet, 2, column, heading, font=bold, fill=FILLS["header"])
    categories = {u.name: dict(rules.categories).get(u.category, u.category) for u in rules.units}
    for number, row in enumerate(_receipts(db, item.id, period, as_of), 3):
        received = dt.datetime.fromisoformat(row["received_at"])
        values = [
            row["unit"],
            categories.get(row["unit"], ""),
            row["version"],
            received.strftime("%Y-%m-%d %H:%M:%S"),
            "按时" if row["on_time"] else "逾期",
            "完整" if row["complete"] else "缺项",
            problem_words(json.loads(row["problems"] or "[]")),
            row["sender"],
            row["subject"],
        ]
        for column, value in enumerate(values, 1):
            put(sheet, number, column, value, alignment=LEFT if column in (1, 8, 9) else CENTER)
    # 类别 holds 区安委会成员单位; 问题 may name three problems, wrapped
    for column, size in enumerate([22, 18, 6, 20, 9, 9, 24, 26, 50], 1):
        sheet.column_dimensions[get_column_letter(column)].width = size
    sheet.freeze_panes = "A3"
    print_setup(sheet, header_rows="2:2", name_columns="A:A")

    path = report_path(folder, f"{rules.campaign.get('short', '统计')}_{item.label}_{period}", now)
    save_private(book, path)
    return path, stats.as_dict()
