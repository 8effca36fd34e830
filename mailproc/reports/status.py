"""Reports read from the ledger: the units × deadlines status matrix.

The matrix is computed as of a moment (default: now): a deadline still ahead is "not due",
one passed with no receipt is "missing". Mail received after the moment does not count.
"""

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import click
import sqlite_utils

from mailproc import ledger
from mailproc.display import display_width, pad
from mailproc.ledger import deadline_decisions, received_by
from mailproc.rules import Item, Rules

WIDTH = 9
SYMBOLS = {
    "on_time": ("✔", "green"),
    "late": ("迟", "yellow"),
    "missing": ("✘", "red"),
    "not_due": ("·", None),
    "excused": ("免", "cyan"),
}


def deadline_words(item: Item, deadline: dt.datetime) -> str:
    """周报 第3周（6月20日）, 方案（5月31日）: one deadline of an item as the office names it."""
    period = item.period_at(deadline)
    if period.name:
        return f"{item.label} {period.titled(brackets=True)}"
    return f"{item.label}（{period.day}）"


@dataclass
class Cell:
    state: str  # on_time | late | missing | not_due
    versions: int = 0
    complete: bool = True
    received_at: str | None = None


@dataclass
class StatusMatrix:
    as_of: dt.datetime
    deadlines: list[tuple[str, str, dt.datetime]]  # (item id, period, deadline)
    units: list[tuple[str, str]]  # (unit, category)
    labels: list[str]  # column heading of each deadline (the item's label)
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)
    category_labels: dict[str, str] = field(default_factory=dict)  # 园区 → 重点园区

    def cell(self, unit: str, item: str, period: str) -> Cell:
        return self.cells[(unit, item, period)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "deadlines": [
                {"item": i, "period": p, "deadline": d.isoformat()} for i, p, d in self.deadlines
            ],
            "units": {
                unit: {
                    f"{item}/{period}": {
                        "state": c.state,
                        "versions": c.versions,
                        "complete": c.complete,
                        "received_at": c.received_at,
                    }
                    for (u, item, period), c in self.cells.items()
                    if u == unit
                }
                for unit, _ in self.units
            },
        }

    def counts(self, item: str, period: str) -> dict[str, int]:
        result = {state: 0 for state in SYMBOLS}
        for unit, _ in self.units:
            result[self.cell(unit, item, period).state] += 1
        return result

    def render(self, color: bool = False) -> str:
        name_width = max(display_width(u) for u, _ in self.units) + 2
        legend = "✔ 按时  迟 逾期  ✘ 未报  · 未到期  免 免报  ! 缺项未补齐"
        lines = [
            f"报送情况 截至 {self.as_of:%Y-%m-%d %H:%M}   {legend}",
            pad("", name_width) + "".join(pad(label, WIDTH) for label in self.labels),
            pad("单位", name_width) + "".join(pad(p[5:], WIDTH) for _, p, _ in self.deadlines),
        ]
        category = None
        for unit, unit_category in self.units:
            if unit_category != category:
                category = unit_category
                lines.append(f"【{self.category_labels.get(category, category)}】")
            row = pad(unit, name_width)
            for item, period, _ in self.deadlines:
                cell = self.cell(unit, item, period)
                symbol, colour = SYMBOLS[cell.state]
                text = symbol + ("!" if not cell.complete else "")
                shown = click.style(text, fg=colour) if color and colour else text
                row += shown + " " * (WIDTH - display_width(text))
            lines.append(row.rstrip())
        totals = pad("按时/逾期/未报", name_width)
        for item, period, _ in self.deadlines:
            c = self.counts(item, period)
            totals += pad(f"{c['on_time']}/{c['late']}/{c['missing']}", WIDTH)
        lines.append(totals.rstrip())
        return "\n".join(lines)


