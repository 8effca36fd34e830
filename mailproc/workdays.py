"""Working days by the official calendar (chinesecalendar): holidays, and the weekends worked
in exchange (调休)."""

import datetime as dt
import functools
import logging

import chinese_calendar

log = logging.getLogger("mailproc")


@functools.cache
def _calendar_warning(year: int) -> None:
    log.warning("chinesecalendar has no data for %d: working days taken as Monday–Friday", year)


def is_working_day(day: dt.date) -> bool:
    """A working day by the official calendar (holidays, 调休); Monday–Friday beyond its data."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        _calendar_warning(day.year)
        return day.weekday() < 5


def working_days_before(day: dt.date, count: int) -> dt.date:
    while count > 0:
        day -= dt.timedelta(days=1)
        count -= is_working_day(day)
    return day


def next_working_day(day: dt.date) -> dt.date:
    """`day` itself when it is a working day, else the first working day after it."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day
