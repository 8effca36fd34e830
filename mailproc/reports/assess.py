"""Assessment (考核): each unit's record over the campaign turned into a score and a rank.

"报送信息情况将纳入考核": every deadline that has passed counts, with the points of
rules/jobs.toml for on time, late and missing, times its item's weight. Events are not assessed.
An excused deadline counts neither way, so units are ranked by their share of the points
possible to them, not by raw points; equal shares share a rank and the next rank skips
(1, 2, 2, 4). A submission whose 缺项 was never made good scores as late (domain.md).
"""

import datetime as dt
from fractions import Fraction
from pathlib import Path

import openpyxl
import sqlite_utils
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from mailproc.labels import STATE_WORDS
from mailproc.reports.status import Cell, status_matrix
from mailproc.reports.workbook import (
    FILLS,
    FONT_NAME,
    NO_FILL,
    print_setup,
    put,
    report_path,
    save_private,
    write,
)
from mailproc.rules import Rules

# on time, but what it lacked never came: scored as late
STATE_TEXT = {**STATE_WORDS, "incomplete": "缺项未补"}
SCORED_AS = {"incomplete": "late"}
FIRST = 10  # the 【考核结果】 names the first ten, and everyone tied at the tenth place


def assess(db: sqlite_utils.Database, rules: Rules, as_of: dt.datetime | None = None) -> dict:
    """Scores as the ledger stood at `as_of`: record, score, possible, percent, rank per unit."""
    matrix = status_matrix(db, rules, as_of)
    points, weights = rules.jobs.points, rules.jobs.item_weights
    due = [(item, period) for item, period, deadline in matrix.deadlines if deadline < matrix.as_of]
    units = []
    for unit, category in matrix.units:
        record = {
            f"{item}/{period}": _state(matrix.cell(unit, item, period)) for item, period in due
        }
        counted = [  # an excused deadline, or one extended and still ahead, counts neither way
            (item, period, record[f"{item}/{period}"])
            for item, period in due
            if record[f"{item}/{period}"] not in {"excused", "not_due"}
        ]
        score = sum(
            points[SCORED_AS.get(state, state)] * weights.get(item, 1) for item, _, state in counted
        )
        possible = sum(points["on_time"] * weights.get(item, 1) for item, _, _ in counted)
        units.append(
            {
                "unit": unit,
                "category": category,
                "record": record,
                "score": score,
                "possible": possible,
                "percent": round(100 * score / possible, 1) if possible else None,
            }
        )
    _rank(units)
    return {
        "as_of": matrix.as_of.isoformat(),
        "points": points,
        "item_weights": weights,
        "deadlines": [f"{item}/{period}" for item, period in due],
        "units": units,
    }


def _state(cell: Cell) -> str:
    return "incomplete" if cell.state == "on_time" and not cell.complete else cell.state


def _share(entry: dict) -> Fraction:
    """The share of the points possible, exactly (no rounding ties two units that differ);
    a unit to which nothing was possible comes after every other."""
    return Fraction(entry["score"], entry["possible"]) if entry["possible"] else Fraction(-1)


def _rank(units: list[dict]) -> None:
    """Competition ranking by share, in place: equal shares share a rank, the next skips;
    within a rank the units keep the order of rules/units.toml."""
    shares = [_share(entry) for entry in units]
    for entry, share in zip(units, shares, strict=True):
        entry["rank"] = 1 + sum(other > share for other in shares)
    units.sort(key=lambda entry: entry["rank"])


def first_ten(units: list[dict]) -> list[dict]:
    """The first ten of a ranked list, and every unit tied at the tenth place."""
    return [entry for entry in units if entry["rank"] <= FIRST]


def write_assessment(result: dict, rules: Rules, folder: Path) -> Path:
    """The assessment as a ranked table: one row per unit, one column per deadline."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "考核"
    labels = {item.id: item.label for item in rules.items}
    headings = ["名次", "单位", "类别"]
    headings += [
        f"{labels[key.split('/')[0]]}\n{key.split('/')[1][5:]}" for key in result["deadlines"]
    ]
    headings += ["得分", "满分", "得分率%"]
    title = f"{rules.campaign['name']}报送情况考核（截至 {result['as_of'][:16].replace('T', ' ')}）"
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headings))
    write(sheet, 1, 1, title).font = Font(name=FONT_NAME, size=14, bold=True)
    points = result["points"]
    rule = "，".join(f"{STATE_TEXT[state]} {points[state]}" for state in points)
    rule += "；缺项未补按逾期计分，免报不计；按得分率排名"
    write(sheet, 2, 1, f"计分（每个截止时间）：{rule}").font = Font(name=FONT_NAME, size=10)
    bold = Font(name=FONT_NAME, size=10, bold=True)
    for column, heading in enumerate(headings, 1):
        put(sheet, 3, column, heading, font=bold, fill=FILLS["header"])
    categories = dict(rules.categories)
    fills = {"late": FILLS["late"], "incomplete": FILLS["late"], "missing": FILLS["missing"]}
    for row, entry in enumerate(result["units"], 4):
        values = [entry["rank"], entry["unit"], categories.get(entry["category"], "")]
        for column, value in enumerate(values, 1):
            put(sheet, row, column, value)
        for offset, key in enumerate(result["deadlines"]):
            state = entry["record"][key]
            put(sheet, row, 4 + offset, STATE_TEXT[state], fill=fills.get(state, NO_FILL))
        end = 4 + len(result["deadlines"])
        for column, value in enumerate((entry["score"], entry["possible"], entry["percent"]), end):
            put(sheet, row, column, value)
    sheet.column_dimensions["A"].width = 6
    sheet.column_dimensions["B"].width = 22
    sheet.column_dimensions["C"].width = 14
    for column in range(4, len(headings) + 1):
        sheet.column_dimensions[get_column_letter(column)].width = 9
    sheet.row_dimensions[3].height = 32
    sheet.freeze_panes = "D4"
    print_setup(sheet, header_rows="3:3", name_columns="A:C")
    as_of = dt.datetime.fromisoformat(result["as_of"])
    path = report_path(folder, f"{rules.campaign.get('short', '考核')}_考核", as_of)
    save_private(book, path)
    return path
