"""Campaign rules: the TOML files in `rules/` loaded into plain objects, and their checks.

Everything about one campaign (units, items, deadlines, 附件1 columns, words) lives in those
files; the code only knows their shape. `load_rules` raises `RulesError` naming file, key and
problem, so an office clerk editing a file sees exactly what to fix.
"""

import datetime as dt
import itertools
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailproc.read.text import normalize
from mailproc.toml_tables import Table, TableError, written
from mailproc.workdays import WorkCalendar

RULE_FILES = ("campaign.toml", "units.toml", "items.toml", "columns.toml", "jobs.toml")
# Read when present: a rules folder made before it existed holds only the official calendar.
CALENDAR_FILE = "calendar.toml"


class RulesError(TableError):
    """A rules file is missing, malformed or inconsistent."""

    kind = "规则文件"


@dataclass(frozen=True)
class Unit:
    name: str
    category: str
    aliases: tuple[str, ...]
    addresses: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Signal:
    all: tuple[str, ...]
    none: tuple[str, ...] = ()

    def matches(self, normalized_text: str) -> bool:
        return all(w in normalized_text for w in self.all) and not any(
            w in normalized_text for w in self.none
        )


# How often an item is due. A periodic one has numbered periods and the grace rule; "any" is
# logged and acknowledged whenever it comes, with no deadline (an event, an emergency).
CADENCES = ("once", "weekly", "biweekly", "monthly", "any")
PERIODIC = ("weekly", "biweekly", "monthly")
# What a period reports on, when not the days up to its deadline.
REPORTS_ON = ("previous_month",)
# The fields a period's name (period_name) may use.
NAME_FIELDS = ("n", "year", "month", "day")


@dataclass(frozen=True)
class Period:
    """One deadline of an item. `key` is the date the rules wrote, the period's name in the
    ledger and on the command line: it stays when a holiday rolls the deadline forward."""

    key: str
    deadline: dt.datetime
    number: int
    name: str  # 第3周, 第2期, 8月份 (the rules' period_name), or ""
    covers: tuple[dt.date, dt.date] | None = None  # the days it reports on (reports_on)

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.key)

    @property
    def day(self) -> str:
        return f"{self.date.month}月{self.date.day}日"

    def titled(self, brackets: bool = False) -> str:
        """第3周，6月20日 (or 第3周（6月20日）); the date alone for a period with no name."""
        if not self.name:
            return self.day
        return f"{self.name}（{self.day}）" if brackets else f"{self.name}，{self.day}"


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    short: str
    label: str
    periods: tuple[Period, ...]
    signals: tuple[Signal, ...]
    needs_document: bool
    needs_stats: bool
    needs_paper: bool
    body_counts: bool
    cadence: str = "once"
    late_grace_days: int = 1
    period_words: tuple[str, ...] = ()
    content: str = ""  # what a report tells, as the reminder asks for it: 本周活动开展情况
    activity_verbs: tuple[str, ...] = ()
    activity_words: tuple[str, ...] = ()

    @property
    def never_late(self) -> bool:
        return self.cadence == "any"

    @property
    def periodic(self) -> bool:
        """Numbered periods, the grace rule after each deadline and the period words apply."""
        return self.cadence in PERIODIC

    @property
    def deadlines(self) -> tuple[dt.datetime, ...]:
        return tuple(p.deadline for p in self.periods)

    def period(self, key: str) -> Period | None:
        return next((p for p in self.periods if p.key == key), None)

    def period_at(self, deadline: dt.datetime) -> Period:
        """The period whose (possibly rolled) deadline this is."""
        return next(p for p in self.periods if p.deadline == deadline)

    def period_of(self, deadline: dt.datetime) -> str:
        return self.period_at(deadline).key

    def deadline_for(self, period: str) -> dt.datetime | None:
        found = self.period(period)
        return found.deadline if found else None


NUMBER_TYPES = ("integer", "decimal")


