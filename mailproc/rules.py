"""Campaign rules: the TOML files in `rules/` loaded into plain objects, and their checks.

Everything about one campaign (units, items, deadlines, 附件1 columns, words) lives in those
files; the code only knows their shape. `load_rules` raises `RulesError` naming file, key and
problem, so an office clerk editing a file sees exactly what to fix.
"""

import datetime as dt
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailproc.text import normalize
from mailproc.workdays import next_working_day

RULE_FILES = ("campaign.toml", "units.toml", "items.toml", "columns.toml", "jobs.toml")


class RulesError(Exception):
    """A rules file is missing, malformed or inconsistent."""


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


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    short: str
    label: str
    deadlines: tuple[dt.datetime, ...]
    signals: tuple[Signal, ...]
    needs_document: bool
    needs_stats: bool
    needs_paper: bool
    body_counts: bool
    weekly: bool = False
    never_late: bool = False
    late_grace_days: int = 1
    activity_verbs: tuple[str, ...] = ()
    activity_words: tuple[str, ...] = ()

    def period_of(self, deadline: dt.datetime) -> str:
        return deadline.date().isoformat()

    def deadline_for(self, period: str) -> dt.datetime | None:
        return next((d for d in self.deadlines if self.period_of(d) == period), None)


@dataclass(frozen=True)
class Column:
    id: str
    group: str
    header: str
    unit: str
    group_synonyms: tuple[str, ...]
    synonyms: tuple[str, ...]
    flat: tuple[str, ...]


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
    _by_address: dict[str, Unit] = field(default_factory=dict, repr=False)

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


