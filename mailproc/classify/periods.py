"""Items and periods: what a mail reports (its signal words, a numbered period, the table
alone) and for which deadline (a period word or date, the grace days after a periodic deadline,
the notice it answers). See docs/campaign.md#items-and-periods."""

import datetime as dt
import functools
import re

from mailproc.classify.history import History
from mailproc.read.text import normalize, simplify
from mailproc.rules import Item, Period, Rules, Unit
from mailproc.values import FileCheck

_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMBER = r"[0-9一二三四五六七八九十]{1,3}"
_MONTH = r"1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九]"
_DATE = re.compile(
    r"(?<![0-9])(?:(?P<m>1[0-2]|0?[1-9])\s*(?:月|[.．/\-])\s*(?P<d>3[01]|[12][0-9]|0?[1-9])\s*[日号]?"
    r"|(?:20[0-9]{2})?(?P<m4>0[1-9]|1[0-2])(?P<d4>0[1-9]|[12][0-9]|3[01]))(?![0-9])"
)
_DAY_ONLY = re.compile(r"(?<![0-9])(?P<d>3[01]|[12][0-9]|0?[1-9])\s*[日号]")
_RANGE_JOINER = re.compile(r"^\s*(?:-|－|—|–|~|～|至|到)\s*")


def _as_number(raw: str) -> int:
    """3, 03, 三, 十二, 二十 as a number (0 when it is none)."""
    if raw.isdigit():
        return int(raw)
    tens, _, ones = raw.rpartition("十")
    if "十" not in raw:
        return _CN_DIGITS.get(raw, 0) if len(raw) == 1 else 0
    high = _CN_DIGITS.get(tens, 0) if tens else 1
    low = _CN_DIGITS.get(ones, 0) if ones else 0
    return high * 10 + low if (not tens or high) and (not ones or low) else 0


@functools.cache
def _word_pattern(word: str) -> re.Pattern[str]:
    """A period word of the rules (第{n}期, {month}月份) as a pattern; white space between its
    parts is allowed, as people type it."""
    parts = re.split(r"(\{n\}|\{month\})", word)
    pattern = ""
    for part in parts:
        if part == "{n}":
            pattern += rf"\s*(?<![0-9])(?P<n>{_NUMBER})\s*"
        elif part == "{month}":
            pattern += rf"\s*(?<![0-9])(?P<month>{_MONTH})(?![0-9])\s*"
        else:
            pattern += re.escape(simplify(part))
    return re.compile(pattern)


def period_named(item: Item, text: str, numbered_only: bool = False) -> tuple[Period, str] | None:
    """The period of `item` a text names by one of its period words (第3周, 第二期, 8月份), with
    the words as written; `numbered_only`: only words with a number count."""
    plain = simplify(text)
    for word in item.period_words:
        if numbered_only and "{n}" not in word:
            continue
        for match in _word_pattern(word).finditer(plain):
            groups = match.groupdict()
            if groups.get("n"):
                number = _as_number(groups["n"])
                if 1 <= number <= len(item.periods):
                    return item.periods[number - 1], match.group(0).strip()
            elif groups.get("month"):
                month = _as_number(groups["month"])
                hit = next((p for p in item.periods if _month_of(p) == month), None)
                if hit:
                    return hit, match.group(0).strip()
    return None


def _month_of(period: Period) -> int:
    """The month a period is called by: the one it reports on, else its deadline's."""
    return (period.covers[0] if period.covers else period.date).month


class Periods:
    """The rules' items, with each periodic item's periods by date, found once."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.periodic = [i for i in rules.items if i.periodic]
        # (month, day) of each period's own date and of its deadline → the period
        self.dates: dict[str, dict[tuple[int, int], Period]] = {
            item.id: {
                (day.month, day.day): period
                for period in item.periods
                for day in (period.deadline.date(), period.date)
            }
            for item in self.periodic
        }

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

    def numbered(self, text: str) -> Item | None:
        """The periodic item whose numbered period a text names (第3周, 第2期)."""
        return next((i for i in self.periodic if period_named(i, text, numbered_only=True)), None)

    def explicit_period(
        self, item: Item, texts: list[tuple[str, str]]
    ) -> tuple[dt.datetime, str] | None:
        """The deadline a report names: by a period word (第N周, 8月份), a deadline's date, or
        a range ending on one."""
        for source, text in texts:
            named = period_named(item, text)
            if named:
                period, written = named
                return period.deadline, f"{source}: {period.name or written}"
            for month, day, shown in _dates_named(simplify(text)):
                hit = self.dates[item.id].get((month, day))
                if hit:
                    return hit.deadline, f"{source}: {shown}"
        return None

    def grace_period(
        self, item: Item, unit: str, received: dt.datetime, history: History
    ) -> dt.datetime:
        """The deadline a report naming no period counts against: the one just passed while its
        grace days last and nothing came for it, else the next (docs/campaign.md#items-and-periods).
        """
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

    def find_item(
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
        numbered = self.numbered(subject) or self.numbered(names)
        if numbered:
            return numbered  # only a periodic report has a 第N周, whatever else its subject says
        first = self.item_candidates(subject)
        if not any(item.never_late for _, item in first):
            activity = self.is_activity_report(subject)
            dated_report = any(
                i.periodic and self.explicit_period(i, [("subject", subject)]) for _, i in first
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

    def deadline(
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
        if item.periodic:
            texts = (
                [("主题", s) for s in subjects]
                + [("附件名", names)]
                + [("正文", b) for b in bodies]
            )
            explicit = self.explicit_period(item, texts)
            if explicit:
                return explicit
            if answered and answered.get("item") == item.id and answered.get("period"):
                deadline = item.deadline_for(answered["period"])
                if deadline:
                    return deadline, "回复所针对的通知"
            return self.grace_period(item, unit.name, received, history), None
        upcoming = [d for d in item.deadlines if d >= received]
        return (upcoming[0] if upcoming else item.deadlines[-1]), None


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


def periods_named(item: Item, text: str) -> list[Period]:
    """The periods of `item` a clerk's words name: a period's own date or its deadline's
    (2019-10-03, 10月3日: a rolled deadline keeps both), its name or number (第3期, 3, 9月份).
    More than one when the words fit several (a rolled deadline on another period's date)."""
    wanted = re.sub(r"\s+", "", simplify(text))
    named = period_named(item, wanted) if item.periods else None
    number = re.fullmatch(r"第?([0-9]{1,2})", wanted)
    found = []
    for period in item.periods:
        days = {period.date, period.deadline.date()}
        spelled = {d.isoformat() for d in days} | {f"{d.month}月{d.day}日" for d in days}
        if (
            wanted in spelled
            or (period.name and wanted == simplify(period.name))
            or (named and named[0] == period and named[1] == wanted)
            or (number and item.periodic and int(number.group(1)) == period.number)
        ):
            found.append(period)
    return found