@dataclass(frozen=True)
class Column:
    id: str
    group: str  # "" for a one-level header
    header: str
    unit: str
    group_synonyms: tuple[str, ...]
    synonyms: tuple[str, ...]
    flat: tuple[str, ...]
    type: str = "integer"
    places: int = 0  # decimal places kept (a decimal column)
    approx: bool = True  # 约500, 300余 count (marked approximate); false: such a cell is bad

    @property
    def title(self) -> str:
        """The header as the office's tables print it: 宣讲活动场次, 投入资金."""
        return f"{self.group}{self.header}"


@dataclass(frozen=True)
class JobSettings:
    """When the automatic jobs run (rules/jobs.toml)."""

    reminder_days_before: int
    reminder_at: dt.time
    overdue_grace: dt.timedelta
    alert_grace: dt.timedelta
    digest_items: tuple[str, ...]
    digest_grace: dt.timedelta
    digest_late_after: dt.timedelta
    assessment_grace: dt.timedelta
    drop_after: dt.timedelta
    points: dict[str, int]
    item_weights: dict[str, float]


@dataclass(frozen=True)
class Rules:
    folder: Path
    campaign: dict[str, Any]
    office: dict[str, Any]
    timezone: zoneinfo.ZoneInfo
    categories: tuple[tuple[str, str], ...]
    units: tuple[Unit, ...]
    items: tuple[Item, ...]
    columns: tuple[Column, ...]
    table: dict[str, Any]
    values: dict[str, Any]
    words: dict[str, Any]
    tags: dict[str, str]
    jobs: JobSettings
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    _by_address: dict[str, Unit] = field(default_factory=dict, repr=False)

    def subject_examples(self) -> list[str]:
        """Subjects the 无法识别 reply shows as examples: the rules' own, else one per item with
        a deadline, its second period named (第2周) when it has names."""
        written = self.campaign.get("subject_examples")
        if written:
            return list(written)
        return [
            f"【单位名称】{item.short}"
            + (f"（{item.periods[min(1, len(item.periods) - 1)].name}）" if item.periodic else "")
            for item in self.items
            if item.periods
        ]

    def unit(self, name: str) -> Unit | None:
        return next((u for u in self.units if u.name == name), None)

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    def unit_by_address(self, address: str | None) -> Unit | None:
        return self._by_address.get((address or "").strip().lower())

    def unit_names_longest_first(self) -> list[tuple[str, Unit]]:
        """Every (normalised name or alias, unit), longest first, for substring search."""
        pairs = {(normalize(n), u) for u in self.units for n in u.names}
        return sorted(pairs, key=lambda p: (-len(p[0]), p[1].name))

    def deadlines(self) -> list[tuple[Item, dt.datetime]]:
        """Every (item, deadline) of the campaign in time order."""
        return sorted(((i, d) for i in self.items for d in i.deadlines), key=lambda p: p[1])

    def reminder_day(self, deadline: dt.datetime) -> dt.date:
        """The day the 催报提醒 for `deadline` goes out: working days before it."""
        return self.calendar.working_days_before(deadline.date(), self.jobs.reminder_days_before)

    def calendar_gaps(self) -> list[int]:
        """The years in which a deadline or a reminder falls that neither the official calendar
        nor rules/calendar.toml knows: there, working days are taken as Monday–Friday."""
        days = [day for _, d in self.deadlines() for day in (d.date(), self.reminder_day(d))]
        return self.calendar.unknown_years(days)


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _deadline(reader: Table, text: str, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A deadline as written (a date alone: 23:59:59 that day)."""
    try:
        if _DATE_ONLY.match(text):
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(23, 59, 59), tz)
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise reader.fail(
            "deadlines",
            f"{written(text)}不是有效的日期或时间，应写如 2019-06-13 或 2019-06-13T17:00:00",
        ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


def _rolled(moment: dt.datetime, roll: WorkCalendar | None) -> dt.datetime:
    """With `roll`, a deadline on a public holiday or weekend moves to the same time of the
    next working day."""
    if roll is None:
        return moment
    return dt.datetime.combine(roll.next_working_day(moment.date()), moment.timetz())


def load_rules(folder: str | Path) -> Rules:
    """Load and check every rules file in `folder`; a table holds only the keys mailproc reads."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RulesError(f"规则文件夹 {folder} 不存在；请检查配置文件 [paths] rules 一项写的文件夹")
    files = {name: Table.read(folder / name, RulesError) for name in RULE_FILES}
    campaign = _campaign(files["campaign.toml"])
    categories, units = _units(files["units.toml"])
    calendar = _calendar(folder / CALENDAR_FILE)
    roll = calendar if campaign.roll else None
    items = _items(files["items.toml"], campaign.timezone, roll)
    table, values, columns = _columns(files["columns.toml"])
    return Rules(
        folder=folder,
        campaign=dict(campaign.campaign.data),
        office=dict(campaign.office.data),
        timezone=campaign.timezone,
        categories=categories,
        units=units,
        items=items,
        columns=columns,
        table=dict(table.data),
        values=dict(values.data),
        words=dict(campaign.words.data),
        tags=dict(campaign.tags.data),
        jobs=_jobs(files["jobs.toml"], {i.id for i in items}),
        calendar=calendar,
        _by_address={address: unit for unit in units for address in unit.addresses},
    )


@dataclass(frozen=True)
class _Campaign:
    """campaign.toml checked: its tables, handed on as read, and what the other files need."""

    campaign: Table
    office: Table
    words: Table
    tags: Table
    timezone: zoneinfo.ZoneInfo
    roll: bool


# [words] lists (classify.py) and [tags] (one per kind of mail mailproc sends, see templates/).
WORD_LISTS = (
    "campaign", "auto_reply_subjects", "reply_prefixes", "cloud_link_patterns", "region_words",
    "correction_words",
)  # fmt: skip
TAG_KINDS = (
    "ack", "missing", "unrecognized", "reminder", "overdue", "alert", "digest", "assessment",
)  # fmt: skip


# Every key each table of the rules files may hold (docs/rules.md describes each; a test
# checks the two agree). A key not listed is refused by check-rules.
KEYS: dict[str, frozenset[str]] = {
    "campaign": frozenset(
        {"name", "short", "timezone", "roll_holiday_deadlines", "subject_examples"}
    ),
    "office": frozenset({"name", "full_name", "contact", "phone", "address"}),
    "words": frozenset(WORD_LISTS),
    "tags": frozenset(TAG_KINDS),
    "category": frozenset({"id", "label"}),
    "unit": frozenset({"name", "category", "aliases", "addresses"}),
    "item": frozenset({
        "id", "name", "short", "label", "content", "cadence", "deadlines", "late_grace_days",
        "period_name", "period_words", "reports_on", "carries", "signals", "activity_verbs",
        "activity_words",
    }),
    "item.carries": frozenset({"document", "stats", "paper", "body_counts"}),
    "item.signals": frozenset({"all", "none"}),
    "table": frozenset({
        "name", "title", "summary_title", "reporter_labels", "total_row_labels",
        "header_row_labels", "own_row_labels", "vertical_labels", "vertical_value_labels",
        "file_words", "header_prefixes", "header_suffixes",
    }),
    "values": frozenset({
        "zero", "approx_prefixes", "approx_suffixes", "unit_suffixes", "multipliers",
    }),
    "column": frozenset({
        "id", "group", "header", "unit", "group_synonyms", "synonyms", "flat", "type", "places",
        "approx",
    }),
    "year": frozenset({"year", "notice", "holidays", "workdays"}),
    "catch_up": frozenset({"drop_after_days"}),
    "reminder": frozenset({"working_days_before", "at"}),
    "overdue": frozenset({"grace_minutes"}),
    "alert": frozenset({"grace_minutes"}),
    "digest": frozenset({"items", "grace_minutes", "late_after_minutes"}),
    "assessment": frozenset({"grace_minutes", "points", "item_weights"}),
    "assessment.points": frozenset({"on_time", "late", "missing"}),
}  # fmt: skip


def _campaign(top: Table) -> _Campaign:
    top.check_keys({"campaign", "office", "words", "tags"})
    campaign = top.sub("campaign")
    campaign.check_keys(KEYS["campaign"])
    campaign.texts("subject_examples")
    tz_name = campaign.text("timezone", "Asia/Shanghai")
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, IsADirectoryError):  # "Asia" is a folder
        raise campaign.fail(
            "timezone", f"没有{written(tz_name)}这个时区，北京时间请写 Asia/Shanghai"
        ) from None
    campaign.text("name")
    roll = campaign.flag("roll_holiday_deadlines")
    office = top.sub("office")
    office.check_keys(KEYS["office"])
    office.text("name")
    office.text("address")
    words = top.sub("words")
    words.check_keys(KEYS["words"])
    for key in WORD_LISTS:
        words.texts(key)
    for pattern in words.texts("cloud_link_patterns"):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise words.fail(
                "cloud_link_patterns",
                f"{written(pattern)}不是有效的正则表达式"
                f"（第 {(exc.pos or 0) + 1} 个字符附近有误），请检查括号、方括号是否成对",
            ) from None
    tags = top.sub("tags")
    tags.check_keys(KEYS["tags"])
    for kind in TAG_KINDS:
        tags.text(kind)
    return _Campaign(campaign, office, words, tags, tz, roll)


