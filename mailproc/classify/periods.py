"""Items and periods: what a mail reports (its signal words, 第N周, a 附件1 alone) and for
which deadline (a named week or date, the grace day after a weekly deadline, the notice it
answers). See docs/campaign.md#items-and-periods."""

import datetime as dt
import re

from mailproc.classify.history import History
from mailproc.read.text import normalize, simplify
from mailproc.rules import Item, Rules, Unit
from mailproc.values import FileCheck

_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_WEEK_NUMBER = re.compile(r"第\s*([0-9一二三四五六七八九]{1,2})\s*周")
_DATE = re.compile(
    r"(?<![0-9])(?:(?P<m>1[0-2]|0?[1-9])\s*(?:月|[.．/\-])\s*(?P<d>3[01]|[12][0-9]|0?[1-9])\s*[日号]?"
    r"|(?:20[0-9]{2})?(?P<m4>0[1-9]|1[0-2])(?P<d4>0[1-9]|[12][0-9]|3[01]))(?![0-9])"
)
_DAY_ONLY = re.compile(r"(?<![0-9])(?P<d>3[01]|[12][0-9]|0?[1-9])\s*[日号]")
_RANGE_JOINER = re.compile(r"^\s*(?:-|－|—|–|~|～|至|到)\s*")


def week_number(text: str, weeks: int) -> int | None:
    """The week a text names as 第N周, when it is one of `weeks` weekly deadlines; else None."""
    for match in _WEEK_NUMBER.finditer(simplify(text)):
        raw = match.group(1)
        number = int(raw) if raw.isdigit() else _CN_DIGITS.get(raw, 0)
        if 1 <= number <= weeks:
            return number
    return None


class Periods:
    """The rules' items, with the weekly item and its deadlines by date, found once."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.weekly = next((i for i in rules.items if i.weekly), None)
        self.weekly_dates: dict[tuple[int, int], tuple[Item, dt.datetime]] = {
            (d.month, d.day): (item, d)
            for item in rules.items
            if item.weekly
            for d in item.deadlines
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

    def week_number(self, text: str) -> int | None:
        """The week a text names as 第N周 (1 to the number of weekly deadlines), or None."""
        return week_number(text, len(self.weekly.deadlines) if self.weekly else 0)

    def explicit_week(self, texts: list[tuple[str, str]]) -> tuple[dt.datetime, str] | None:
        """The weekly deadline a report names (第N周, a deadline's date, a range ending on one)."""
        if self.weekly is None:
            return None
        for source, text in texts:
            plain = simplify(text)
            number = self.week_number(plain)
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
        """The deadline a report naming no week counts against: the one just passed while its
        grace day lasts and nothing came for it, else the next (docs/campaign.md#items-and-periods).
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
