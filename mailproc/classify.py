"""Classify: what a parsed mail is, for whom, about what, and against which deadline.

This stage applies the campaign's decision rules (shared/domain.md) and nothing else: the
gate (auto-replies, bounces, bulk mail, answers to mailproc), the unit (subject, file names,
附件1's 填报单位, registered address, body), the item, the period and the status, and the
problems that decide between an acknowledgement and a missing-item notice. It reads the
ledger only through `History`, so it can be tested without a database.
"""

import datetime as dt
import functools
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import PurePath
from typing import Protocol

from mailproc.filekinds import (
    DOCUMENT_KINDS,
    DOCUMENT_SUFFIXES,
    OLE2_MAGIC,
    OLE2_SECTOR,
    SHEET_KINDS,
    SHEET_SUFFIXES,
    WORD_KINDS,
    WORD_SUFFIXES,
    ZIP_PREFIX,
    pdf_is_complete,
)
from mailproc.parse import Attachment, ParsedMail
from mailproc.rules import Item, Rules, Unit
from mailproc.sheets import StatsTable, UnreadableFile, pick, read_tables
from mailproc.text import normalize, simplify
from mailproc.values import Booking, Classification, FileCheck, Flag

# Problems in the order domain.md gives them: the first that applies is the one reported.
# Attachment problems (from parse) that mean the file's structure is broken; the others
# (an odd file name, stray base64 characters) do not stop it from opening.
DAMAGE_PREFIXES = ("truncated or corrupt", "corrupt zip")
DAMAGED = "文件不完整或已损坏（可能在传输中被截断）"
NO_TABLE = "打开后未找到附件1《活动情况统计表》的表头"
PROBLEM_ORDER = ("cloud_link", "no_attachment", "no_stats", "unreadable_file", "bad_cells")
STATS_PROBLEMS = {"cloud_link", "no_stats", "unreadable_file", "bad_cells"}  # no 附件1 counted