def _units(top: Table) -> tuple[tuple[tuple[str, str], ...], tuple[Unit, ...]]:
    """The [[category]] (id, label) pairs, and the [[unit]]s with unique names and addresses."""
    top.check_keys({"category", "unit"})
    categories = []
    for cat in top.tables("category"):
        cat.check_keys(KEYS["category"])
        categories.append((cat.text("id"), cat.text("label", cat.data.get("id"))))
    category_ids = {c for c, _ in categories}
    units: list[Unit] = []
    seen_names: dict[str, str] = {}
    owners: dict[str, str] = {}
    for reader in top.tables("unit"):
        reader.check_keys(KEYS["unit"])
        unit = Unit(
            name=reader.text("name"),
            category=reader.text("category"),
            aliases=reader.texts("aliases"),
            addresses=tuple(a.strip().lower() for a in reader.texts("addresses")),
        )
        if unit.category not in category_ids:
            raise reader.fail(
                "category",
                f"{written(unit.category)}不是已列出的类别，"
                f"应为 [[category]] 的 id 之一：{'、'.join(sorted(category_ids))}",
            )
        for name in unit.names:
            key = normalize(name)
            if key in seen_names and seen_names[key] != unit.name:
                raise reader.fail(
                    "aliases",
                    f"{written(name)}已是{seen_names[key]}的名称或简称，不能同时用于两个单位",
                )
            seen_names[key] = unit.name
        for address in unit.addresses:
            if "@" not in address:
                raise reader.fail(
                    "addresses", f"{written(address)}不是邮件地址，应写如 ajb@example.gov.cn"
                )
            if address in owners:
                raise reader.fail(
                    "addresses",
                    f"{address} 已登记为{owners[address]}的邮箱，一个邮箱只能属于一个单位",
                )
            owners[address] = unit.name
        units.append(unit)
    return tuple(categories), tuple(units)


