"""Statistics: the 附件1 figures of one period, consolidated from the ledger.

Per unit, the latest version whose 附件1 was read without bad cells counts
(docs/campaign.md#statistics); a unit with no such version is missing from the
table. Cumulative figures add up a unit's counted figures over the periods of one item up to
and including the given one.
"""

import datetime as dt
import json
import re
from dataclasses import dataclass, field

import sqlite_utils

from mailproc.ledger import deadline_decisions, flag_texts, received_by, registered_unit
from mailproc.rules import Item, Rules


class StatsError(Exception):
    """The period asked for has no statistics (not a deadline of an item that carries 附件1)."""


@dataclass
class PeriodStats:
    item: Item
    period: str
    units: dict[str, dict[str, int]]  # unit → column id → figure, in rules order
    versions: dict[str, int]  # unit → the version whose figures count
    totals: dict[str, int]
    missing: list[str]  # no readable 附件1, and neither excused nor before its extended deadline
    approximate: dict[str, list[str]] = field(default_factory=dict)  # unit → columns
    excused: list[str] = field(default_factory=list)
    extended: dict[str, str] = field(default_factory=dict)  # unit → its deadline, still ahead
    # units whose figures came from an address no unit registered, or one that failed SPF and
    # DMARC, and that the office has not confirmed or registered yet
    unconfirmed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "period": self.period,
            "item": self.item.id,
            "units": self.units,
            "totals": self.totals,
            "missing": self.missing,
            "excused": self.excused,
            "extended": self.extended,
            "unconfirmed": self.unconfirmed,
        }


def stats_item(rules: Rules, period: str, item_id: str | None = None) -> Item:
    """The item whose deadline `period` is and whose submissions carry 附件1."""
    candidates = [
        item
        for item in rules.items
        if item.needs_stats and item.deadline_for(period) and item_id in (None, item.id)
    ]
    if not candidates:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", period):
            try:
                dt.date.fromisoformat(period)
            except ValueError:
                raise StatsError(f"“{period}”不是有效日期") from None
        known = "、".join(
            f"{item.label} {item.period_of(d)}"
            for item, d in sorted(
                ((i, d) for i in rules.items if i.needs_stats for d in i.deadlines),
                key=lambda pair: pair[1],
            )
        )
        raise StatsError(f"{period} 不是报送附件1统计表的截止日期（可选：{known}）")
    return candidates[0]


# Figures of one period with the receipt time of the version they came in.
_FIGURES = (
    "select f.unit, f.version, f.[column], f.value, f.approximate, f.message, r.received_at "
    "from figures f join receipts r on r.unit = f.unit and r.item = f.item "
    "and r.period = f.period and r.version = f.version where f.item = ? and f.period = ?"
)


def period_stats(
    db: sqlite_utils.Database,
    rules: Rules,
    period: str,
    item_id: str | None = None,
    as_of: dt.datetime | None = None,
) -> PeriodStats:
    """The period's figures as the ledger held them at `as_of` (default: everything)."""
    item = stats_item(rules, period, item_id)
    columns = [c.id for c in rules.columns]
    rows = [row for row in db.query(_FIGURES, [item.id, period]) if received_by(row, as_of)]
    latest: dict[str, int] = {}
    for row in rows:
        latest[row["unit"]] = max(latest.get(row["unit"], 0), row["version"])
    figures: dict[str, dict[str, int]] = {}
    approximate: dict[str, list[str]] = {}
    counted: dict[str, int] = {}  # unit → the message its figures came in
    for row in rows:
        if latest.get(row["unit"]) != row["version"]:
            continue
        counted[row["unit"]] = row["message"]
        figures.setdefault(row["unit"], {})[row["column"]] = row["value"]
        if row["approximate"]:
            approximate.setdefault(row["unit"], []).append(row["column"])
    units = {
        unit.name: {c: figures[unit.name][c] for c in columns if c in figures[unit.name]}
        for unit in rules.units
        if unit.name in figures
    }
    totals = {c: sum(values.get(c, 0) for values in units.values()) for c in columns}
    excused, extended = [], {}
    moment = as_of or dt.datetime.now(rules.timezone)
    decided = deadline_decisions(db)
    for unit in rules.units:
        if ("excuse", unit.name, item.id, period) in decided:
            excused.append(unit.name)
        moved = decided.get(("extend", unit.name, item.id, period))
        deadline = json.loads(moved["value"])["deadline"] if moved else None
        if deadline and unit.name not in units and dt.datetime.fromisoformat(deadline) > moment:
            extended[unit.name] = deadline
    missing = [
        unit.name
        for unit in rules.units
        if unit.name not in units and unit.name not in excused and unit.name not in extended
    ]
    unconfirmed = [unit for unit in units if _doubtful(db, counted[unit])]
    return PeriodStats(
        item, period, units, latest, totals, missing, approximate, excused, extended, unconfirmed
    )


def _doubtful(db: sqlite_utils.Database, message: int) -> bool:
    """Whether a mail's sender is still in doubt: flagged 未登记地址 or as possibly forged, and
    neither confirmed by the office nor its address registered since."""
    row = db["messages"].get(message)
    if not flag_texts(row, "unregistered", "spoofed"):
        return False
    confirmed = db["decisions"].count_where(
        "kind in ('confirm', 'assign') and message = ? and undone_at is null", [message]
    )
    return not confirmed and not registered_unit(db, row["sender"] or "")


def cumulative_stats(
    db: sqlite_utils.Database,
    rules: Rules,
    period: str,
    item: Item,
    as_of: dt.datetime | None = None,
) -> dict:
    """Each unit's figures added up over `item`'s periods up to `period`, and their totals."""
    columns = [c.id for c in rules.columns]
    units: dict[str, dict[str, int]] = {}
    for deadline in item.deadlines:
        current = item.period_of(deadline)
        if current > period:
            break
        for unit, values in period_stats(db, rules, current, item.id, as_of).units.items():
            sums = units.setdefault(unit, dict.fromkeys(columns, 0))
            for column, value in values.items():
                sums[column] += value
    ordered = {u.name: units[u.name] for u in rules.units if u.name in units}
    totals = {c: sum(values[c] for values in ordered.values()) for c in columns}
    return {"units": ordered, "totals": totals}
