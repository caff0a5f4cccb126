"""China working days (工作日), for the notice period (公示) of evaluation records.

Where the State Council's holiday arrangements are known (the ``chinesecalendar`` package:
2004 to its latest year), a working day is what they say: statutory holidays are off and the
make-up weekend days (调休) are worked. Outside those years a working day is Monday to Friday:
holidays of years not yet announced are not modelled. Dates are Beijing dates.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import chinese_calendar

from ledger.credentials.types import CHINA_TZ
from ledger.errors import InvalidInput

__all__ = ["add_working_days", "beijing_date", "holidays_known", "is_working_day"]

MAX_DAYS = 60


def holidays_known(day: date) -> bool:
    """Whether the official arrangement of `day`'s year is known (else weekends only)."""
    try:
        chinese_calendar.is_workday(date(day.year, 1, 1))
    except NotImplementedError:
        return False
    return True


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The last day of a notice of `days` working days published on `start`: the notice runs
    over the `days` working days after `start` (the day of publication does not count)."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"a notice period is 1 to {MAX_DAYS} working days", code="bad_notice_days")
    day, left = start, days
    while left:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return day


def beijing_date(moment: datetime) -> date:
    return moment.astimezone(CHINA_TZ).date()