# The placeholders a period word may hold: a period's number, or the month it reports on.
PERIOD_WORD_FIELDS = ("n", "month")


def _items(top: Table, tz: zoneinfo.ZoneInfo, roll: WorkCalendar | None) -> tuple[Item, ...]:
    top.check_keys({"item"})
    items: list[Item] = []
    for reader in top.tables("item"):
        reader.check_keys(KEYS["item"])
        carries = reader.sub("carries")
        carries.check_keys(KEYS["item.carries"])
        signals = []
        for sig in reader.tables("signals"):
            sig.check_keys(KEYS["item.signals"])
            words_all = tuple(normalize(w) for w in sig.texts("all"))
            if not words_all:
                raise sig.fail("all", '至少应写一个词，如 all = ["周报"]')
            signals.append(Signal(words_all, tuple(normalize(w) for w in sig.texts("none"))))
        cadence = reader.data.get("cadence", "once")
        if cadence not in CADENCES:
            raise reader.fail(
                "cadence",
                f"应为 {'、'.join(CADENCES)} 之一（一次、每周、每两周、每月、随时），"
                f"不是 {cadence!r}",
            )
        item = Item(
            id=reader.text("id"),
            name=reader.text("name"),
            short=reader.text("short", reader.data.get("name")),
            label=reader.text("label", reader.data.get("short") or reader.data.get("name")),
            periods=_periods(reader, cadence, tz, roll),
            signals=tuple(signals),
            needs_document=carries.flag("document"),
            needs_stats=carries.flag("stats"),
            needs_paper=carries.flag("paper"),
            body_counts=carries.flag("body_counts"),
            cadence=cadence,
            late_grace_days=reader.whole("late_grace_days", 1),
            period_words=_period_words(reader, cadence),
            content=reader.optional_text("content") or "",
            activity_verbs=tuple(normalize(w) for w in reader.texts("activity_verbs")),
            activity_words=tuple(normalize(w) for w in reader.texts("activity_words")),
        )
        if any(i.id == item.id for i in items):
            raise reader.fail("id", f"{written(item.id)}与前面的事项重复，每个事项的 id 应各不相同")
        items.append(item)
    return tuple(items)


