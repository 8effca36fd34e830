"""Working days: holidays, and the weekends worked in exchange (调休), by the official calendar
(chinesecalendar) and, for the years its data does not reach, by `rules/calendar.toml`, which
the office fills in when the State Council publishes each year's arrangement. Where neither
knows a year, Monday–Friday, and the office is warned (`check-rules`, digest, dashboard)."""

import datetime as dt
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import chinese_calendar

log = logging.getLogger("mailproc")


@functools.cache
def _calendar_warning(year: int) -> None:
    log.warning(
        "%d 年的节假日和调休安排尚未录入（chinesecalendar 与 rules/calendar.toml 均无），工作日暂按"
        "周一至周五计算",
        year,
    )


def _package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@dataclass(frozen=True)
class WorkCalendar:
    """The package's calendar, with the rules' years on top: the days off (holidays) and the
    weekend days worked in exchange that the rules list decide those days, and a year the rules
    list is theirs alone (the office's copy of the notice is the newer word)."""

    years: frozenset[int] = frozenset()
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()

    def knows(self, year: int) -> bool:
        return year in self.years or _package_knows(year)

    def unknown_years(self, days: Iterable[dt.date]) -> list[int]:
        """The years among `days` that neither the rules nor the package know, in order."""
        return sorted({day.year for day in days if not self.knows(day.year)})

    def is_working_day(self, day: dt.date) -> bool:
        """A working day by the rules or the official calendar; Monday–Friday beyond both."""
        if day in self.workdays or day in self.holidays:
            return day in self.workdays
        if day.year in self.years:
            return day.weekday() < 5
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            _calendar_warning(day.year)
            return day.weekday() < 5

    def working_days_before(self, day: dt.date, count: int) -> dt.date:
        while count > 0:
            day -= dt.timedelta(days=1)
            count -= self.is_working_day(day)
        return day

    def next_working_day(self, day: dt.date) -> dt.date:
        """`day` itself when it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day