def _read(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"{path}: file missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise RulesError(f"{path}: not UTF-8 text") from None


class _Reader:
    """Typed access to one TOML table that names file and key in every error."""

    def __init__(self, path: Path, where: str, data: Any):
        if not isinstance(data, dict):
            raise RulesError(f"{path}: {where}: expected a table")
        self.path, self.where, self.data = path, where, data

    def _fail(self, key: str, problem: str) -> RulesError:
        return RulesError(f"{self.path}: {self.where}.{key}: {problem}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise self._fail(key, "missing")
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of strings")
        return tuple(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, got {value!r}")
        return value

    def number(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._fail(key, f"must be a whole number ≥ 0, got {value!r}")
        return value

    def table_list(self, key: str) -> list["_Reader"]:
        value = self.data.get(key)
        if not isinstance(value, list) or not value:
            raise self._fail(key, "missing: at least one [[" + key + "]] is needed")
        return [_Reader(self.path, f"{key}[{n}]", v) for n, v in enumerate(value)]

    def sub(self, key: str, required: bool = True) -> "_Reader":
        value = self.data.get(key)
        if value is None and not required:
            value = {}
        if value is None:
            raise self._fail(key, "missing")
        return _Reader(self.path, f"{self.where}.{key}".lstrip("."), value)

    def unknown_keys(self, allowed: set[str]) -> None:
        extra = sorted(set(self.data) - allowed)
        if extra:
            raise self._fail(extra[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _deadline(reader: _Reader, text: str, tz: zoneinfo.ZoneInfo, roll: bool) -> dt.datetime:
    """A deadline as written (a date alone: 23:59:59 that day); with `roll`, one that falls on
    a public holiday or weekend moves to the same time of the next working day."""
    try:
        if _DATE_ONLY.match(text):
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(23, 59, 59), tz)
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise reader._fail("deadlines", f"{text!r} is not a date or date-time") from None
    moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    if roll:
        moment = dt.datetime.combine(next_working_day(moment.date()), moment.timetz())
    return moment


def load_rules(folder: str | Path) -> Rules:
    """Load and check every rules file in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RulesError(f"{folder}: rules folder not found")
    raw = {name: _read(folder, name) for name in RULE_FILES}

    campaign_file = folder / "campaign.toml"
    top = _Reader(campaign_file, "", raw["campaign.toml"])
    campaign = top.sub("campaign")
    tz_name = campaign.text("timezone", "Asia/Shanghai")
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise campaign._fail("timezone", f"unknown time zone {tz_name!r}") from None
    campaign.text("name")
    roll = campaign.flag("roll_holiday_deadlines")
    office = top.sub("office")
    office.text("name")
    office.text("address")
    words = top.sub("words")
    for key in (
        "campaign",
        "auto_reply_subjects",
        "reply_prefixes",
        "cloud_link_patterns",
        "region_words",
    ):
        words.texts(key)
    for pattern in words.texts("cloud_link_patterns"):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise words._fail("cloud_link_patterns", f"{pattern!r}: {exc}") from None
    tags = top.sub("tags")
    for kind in (
        "ack",
        "missing",
        "unrecognized",
        "reminder",
        "overdue",
        "alert",
        "digest",
        "assessment",
    ):
        tags.text(kind)

    units_top = _Reader(folder / "units.toml", "", raw["units.toml"])
    categories = []
    for cat in units_top.table_list("category"):
        cat.unknown_keys({"id", "label"})
        categories.append((cat.text("id"), cat.text("label", cat.data.get("id"))))
    category_ids = {c for c, _ in categories}
    units: list[Unit] = []
    seen_names: dict[str, str] = {}
    by_address: dict[str, Unit] = {}
    for reader in units_top.table_list("unit"):
        reader.unknown_keys({"name", "category", "aliases", "addresses"})
        unit = Unit(
            name=reader.text("name"),
            category=reader.text("category"),
            aliases=reader.texts("aliases"),
            addresses=tuple(a.strip().lower() for a in reader.texts("addresses")),
        )
        if unit.category not in category_ids:
            raise reader._fail("category", f"{unit.category!r} is not a [[category]] id")
        for name in unit.names:
            key = normalize(name)
            if key in seen_names and seen_names[key] != unit.name:
                raise reader._fail("aliases", f"{name!r} already names {seen_names[key]}")
            seen_names[key] = unit.name
        for address in unit.addresses:
            if "@" not in address:
                raise reader._fail("addresses", f"{address!r} is not a mail address")
            if address in by_address:
                raise reader._fail(
                    "addresses", f"{address} already belongs to {by_address[address].name}"
                )
            by_address[address] = unit
        units.append(unit)

    items_top = _Reader(folder / "items.toml", "", raw["items.toml"])
    items: list[Item] = []
    item_keys = {
        "id", "name", "short", "label", "deadlines", "weekly", "late_grace_days", "never_late",
        "carries", "signals", "activity_verbs", "activity_words",
    }  # fmt: skip
    for reader in items_top.table_list("item"):
        reader.unknown_keys(item_keys)
        carries = reader.sub("carries")
        carries.unknown_keys({"document", "stats", "paper", "body_counts"})
        signals = []
        for sig in reader.table_list("signals"):
            sig.unknown_keys({"all", "none"})
            words_all = tuple(normalize(w) for w in sig.texts("all"))
            if not words_all:
                raise sig._fail("all", "needs at least one word")
            signals.append(Signal(words_all, tuple(normalize(w) for w in sig.texts("none"))))
        never_late = reader.flag("never_late")
        deadline_texts = reader.texts("deadlines")
        if not never_late and not deadline_texts:
            raise reader._fail("deadlines", "missing (or set never_late = true)")
        item = Item(
            id=reader.text("id"),
            name=reader.text("name"),
            short=reader.text("short", reader.data.get("name")),
            label=reader.text("label", reader.data.get("short") or reader.data.get("name")),
            deadlines=tuple(sorted(_deadline(reader, t, tz, roll) for t in deadline_texts)),
            signals=tuple(signals),
            needs_document=carries.flag("document"),
            needs_stats=carries.flag("stats"),
            needs_paper=carries.flag("paper"),
            body_counts=carries.flag("body_counts"),
            weekly=reader.flag("weekly"),
            never_late=never_late,
            late_grace_days=reader.number("late_grace_days", 1),
            activity_verbs=tuple(normalize(w) for w in reader.texts("activity_verbs")),
            activity_words=tuple(normalize(w) for w in reader.texts("activity_words")),
        )
        if any(i.id == item.id for i in items):
            raise reader._fail("id", f"{item.id!r} appears twice")
        items.append(item)

    columns_top = _Reader(folder / "columns.toml", "", raw["columns.toml"])
    table = columns_top.sub("table")
    table_lists = (
        "reporter_labels",
        "total_row_labels",
        "vertical_labels",
        "vertical_value_labels",
    )
    for key in (*table_lists, "file_words"):
        table.texts(key)
    values = columns_top.sub("values")
    for key in ("zero", "approx_prefixes", "approx_suffixes"):
        values.texts(key)
    columns: list[Column] = []
    for reader in columns_top.table_list("column"):
        reader.unknown_keys({"id", "group", "header", "unit", "group_synonyms", "synonyms", "flat"})
        column = Column(
            id=reader.text("id"),
            group=reader.text("group"),
            header=reader.text("header"),
            unit=reader.text("unit"),
            group_synonyms=reader.texts("group_synonyms"),
            synonyms=reader.texts("synonyms"),
            flat=reader.texts("flat"),
        )
        if any(c.id == column.id for c in columns):
            raise reader._fail("id", f"{column.id!r} appears twice")
        columns.append(column)

    jobs = _jobs(_Reader(folder / "jobs.toml", "", raw["jobs.toml"]), {i.id for i in items})
    return Rules(
        folder=folder,
        campaign=dict(campaign.data),
        office=dict(office.data),
        timezone=tz,
        categories=tuple(categories),
        units=tuple(units),
        items=tuple(items),
        columns=tuple(columns),
        table=dict(table.data),
        values=dict(values.data),
        words=dict(words.data),
        tags=dict(tags.data),
        jobs=jobs,
        _by_address=by_address,
    )


def _minutes(reader: _Reader, key: str = "grace_minutes") -> dt.timedelta:
    return dt.timedelta(minutes=reader.number(key, 0))


def _jobs(top: _Reader, item_ids: set[str]) -> JobSettings:
    reminder = top.sub("reminder")
    at = reminder.text("at", "09:00")
    try:
        reminder_at = dt.time.fromisoformat(at)
    except ValueError:
        raise reminder._fail("at", f"{at!r} is not a time like 09:00") from None
    digest = top.sub("digest")
    for item in digest.texts("items"):
        if item not in item_ids:
            raise digest._fail("items", f"{item!r} is not an item id")
    assessment = top.sub("assessment")
    points = assessment.sub("points").data
    for state in ("on_time", "late", "missing"):
        value = points.get(state)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise assessment._fail(f"points.{state}", f"must be a number, got {value!r}")
    weights = assessment.sub("item_weights", required=False).data
    for item, weight in weights.items():
        if item not in item_ids:
            raise assessment._fail(f"item_weights.{item}", "not an item id")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise assessment._fail(f"item_weights.{item}", f"must be a number ≥ 0, got {weight!r}")
    return JobSettings(
        reminder_days_before=reminder.number("working_days_before", 1),
        reminder_at=reminder_at,
        overdue_grace=_minutes(top.sub("overdue")),
        alert_grace=_minutes(top.sub("alert")),
        digest_items=digest.texts("items"),
        digest_grace=_minutes(digest),
        digest_late_after=_minutes(digest, "late_after_minutes"),
        assessment_grace=_minutes(assessment),
        drop_after=dt.timedelta(days=top.sub("catch_up").number("drop_after_days", 3)),
        points={state: points[state] for state in ("on_time", "late", "missing")},
        item_weights=dict(weights),
    )