def _periods(
    reader: Table, cadence: str, tz: zoneinfo.ZoneInfo, roll: WorkCalendar | None
) -> tuple[Period, ...]:
    """The item's deadlines as periods, checked against its cadence, each named by
    `period_name` and covering what `reports_on` says."""
    written = sorted(_deadline(reader, t, tz) for t in reader.texts("deadlines"))
    if cadence == "any":
        if written:
            raise reader.fail("deadlines", '随时报送的事项（cadence = "any"）不设截止时间')
        for key in ("period_name", "reports_on"):
            if key in reader.data:
                raise reader.fail(key, "随时报送的事项没有报送期次，不用此项")
        return ()
    if not written:
        raise reader.fail("deadlines", '缺少截止时间（随时报送的事项请写 cadence = "any"）')
    if cadence == "once" and len(written) > 1:
        raise reader.fail("deadlines", '一次性报送（cadence = "once"）只能有一个截止时间')
    for before, after in itertools.pairwise(written):
        gap = (after.date() - before.date()).days
        months = (after.year - before.year) * 12 + after.month - before.month
        wrong = {
            "weekly": gap != 7 and "每周报送的截止日期应相隔 7 天",
            "biweekly": gap != 14 and "每两周报送的截止日期应相隔 14 天",
            "monthly": months != 1 and "每月报送的截止日期应每月一个",
        }.get(cadence)
        if wrong:
            raise reader.fail("deadlines", f"{wrong}：{before.date()} 与 {after.date()} 不符")
    reports_on = reader.data.get("reports_on")
    if reports_on is not None and reports_on not in REPORTS_ON:
        raise reader.fail(
            "reports_on", f"应为 {'、'.join(REPORTS_ON)}（上一个月），不是 {reports_on!r}"
        )
    name_format = reader.data.get("period_name", "")
    if not isinstance(name_format, str):
        raise reader.fail("period_name", '应为文字，如 "第{n}周"、"{month}月份"')
    periods = []
    for number, moment in enumerate(written, start=1):
        covers = _previous_month(moment.date()) if reports_on == "previous_month" else None
        shown = covers[0] if covers else moment.date()
        fields = {"n": number, "year": shown.year, "month": shown.month, "day": moment.day}
        try:
            name = name_format.format(**fields)
        except (KeyError, IndexError, ValueError):
            allowed = "、".join(f"{{{f}}}" for f in NAME_FIELDS)
            raise reader.fail(
                "period_name", f"只能使用 {allowed}，不能是 {name_format!r}"
            ) from None
        key = moment.date().isoformat()
        periods.append(Period(key, _rolled(moment, roll), number, name, covers))
    return tuple(periods)


def _previous_month(day: dt.date) -> tuple[dt.date, dt.date]:
    last = day.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


