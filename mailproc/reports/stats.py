"""Statistics: the 附件1 figures of one period, consolidated from the ledger.

Per unit, the latest version whose 附件1 was read without bad cells counts
(docs/campaign.md#statistics); a unit with no such version is missing from the
table. Cumulative figures add up a unit's counted figures over the periods of one item up to
and including the given one.
"""

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlite_utils

from mailproc.classify.periods import periods_named
from mailproc.ledger import deadline_decisions, flag_texts, received_by, registered_unit
from mailproc.rules import Item, Rules

Figure = int | float  # a whole number, or a decimal column's figure


class StatsError(Exception):
    """The period asked for has no statistics (not a deadline of an item that carries 附件1)."""


@dataclass
class PeriodStats:
    item: Item
    period: str
    units: dict[str, dict[str, Figure]]  # unit → column id → figure, in rules order
    versions: dict[str, int]  # unit → the version whose figures count
    totals: dict[str, Figure]
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


def stats_item(rules: Rules, period: str, item_id: str | None = None) -> tuple[Item, str]:
    """The item carrying the statistics table whose period `period` names (its own date, its
    deadline's, its name), and that period's key; refused when it names several."""
    found = [
        (item, named)
        for item in rules.items
        if item.needs_stats and item_id in (None, item.id)
        for named in periods_named(item, period)
    ]
    if not found:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", period):
            try:
                dt.date.fromisoformat(period)
            except ValueError:
                raise StatsError(f"“{period}”不是有效日期") from None
        known = "、".join(
            f"{item.label} {p.key}" for item in rules.items
            if item.needs_stats and item_id in (None, item.id) for p in item.periods
        )  # fmt: skip
        raise StatsError(f"没有 {period} 这一期的统计（可选：{known}）")
    if len(found) > 1:
        both = "、".join(f"{item.label} {named.titled()}（{named.key}）" for item, named in found)
        raise StatsError(f"“{period}”可指多个报送期次：{both}，请用 --item 或日期指明其中一个")
    item, named = found[0]
    return item, named.key


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
    item, period = stats_item(rules, period, item_id)
    columns = [c.id for c in rules.columns]
    rows = [row for row in db.query(_FIGURES, [item.id, period]) if received_by(row, as_of)]
    latest: dict[str, int] = {}
    for row in rows:
        latest[row["unit"]] = max(latest.get(row["unit"], 0), row["version"])
    figures: dict[str, dict[str, Figure]] = {}
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
    totals = _totals(rules, units.values())
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
    units: dict[str, list[dict[str, Figure]]] = {}
    for named in item.periods:
        if named.key > period:
            break
        for unit, values in period_stats(db, rules, named.key, item.id, as_of).units.items():
            units.setdefault(unit, []).append(values)
    ordered = {
        u.name: {c: v for c, v in _totals(rules, units[u.name]).items() if c in columns}
        for u in rules.units
        if u.name in units
    }
    return {"units": ordered, "totals": _totals(rules, ordered.values())}


def _totals(rules: Rules, rows: Iterable[dict[str, Figure]]) -> dict[str, Figure]:
    """Each column added up over `rows`; a decimal column's sum kept to its places (0.1 + 0.2
    is 0.3 in a 万元 column, not 0.30000000000000004)."""
    rows = list(rows)
    totals: dict[str, Figure] = {}
    for column in rules.columns:
        total = sum(values.get(column.id, 0) for values in rows)
        totals[column.id] = round(total, column.places) if column.type == "decimal" else total
    return totals