def status_matrix(
    db: sqlite_utils.Database, rules: Rules, as_of: dt.datetime | None = None
) -> StatusMatrix:
    """Build the matrix from the receipts table as of `as_of` (default: now)."""
    as_of = (as_of or dt.datetime.now(rules.timezone)).astimezone(rules.timezone)
    deadlines = [(item.id, item.period_of(d), d) for item, d in rules.deadlines()]
    labels = [item.label for item, _ in rules.deadlines()]
    matrix = StatusMatrix(
        as_of,
        deadlines,
        [(u.name, u.category) for u in rules.units],
        labels,
        category_labels=dict(rules.categories),
    )
    decided = deadline_decisions(db)
    receipts: dict[tuple[str, str, str], list[dict]] = {}
    for row in db.query("select * from receipts order by version"):
        if received_by(row, as_of):
            receipts.setdefault((row["unit"], row["item"], row["period"]), []).append(row)
    for unit, _ in matrix.units:
        for item, period, deadline in deadlines:
            rows = receipts.get((unit, item, period), [])
            if rows:
                first = rows[0]
                matrix.cells[(unit, item, period)] = Cell(
                    state=first["status"],
                    versions=len(rows),
                    complete=any(r["complete"] for r in rows),
                    received_at=first["received_at"],
                )
            elif ("excuse", unit, item, period) in decided:
                matrix.cells[(unit, item, period)] = Cell(state="excused")
            else:
                extended = decided.get(("extend", unit, item, period))
                if extended:
                    deadline = dt.datetime.fromisoformat(json.loads(extended["value"])["deadline"])
                state = "missing" if deadline < as_of else "not_due"
                matrix.cells[(unit, item, period)] = Cell(state=state)
    return matrix


def paper_owed(
    db: sqlite_utils.Database, rules: Rules, as_of: dt.datetime
) -> list[tuple[str, str, str]]:
    """(unit, item, period) whose paper copy is still owed: submitted or past the deadline,
    and neither received, waived nor excused."""
    submitted = {
        (row["unit"], row["item"], row["period"])
        for row in db["receipts"].rows
        if ledger.received_by(row, as_of)
    }
    settled = {
        (row["unit"], row["item"], row["period"])
        for row in db["decisions"].rows_where("kind in ('paper', 'excuse') and undone_at is null")
    }
    owed = []
    for item, deadline in rules.deadlines():
        if not item.needs_paper:
            continue
        period = item.period_of(deadline)
        for unit in rules.units:
            key = (unit.name, item.id, period)
            if (key in submitted or deadline <= as_of) and key not in settled:
                owed.append(key)
    return owed


def paper_owed_lines(owed: list[tuple[str, str, str]], rules: Rules) -> list[tuple[str, str]]:
    """(item（period）, who owes its paper copy) per deadline of `paper_owed`. When most units
    owe it, the few who do not are named instead: a digest should not list 34 names three times.
    """
    labels = {item.id: item.label for item in rules.items}
    everyone = [unit.name for unit in rules.units]
    lines = []
    for (item, period), rows in itertools.groupby(owed, key=lambda row: (row[1], row[2])):
        owing = [unit for unit, _, _ in rows]
        others = [name for name in everyone if name not in owing]
        if not others:
            who = f"全部 {len(owing)} 个单位"
        elif len(others) < len(owing):
            who = f"除{'、'.join(others)}外，其余 {len(owing)} 个单位"
        else:
            who = "、".join(owing)
        lines.append((f"{labels[item]}（{period}）", who))
    return lines


def decisions_in_force(db: sqlite_utils.Database, rules: Rules) -> list[dict]:
    """The excuses and extensions that hold, each with a line a person reads."""
    labels = {item.id: item.label for item in rules.items}
    rows = db["decisions"].rows_where(
        "kind in ('excuse', 'extend') and undone_at is null", order_by="unit, item, period"
    )
    result = []
    for row in rows:
        if row["kind"] == "excuse":
            what = "免报"
        else:
            deadline = json.loads(row["value"])["deadline"]
            what = "延期至 " + deadline[:16].replace("T", " ")
        text = (
            f"{row['unit']} {labels.get(row['item'], row['item'])}（{row['period']}）{what}"
            f"  {row['note'] or ''}（{'办公室' if row['by'] == 'office' else row['by']}，"
            f"{row['at'][:10]}）"
        )
        result.append(
            {
                **{
                    k: row[k]
                    for k in ("kind", "unit", "item", "period", "value", "note", "by", "at")
                },
                "text": text,
            }
        )
    return result