def _period_words(reader: Table, cadence: str) -> tuple[str, ...]:
    """Ways a mail names a period (第{n}期, {month}月份): each holds {n} or {month}."""
    words = reader.texts("period_words")
    if words and cadence not in PERIODIC:
        raise reader.fail("period_words", "只有每周、每两周、每月报送的事项有期次，不用此项")
    for word in words:
        fields = set(re.findall(r"\{(\w*)\}", word))
        if len(fields) != 1 or not fields <= set(PERIOD_WORD_FIELDS):
            raise reader.fail(
                "period_words", f"{word!r} 应含且只含一个 {{n}}（第几期）或 {{month}}（几月份）"
            )
    return words


def _columns(top: Table) -> tuple[Table, Table, tuple[Column, ...]]:
    """[table] and [values], handed on as read, and the [[column]]s with unique ids."""
    top.check_keys({"table", "values", "column"})
    table = top.sub("table")
    table.check_keys(KEYS["table"])
    for key in ("name", "title"):
        if key not in table.data:
            raise table.fail(key, "缺少此项：表格的称呼（如 附件1）和表名（如 活动情况统计表）")
        table.text(key)
    table.optional_text("summary_title")
    for key in (
        "reporter_labels",
        "total_row_labels",
        "vertical_labels",
        "vertical_value_labels",
        "file_words",
    ):
        table.texts(key)
    values = top.sub("values")
    values.check_keys(KEYS["values"])
    for key in ("zero", "approx_prefixes", "approx_suffixes"):
        values.texts(key)
    columns: list[Column] = []
    for reader in top.tables("column"):
        reader.check_keys(KEYS["column"])
        column = _column(reader)
        if any(c.id == column.id for c in columns):
            raise reader.fail("id", f"{written(column.id)}与前面的列重复，每列的 id 应各不相同")
        columns.append(column)
    return table, values, tuple(columns)


def _column(reader: Table) -> Column:
    """One [[column]]: its header (one level, or group over header), number type and places,
    and whether approximations count."""
    kind = reader.data.get("type", "integer")
    if kind not in NUMBER_TYPES:
        raise reader.fail("type", f"应为 integer（整数）或 decimal（小数），不是 {kind!r}")
    places = reader.data.get("places", 2 if kind == "decimal" else 0)
    if kind == "integer" and places:
        raise reader.fail("places", '整数列没有小数位；要填小数请写 type = "decimal"')
    if kind == "decimal" and (
        not isinstance(places, int) or isinstance(places, bool) or not 0 < places <= 6
    ):
        raise reader.fail("places", f"小数位数应为 1 到 6 的整数，不是 {places!r}")
    approx = reader.data.get("approx", True)
    if not isinstance(approx, bool):
        raise reader.fail(
            "approx", f"应为 true（约数计入并标注）或 false（约数不计入），不是 {approx!r}"
        )
    group = reader.data.get("group", "")
    if not isinstance(group, str):
        raise reader.fail("group", "应为文字（两级表头的上一级）；一级表头不写此项")
    if not group and reader.texts("group_synonyms"):
        raise reader.fail("group_synonyms", "一级表头（没有 group）的列不用此项")
    return Column(
        id=reader.text("id"),
        group=group,
        header=reader.text("header"),
        unit=reader.text("unit"),
        group_synonyms=reader.texts("group_synonyms"),
        synonyms=reader.texts("synonyms"),
        flat=reader.texts("flat"),
        type=kind,
        places=places,
        approx=approx,
    )