_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_WEEK_NUMBER = re.compile(r"第\s*([0-9一二三四五六七八九]{1,2})\s*周")
_DATE = re.compile(
    r"(?<![0-9])(?:(?P<m>1[0-2]|0?[1-9])\s*(?:月|[.．/\-])\s*(?P<d>3[01]|[12][0-9]|0?[1-9])\s*[日号]?"
    r"|(?:20[0-9]{2})?(?P<m4>0[1-9]|1[0-2])(?P<d4>0[1-9]|[12][0-9]|3[01]))(?![0-9])"
)
_DAY_ONLY = re.compile(r"(?<![0-9])(?P<d>3[01]|[12][0-9]|0?[1-9])\s*[日号]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_RANGE_JOINER = re.compile(r"^\s*(?:-|－|—|–|~|～|至|到)\s*")
_ON_BEHALF = re.compile(r"代(?:为|替)?(?:报送?)?$")
MIN_ABBREVIATION, MAX_ABBREVIATION = 3, 16  # characters of a unit name written short
_REPLY_PREFIX_SPLIT = re.compile(r"^\s*([^\s:：]{1,4})\s*[:：]\s*")


class History(Protocol):
    """What classification needs to know of mail already in the ledger."""

    def receipts(self, unit: str, item: str, period: str) -> list[dict]: ...

    def answered_by_us(self, message_ids: Iterable[str]) -> dict | None:
        """The ledger row of the mail that one of our outgoing messages (by Message-ID) answered."""
        ...

    def is_ours(self, message_ids: Iterable[str]) -> bool: ...

    def deadline(self, unit: str, item: str, period: str, deadline: dt.datetime) -> dt.datetime:
        """The deadline that holds for this unit: the campaign's, or one the office extended."""
        ...


def _chain(mail: ParsedMail) -> list[ParsedMail]:
    """The mail and the messages forwarded inside it, innermost first."""
    chain = [mail]
    while chain[-1].forwarded is not None and len(chain) < 5:
        chain.append(chain[-1].forwarded)
    return chain[::-1]


class Classifier:
    """Applies one set of rules; built once per run, since matching tables are precomputed."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.names = rules.unit_names_longest_first()
        self.tags = {kind: normalize(tag) for kind, tag in rules.tags.items()}
        self.raw_tags = list(rules.tags.values())
        self.campaign_words = [normalize(w) for w in rules.words["campaign"]]
        self.stats_file_words = [normalize(w) for w in rules.table["file_words"]]
        self.auto_subjects = [normalize(w) for w in rules.words["auto_reply_subjects"]]
        self.reply_prefixes = {p.lower() for p in rules.words["reply_prefixes"]}
        self.cloud_links = [re.compile(p, re.I) for p in rules.words["cloud_link_patterns"]]
        regions = rules.words.get("region_words", [])  # optional: older rules lack it
        self.regions = sorted((normalize(w) for w in regions), key=len)[::-1]
        self.own_row_labels = {normalize(w) for w in rules.table.get("own_row_labels", [])}
        # a file named 累计/合计… holds running totals, not the period's figures
        self.cumulative_words = [normalize(w) for w in rules.table.get("total_row_labels", [])]
        # unit names with the place names set aside, by first character, for abbreviations
        self.cores: dict[str, list[tuple[str, Unit]]] = {}
        for unit in rules.units:
            for name in unit.names:
                core = self.without_regions(normalize(name))
                if len(core) >= MIN_ABBREVIATION:
                    self.cores.setdefault(core[0], []).append((core, unit))
        self.unit_ends = {core[-1] for forms in self.cores.values() for core, _ in forms}
        self.weekly = next((i for i in rules.items if i.weekly), None)
        self.weekly_dates: dict[tuple[int, int], tuple[Item, dt.datetime]] = {
            (d.month, d.day): (item, d)
            for item in rules.items
            if item.weekly
            for d in item.deadlines
        }

    # -- the gate ------------------------------------------------------------------------

    def _header(self, mail: ParsedMail, name: str) -> str:
        values = mail.headers.get(name, [])
        return values[0].strip() if values else ""

    def gate(self, mail: ParsedMail, history: History) -> str | None:
        """The reason mailproc must never answer this mail, or None."""
        if self._header(mail, "x-mailproc-kind") or history.is_ours(
            [mail.message_id] if mail.message_id else []
        ):
            return "own"
        return_path = self._header(mail, "return-path")
        sender = mail.from_address.split("@")[0].lower()
        if (
            return_path == "<>"
            or sender in {"mailer-daemon", "postmaster", "mail-daemon"}
            or mail.content_type == "multipart/report"
        ):
            return "bounce"
        auto = self._header(mail, "auto-submitted").lower()
        subject = normalize(mail.subject)
        if (
            (auto and auto != "no")
            or self._header(mail, "x-autoreply")
            or self._header(mail, "x-autorespond")
            or any(subject.startswith(w) for w in self.auto_subjects)
        ):
            return "auto_reply"
        precedence = self._header(mail, "precedence").lower()
        if precedence in {"bulk", "list", "junk"} or any(
            name.startswith("list-") for name in mail.headers
        ):
            return "bulk"
        return None

    def answers_us(self, mail: ParsedMail, history: History) -> dict | None:
        """The mail we answered, when this one replies to one of our messages; {} if unknown."""
        ids = [i for i in [mail.in_reply_to, *mail.references] if i]
        answered = history.answered_by_us(ids)
        if answered is not None:
            return answered
        if any(
            tag in normalize(self.strip_reply_prefixes(mail.subject))[:12]
            for tag in self.tags.values()
        ):
            return {}
        return None

    def strip_reply_prefixes(self, subject: str) -> str:
        text = subject
        while True:
            match = _REPLY_PREFIX_SPLIT.match(text)
            if not match or match.group(1).lower() not in self.reply_prefixes:
                return text
            text = text[match.end() :]

    def strip_tags(self, subject: str) -> str:
        text = self.strip_reply_prefixes(subject)
        for tag in self.raw_tags:
            text = text.replace(tag, " ")
        return text

    # -- units ---------------------------------------------------------------------------

    def unit_in(self, text: str) -> Unit | None:
        """The unit named earliest in `text` (longest name at that place); a unit named right
        after 代 (代报, 代为报送) first: it is the one the mail reports for."""
        norm = normalize(text)
        named: list[tuple[int, int, Unit]] = []
        for name, unit in self.names:
            pos = norm.find(name)
            while pos >= 0:
                named.append((pos, -len(name), unit))
                pos = norm.find(name, pos + 1)
        for pos, _, unit in sorted(named):
            if _ON_BEHALF.search(norm[max(0, pos - 4) : pos]):
                return unit
        return min(named, key=lambda hit: hit[:2])[2] if named else None

    def unit_named(self, text: str) -> Unit | None:
        """The unit `text` names in full (or by an alias), else by a short form."""
        return self.unit_in(text) or self.unit_abbreviated_in(text)

    def without_regions(self, text: str) -> str:
        for word in self.regions:
            text = text.replace(word, "")
        return text[1:] if text.startswith("区") else text

    def unit_abbreviated_in(self, text: str) -> Unit | None:
        """The unit a name in `text` abbreviates (区市场局, 区住房城乡建设局, 国网盘锦市大洼区供电
        公司): with place names set aside, its characters appear in order in the unit's name and
        it shares the first and last character. The longest such name wins, and only when it
        fits one unit."""
        norm = normalize(text)
        for length in range(min(len(norm), MAX_ABBREVIATION), MIN_ABBREVIATION - 1, -1):
            for start in range(len(norm) - length + 1):
                written = norm[start : start + length]
                if written[-1] not in self.unit_ends:
                    continue
                core = self.without_regions(written)
                if len(core) < MIN_ABBREVIATION:
                    continue
                fits = {
                    unit
                    for name, unit in self.cores.get(core[0], [])
                    if name[-1] == core[-1] and _in_order(core, name)
                }
                if len(fits) == 1:
                    return fits.pop()
        return None

    def sender_unit(self, chain: list[ParsedMail]) -> Unit | None:
        for mail in chain:
            unit = self.rules.unit_by_address(mail.from_address) or self.rules.unit_by_address(
                mail.reply_to
            )
            if unit:
                return unit
        return None

    # -- files ---------------------------------------------------------------------------

    def check_files(self, attachments: list[Attachment]) -> list[FileCheck]:
        """Open every office file: which one is 附件1, which are documents, which are broken."""
        checks = []
        for att in attachments:
            suffix = PurePath(att.filename).suffix.lower()
            if att.kind == "image":
                checks.append(FileCheck(att, "image"))
                continue
            is_sheet = att.kind in SHEET_KINDS or suffix in SHEET_SUFFIXES
            is_word = att.kind in WORD_KINDS or suffix in WORD_SUFFIXES
            if not (is_sheet or att.kind in DOCUMENT_KINDS or suffix in DOCUMENT_SUFFIXES):
                checks.append(FileCheck(att, "other"))
                continue
            check = FileCheck(att, "document")
            if any(p.startswith(DAMAGE_PREFIXES) for p in att.problems):
                check.error = DAMAGED
            if is_sheet or is_word:
                try:
                    check.tables = read_tables(att.container, att.filename, att.kind, self.rules)
                    check.table = pick(check.tables) if check.tables else None
                except UnreadableFile as exc:
                    check.error = str(exc)
                named_stats = any(w in normalize(att.filename) for w in self.stats_file_words)
                if check.table is not None:
                    check.role = "stats"
                elif is_sheet or named_stats:
                    check.role = "stats_candidate"
                    check.error = check.error or NO_TABLE
            if check.error is None and check.role == "document":
                check.error = document_problem(att)
            checks.append(check)
        return checks

    def names_unit(self, label: str, unit: Unit) -> bool:
        """Whether a row label (or 填报单位) names `unit`: its name, a short form, 本单位."""
        if normalize(label) in self.own_row_labels:
            return True
        return self.unit_named(label) is unit

    def read_own_rows(self, files: list[FileCheck], unit: Unit) -> list[str]:
        """Pick the unit's own row in every 附件1 with several filled rows (a town's villages, a
        district template) or none; notes for the office when no row names it."""
        notes = []
        for check in files:
            table, tables = check.table, check.tables
            if table is None or tables is None or table.data_rows == 1:
                continue
            own = pick(tables, own_row=self.own_row_of(unit))
            if own is not None and self.names_unit(own.row_label, unit):
                check.table = own
            elif table.data_rows > 1:
                notes.append(
                    f"附件1 有 {table.data_rows} 行数据，没有写明{unit.name}的一行："
                    f"{check.attachment.filename} 取第一行（{table.row_label or '无名称'}）"
                )
        return notes

    def read_week_sheets(self, files: list[FileCheck], week: int, unit: Unit) -> None:
        """A workbook kept with a sheet per week (第一周, 第二周 …): pick the report's week's."""
        for check in files:
            table, tables = check.table, check.tables
            if table is None or tables is None or self.week_number(table.sheet) in (None, week):
                continue
            own = pick(
                tables,
                own_row=self.own_row_of(unit),
                sheet=lambda name: self.week_number(name) == week,
            )
            if own is not None and self.week_number(own.sheet) == week:
                check.table = own

    def own_row_of(self, unit: Unit) -> Callable[[str], bool]:
        """Whether a row label names `unit` (see `names_unit`), as `sheets.pick` asks it."""
        return functools.partial(self.names_unit, unit=unit)

    def own_table(self, files: list[FileCheck], unit: Unit | None) -> StatsTable | None:
        """The 附件1 whose figures count: the unit's own (by 填报单位) before another unit's, a
        readable one before one with bad cells, a week's before a 累计 one, then file order."""
        tables = [c.table for c in files if c.table is not None]

        def rank(table: StatsTable) -> tuple[bool, bool, bool]:
            other = bool(unit and table.reporter and not self.names_unit(table.reporter, unit))
            cumulative = any(w in normalize(table.filename) for w in self.cumulative_words)
            return other, bool(table.bad_cells), cumulative

        return min(tables, key=rank, default=None)

    # -- items and periods -----------------------------------------------------------------

    def item_candidates(self, text: str) -> list[tuple[int, Item]]:
        norm = normalize(text)
        found = []
        for item in self.rules.items:
            strength = max((len(s.all) for s in item.signals if s.matches(norm)), default=0)
            if strength:
                found.append((strength, item))
        return found

    def choose_item(self, candidates: list[tuple[int, Item]], received: dt.datetime) -> Item:
        """The most specific signal wins; among equals, the item whose deadline comes next."""
        top = max(s for s, _ in candidates)
        best = [item for s, item in candidates if s == top]
        if len(best) == 1:
            return best[0]

        def upcoming(item: Item) -> tuple[int, float]:
            if item.never_late:
                return (0, 0.0)
            later = [d for d in item.deadlines if d >= received]
            if later:
                return (1, min(later).timestamp())
            return (2, -max(item.deadlines).timestamp())

        return min(best, key=upcoming)

    def is_activity_report(self, subject: str) -> Item | None:
        norm = normalize(subject)
        for item in self.rules.items:
            if (
                item.activity_words
                and any(v in norm for v in item.activity_verbs)
                and any(w in norm for w in item.activity_words)
            ):
                return item
        return None

    def week_number(self, text: str) -> int | None:
        """The week a text names as 第N周 (1 to the number of weekly deadlines), or None."""
        return self._week_in(simplify(text))

    def _week_in(self, plain: str) -> int | None:
        for match in _WEEK_NUMBER.finditer(plain):
            raw = match.group(1)
            number = int(raw) if raw.isdigit() else _CN_DIGITS.get(raw, 0)
            if self.weekly and 1 <= number <= len(self.weekly.deadlines):
                return number
        return None

    def explicit_week(self, texts: list[tuple[str, str]]) -> tuple[dt.datetime, str] | None:
        """The weekly deadline a report names (第N周, a deadline's date, a range ending on one)."""
        if self.weekly is None:
            return None
        for source, text in texts:
            plain = simplify(text)
            number = self._week_in(plain)
            if number:
                return self.weekly.deadlines[number - 1], f"{source}: 第{number}周"
            for month, day, shown in _dates_named(plain):
                hit = self.weekly_dates.get((month, day))
                if hit:
                    return hit[1], f"{source}: {shown}"
        return None

    def weekly_period(
        self, item: Item, unit: str, received: dt.datetime, history: History
    ) -> dt.datetime:
        """The deadline a report naming no week counts against (domain.md timing rules)."""
        previous = [d for d in item.deadlines if d < received]
        if previous:
            last = previous[-1]
            grace_end = dt.datetime.combine(
                last.date() + dt.timedelta(days=item.late_grace_days), dt.time.max, last.tzinfo
            )
            if received <= grace_end and not history.receipts(unit, item.id, item.period_of(last)):
                return last
        upcoming = [d for d in item.deadlines if d >= received]
        return upcoming[0] if upcoming else item.deadlines[-1]

    # -- the whole decision ------------------------------------------------------------

    def classify(
        self,
        mail: ParsedMail,
        received: dt.datetime,
        history: History,
        booking: Booking | None = None,
    ) -> Classification:
        """The mail's reading; with a `booking`, the office's unit, item (and period) stand."""
        chain = _chain(mail)
        sender = self.sender_unit(chain)
        sender_name = sender.name if sender else None
        gate = self.gate(mail, history)
        if gate in {"own", "bounce"}:
            return Classification(disposition=gate)
        if gate == "bulk" and sender is None:
            return Classification(disposition="bulk")

        subjects = [self.strip_tags(m.subject) for m in chain]
        bodies = [m.body_text or m.body_html for m in chain]
        names = " ".join(a.filename for a in mail.attachments)
        answered = self.answers_us(mail, history)
        if booking is None and (
            gate == "auto_reply" or (answered is not None and not mail.attachments)
        ):
            result = Classification(
                disposition="auto_reply" if gate == "auto_reply" else "answer_to_us",
                sender_unit=sender_name,
            )
            unit = self.unit_in(" ".join(subjects)) or sender
            result.unit = unit.name if unit else None
            result.unit_source = "subject" if unit and unit is not sender else "address"
            return result

        files = self.check_files(mail.attachments)
        result = Classification(disposition="submission", sender_unit=sender_name, files=files)

        unit, source = self._find_unit(subjects, mail.attachments, files, sender, bodies)
        if booking is not None:
            unit, source = self.rules.unit(booking.unit), "office"
        if unit is None and answered:
            unit, source = self.rules.unit(answered.get("unit") or ""), "answered"
        result.unit = unit.name if unit else None
        result.unit_source = source
        if unit and sender and unit is not sender:
            on_behalf = f"代报：{sender.name} 的邮箱为 {unit.name} 报送"
            result.notes.append(on_behalf)
            result.flags.append(Flag("on_behalf", on_behalf))
        if unit:
            result.notes.extend(self.read_own_rows(files, unit))
        for check in files:
            reporter_unit = (
                self.unit_in(check.table.reporter) if check.table and check.table.reporter else None
            )
            if unit and reporter_unit and reporter_unit is not unit:
                written = check.table.reporter
                mismatch = f"填报单位不符：{check.attachment.filename} 写的是 {written}"
                result.notes.append(mismatch)
                result.flags.append(Flag("reporter_mismatch", mismatch))

        item = self._find_item(subjects, names, bodies, files, received)
        if booking is not None:
            item = self.rules.item(booking.item)
        if item is None and answered:
            item = self.rules.item(answered.get("item") or "")
        looks_like_submission = self._looks_like_submission(subjects, names, bodies, files)
        if unit is None or item is None:
            result.disposition = "unrecognized" if looks_like_submission else "unrelated"
            if looks_like_submission:
                result.notes.append("无法确定报送单位" if unit is None else "无法确定报送内容")
            if unit is None:
                result.unit_source = None
            result.reply = "unrecognized" if looks_like_submission and gate is None else "none"
            if answered is not None and unit is None and result.reply != "none":
                # someone answering our notice (a supervisor on a 逾期通报) is no unit to correct
                result.reply = "none"
                result.notes.append("不回复：回复本系统邮件，单位不明，请办公室查看")
            return result
        result.item = item.id

        earlier: list[dict] = []
        if not item.never_late:
            booked = booking and booking.period and item.deadline_for(booking.period)
            if booked:
                deadline, why = booked, "办公室指定"
            else:
                deadline, why = self._deadline(
                    item, unit, subjects, names, bodies, received, history, answered
                )
            result.deadline = deadline
            result.period = item.period_of(deadline)
            if why:
                result.notes.append(f"周次：{why}")
            if item.weekly:
                self.read_week_sheets(files, item.deadlines.index(deadline) + 1, unit)
            earlier = history.receipts(unit.name, item.id, result.period)
            result.version = len(earlier) + 1
            result.unit_deadline = history.deadline(unit.name, item.id, result.period, deadline)
            result.on_time = received <= result.unit_deadline
            if earlier:
                result.status = earlier[0]["status"]
            else:
                result.status = "on_time" if result.on_time else "late"

        result.problems = self._problems(item, mail, files, bodies, earlier)
        result.table = self.own_table(files, unit)
        if gate is not None:
            result.notes.append(f"不回复：{gate}")
            result.reply = "none"
        else:
            result.reply = "missing" if result.problems else "ack"
        return result

    def _find_unit(
        self,
        subjects: list[str],
        attachments: list[Attachment],
        files: list[FileCheck],
        sender: Unit | None,
        bodies: list[str],
    ) -> tuple[Unit | None, str | None]:
        reporters = [c.table.reporter for c in files if c.table and c.table.reporter]
        for source, texts in (
            ("subject", subjects),
            ("filename", [att.filename for att in attachments]),
            ("table", reporters),
        ):
            for text in texts:
                unit = self.unit_named(text)
                if unit:
                    return unit, source
        if sender:
            return sender, "address"
        for body in bodies:
            unit = self.unit_in(body)
            if unit:
                return unit, "body"
        return None, None

    def _find_item(
        self,
        subjects: list[str],
        names: str,
        bodies: list[str],
        files: list[FileCheck],
        received: dt.datetime,
    ) -> Item | None:
        has_stats = any(c.role in {"stats", "stats_candidate"} for c in files)
        subject = " ".join(subjects)
        sources = [subject, names, *bodies]
        if self.weekly and (self.week_number(subject) or self.week_number(names)):
            return self.weekly  # only a weekly report has a 第N周, whatever else its subject says
        first = self.item_candidates(subject)
        if not any(item.never_late for _, item in first):
            activity = self.is_activity_report(subject)
            dated_report = any(i.weekly for _, i in first) and self.explicit_week(
                [("subject", subject)]
            )
            if activity and not has_stats and not dated_report:
                return activity  # a date in its subject is the activity's date
        for text in sources:
            candidates = self.item_candidates(text)
            if candidates:
                return self.choose_item(candidates, received)
        if any(c.role == "stats" for c in files):  # 附件1 and no word for the item: by the date
            return self.choose_item([(1, i) for i in self.rules.items if i.needs_stats], received)
        return None

    def _deadline(
        self,
        item: Item,
        unit: Unit,
        subjects: list[str],
        names: str,
        bodies: list[str],
        received: dt.datetime,
        history: History,
        answered: dict | None,
    ) -> tuple[dt.datetime, str | None]:
        if item.weekly:
            texts = (
                [("主题", s) for s in subjects]
                + [("附件名", names)]
                + [("正文", b) for b in bodies]
            )
            explicit = self.explicit_week(texts)
            if explicit:
                return explicit
            if answered and answered.get("item") == item.id and answered.get("period"):
                deadline = item.deadline_for(answered["period"])
                if deadline:
                    return deadline, "回复所针对的通知"
            return self.weekly_period(item, unit.name, received, history), None
        upcoming = [d for d in item.deadlines if d >= received]
        return (upcoming[0] if upcoming else item.deadlines[-1]), None

    def _looks_like_submission(
        self, subjects: list[str], names: str, bodies: list[str], files: list[FileCheck]
    ) -> bool:
        """Campaign words, a 附件1 table, or an office document in a mail written in Chinese."""
        text = " ".join([*subjects, names, *bodies])
        if any(w in normalize(text) for w in self.campaign_words):
            return True
        if any(c.role == "stats" for c in files):
            return True
        has_document = any(c.role in {"stats_candidate", "document"} for c in files)
        return has_document and _CJK.search(text) is not None

    def _problems(
        self,
        item: Item,
        mail: ParsedMail,
        files: list[FileCheck],
        bodies: list[str],
        earlier: list[dict],
    ) -> list[str]:
        """What this version lacks. A part an earlier version of the same period brought (the
        summary's document in version 1) is not asked for again when a later one brings the
        rest (附件1 in version 2)."""
        before = [set(json.loads(row.get("problems") or "[]")) for row in earlier]
        had_document = any(not lacks & {"no_attachment", "cloud_link"} for lacks in before)
        had_stats = any(not lacks & STATS_PROBLEMS for lacks in before)
        problems = []
        readable_tables = [c.table for c in files if c.table is not None]
        for check in files:
            # A spreadsheet that is not 附件1 matters only while 附件1 is still owed.
            if check.role == "stats_candidate" and (readable_tables or not item.needs_stats):
                check.note, check.error = check.error, None
        documents = [c for c in files if c.role in {"document", "stats", "stats_candidate"}]
        stats_files = [c for c in files if c.role in {"stats", "stats_candidate"}]
        real_documents = [
            c
            for c in documents
            if c.attachment.kind in DOCUMENT_KINDS
            or PurePath(c.attachment.filename).suffix.lower() in DOCUMENT_SUFFIXES
        ]
        missing_document = item.needs_document and not real_documents and not had_document
        missing_stats = item.needs_stats and not stats_files and not had_stats
        links = " ".join([*bodies, *(m.body_html for m in _chain(mail))])
        if (missing_document or missing_stats) and any(p.search(links) for p in self.cloud_links):
            problems.append("cloud_link")
        if missing_document:
            problems.append("no_attachment")
        if missing_stats:
            problems.append("no_stats")
        if any(c.error for c in files):
            problems.append("unreadable_file")
        if item.needs_stats and readable_tables and all(t.bad_cells for t in readable_tables):
            problems.append("bad_cells")
        return sorted(set(problems), key=PROBLEM_ORDER.index)