def _calendar(path: Path) -> WorkCalendar:
    """calendar.toml: each [[year]]'s days off and weekend days worked, as the State Council's
    notice gives them; no file, or no year in it, leaves the official calendar alone."""
    if not path.exists():
        return WorkCalendar()
    top = Table.read(path, RulesError)
    top.check_keys({"year"})
    if "year" not in top.data:
        return WorkCalendar()
    years: set[int] = set()
    holidays: set[dt.date] = set()
    workdays: set[dt.date] = set()
    for reader in top.tables("year"):
        reader.check_keys(KEYS["year"])
        year = reader.whole("year", minimum=1)
        if year in years:
            raise reader.fail("year", f"{year}年写了两次，同一年的安排请合在一个 [[year]] 里")
        reader.optional_text("notice")
        days_off = _calendar_days(reader, "holidays", year)
        days_worked = _calendar_days(reader, "workdays", year)
        for day in sorted(days_off & days_worked):
            raise reader.fail("workdays", f"{day} 同时写在 holidays（放假）里，请删去其中一处")
        for day in sorted(days_worked):
            if day.weekday() < 5:
                raise reader.fail(
                    "workdays", f"{day} 本是工作日，不用写；这里只写调休上班的周六、周日"
                )
        years.add(year)
        holidays |= days_off
        workdays |= days_worked
    return WorkCalendar(frozenset(years), frozenset(holidays), frozenset(workdays))


def _calendar_days(reader: Table, key: str, year: int) -> set[dt.date]:
    """Dates written 2027-02-06, or 2027-02-06..2027-02-12 for the days from one to the other;
    all in `year`, or in the December before it (元旦 may begin there)."""
    days: set[dt.date] = set()
    for text in reader.texts(key):
        first, _, last = text.partition("..")
        try:
            start = dt.date.fromisoformat(first.strip())
            end = dt.date.fromisoformat(last.strip()) if last else start
        except ValueError:
            raise reader.fail(
                key, f"{written(text)}不是有效日期，应写如 2027-02-06 或 2027-02-06..2027-02-12"
            ) from None
        if end < start:
            raise reader.fail(key, f"{written(text)}结束日期早于开始日期，请前后对调")
        for day in (start, end):
            if day.year != year and (day.year, day.month) != (year - 1, 12):
                raise reader.fail(
                    key,
                    f"{written(text)}不在{year}年内（元旦假期可始于上一年12月），请写在对应年份下",
                )
        days.update(start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    return days


def _minutes(reader: Table, key: str = "grace_minutes") -> dt.timedelta:
    return dt.timedelta(minutes=reader.whole(key, 0))


POINT_STATES = ("on_time", "late", "missing")


def _jobs(top: Table, item_ids: set[str]) -> JobSettings:
    top.check_keys({"catch_up", "reminder", "overdue", "alert", "digest", "assessment"})
    catch_up = top.sub("catch_up")
    catch_up.check_keys(KEYS["catch_up"])
    reminder = top.sub("reminder")
    reminder.check_keys(KEYS["reminder"])
    at = reminder.text("at", "09:00")
    try:
        reminder_at = dt.time.fromisoformat(at)
    except ValueError:
        raise reminder.fail("at", f"{written(at)}不是有效时间，应写如 09:00") from None
    overdue, alert = top.sub("overdue"), top.sub("alert")
    overdue.check_keys(KEYS["overdue"])
    alert.check_keys(KEYS["alert"])
    digest = top.sub("digest")
    digest.check_keys(KEYS["digest"])
    for item in digest.texts("items"):
        if item not in item_ids:
            raise digest.fail(
                "items", f"{written(item)}不是已列出的事项，应为 items.toml 中某个事项的 id"
            )
    assessment = top.sub("assessment")
    assessment.check_keys(KEYS["assessment"])
    points = assessment.sub("points")
    points.check_keys(KEYS["assessment.points"])
    weights = assessment.sub("item_weights", required=False)
    for item in weights.data:
        if item not in item_ids:
            raise weights.fail(item, "没有这个事项，左边应为 items.toml 中某个事项的 id")
        weights.number(item, minimum=0)
    return JobSettings(
        reminder_days_before=reminder.whole("working_days_before", 1),
        reminder_at=reminder_at,
        overdue_grace=_minutes(overdue),
        alert_grace=_minutes(alert),
        digest_items=digest.texts("items"),
        digest_grace=_minutes(digest),
        digest_late_after=_minutes(digest, "late_after_minutes"),
        assessment_grace=_minutes(assessment),
        drop_after=dt.timedelta(days=catch_up.whole("drop_after_days", 3)),
        points={state: points.number(state, minimum=None) for state in POINT_STATES},
        item_weights=dict(weights.data),
    )