def _in_order(short: str, name: str) -> bool:
    """Whether the characters of `short` appear in `name` in the same order."""
    rest = iter(name)
    return all(char in rest for char in short)


def _dates_named(text: str) -> list[tuple[int, int, str]]:
    """(month, day, as written) for each date in `text`; a range counts by its last day."""
    found: list[tuple[int, int, str]] = []
    matches = list(_DATE.finditer(text))
    skip_until = -1
    for index, match in enumerate(matches):
        if match.start() < skip_until:
            continue
        month = int(match.group("m") or match.group("m4"))
        day = int(match.group("d") or match.group("d4"))
        rest = text[match.end() :]
        joiner = _RANGE_JOINER.match(rest)
        if joiner:
            after = rest[joiner.end() :]
            following = matches[index + 1] if index + 1 < len(matches) else None
            if following and following.start() == match.end() + joiner.end():
                month = int(following.group("m") or following.group("m4"))
                day = int(following.group("d") or following.group("d4"))
                skip_until = following.end()
                found.append((month, day, text[match.start() : following.end()]))
                continue
            day_only = _DAY_ONLY.match(after)
            if day_only:
                found.append(
                    (
                        month,
                        int(day_only.group("d")),
                        text[match.start() : match.end() + joiner.end() + day_only.end()],
                    )
                )
                continue
        found.append((month, day, match.group(0)))
    return found


def document_problem(att: Attachment) -> str | None:
    """Why an office document cannot be opened, checked cheaply by its structure."""
    data = att.data
    if not data:
        return "文件为空"
    if att.kind == "pdf":
        if not pdf_is_complete(data):
            return "PDF 文件不完整（可能在传输中被截断）"
        return None
    if att.kind == "docx" or data.startswith(ZIP_PREFIX):
        try:
            att.container.zip()
        except zipfile.BadZipFile:
            return "文件已损坏，无法打开（压缩结构不完整）"
        return None
    if data.startswith(OLE2_MAGIC) and len(data) % OLE2_SECTOR != 0:
        return "文件不完整（可能在传输中被截断）"
    return None
