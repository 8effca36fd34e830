"""A Date: or Received: time that cannot be a real moment is read as absent (domain.md, "Times"):
in the mail as parsed, in the order a batch is ingested, and in the receipt time recorded."""

import datetime as dt
from pathlib import Path

import pytest
from mails import TZ

from mailproc.fetch.files import header_receipt_time, in_receipt_order
from mailproc.read.mail import parse_mail_time, parse_message

UTC = dt.UTC


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("Wed, 05 Jun 2019 09:00:00 +0800", dt.datetime(2019, 6, 5, 1, tzinfo=UTC)),
        ("Wed, 5 Jun 19 09:00:00 +0800", dt.datetime(2019, 6, 5, 1, tzinfo=UTC)),  # obs-year
        ("Wed, 05 Jun 2019 09:00:00 -0000", dt.datetime(2019, 6, 5, 9, tzinfo=UTC)),
        ("Wed Jun  5 09:00:00 2019", dt.datetime(2019, 6, 5, 9, tzinfo=UTC)),  # asctime
        ("5 Jun 2019 09:00:00.25 +08:00", None),  # not an RFC 5322 time at all
        ("Fri, 31 Dec 9999 23:59:59 -1200", None),
        ("Sat, 01 Jan 0001 00:00:00 +0000", None),  # read as 2001 by the two-digit rule
        ("Mon, 1 Jan 1 10:00:00 +0800", None),
        ("Sat, 1 Jan 0 10:00:00 +0800", None),
        ("Tue, 5 Jun 119 09:00:00 +0800", None),
        ("Wed, 05 Jun 1969 09:00:00 +0800", None),
        ("Wed, 05 Jun 2101 09:00:00 +0800", None),
        ("Wed, 05 Jun 2100 09:00:00 +0800", dt.datetime(2100, 6, 5, 1, tzinfo=UTC)),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_a_time_is_read_only_when_it_can_be_a_real_moment(value, moment):
    parsed = parse_mail_time(value)
    assert parsed == moment
    if parsed is not None:
        assert parsed.astimezone(dt.timezone(dt.timedelta(hours=-12))).year == moment.year


def mail_with(date: str, received: str | None) -> bytes:
    trace = f"Received: from mx.163.com by mx-dw.163.com; {received}\r\n" if received else ""
    return (
        f"{trace}From: dongfeng_aj@163.com\r\nTo: dwajj6780436@163.com\r\n"
        f"Subject: =?utf-8?b?5Lic6aOO6ZWH56ysMeWRqOWRqOaKpQ==?=\r\nDate: {date}\r\n"
        "Message-ID: <times@test>\r\n\r\nbody\r\n"
    ).encode()


def test_an_impossible_received_time_falls_back_to_the_date_and_then_to_none():
    good = "Wed, 05 Jun 2019 09:00:00 +0800"
    mail = parse_message(mail_with(good, "Fri, 31 Dec 9999 23:59:59 -1200"))
    assert (mail.received_at, mail.date) == (None, dt.datetime(2019, 6, 5, 9, tzinfo=TZ))
    assert header_receipt_time(mail_with(good, "Sat, 01 Jan 0001 00:00:00 +0000")) == mail.date
    nothing = mail_with("Fri, 31 Dec 9999 23:59:59 -1200", "Fri, 31 Dec 9999 23:59:59 -1200")
    assert (parse_message(nothing).received_at, parse_message(nothing).date) == (None, None)
    assert header_receipt_time(nothing) is None


def test_a_batch_puts_mail_with_impossible_times_last(tmp_path: Path):
    names = {
        "a.eml": mail_with("x", "Fri, 31 Dec 9999 23:59:59 -1200"),
        "b.eml": mail_with("x", "Wed, 05 Jun 2019 09:00:00 +0800"),
        "c.eml": mail_with("x", "Sat, 01 Jan 0001 00:00:00 +0000"),
        "d.eml": mail_with("x", "Tue, 04 Jun 2019 09:00:00 +0800"),
    }
    for name, raw in names.items():
        (tmp_path / name).write_bytes(raw)
    assert [p.name for p in in_receipt_order([tmp_path])] == ["d.eml", "b.eml", "a.eml", "c.eml"]


def test_a_mail_with_only_impossible_times_is_recorded_with_the_time_it_was_handled(pipeline):
    raw = mail_with("Fri, 31 Dec 9999 23:59:59 -1200", "Fri, 31 Dec 9999 23:59:59 -1200")
    before = dt.datetime.now(TZ).replace(microsecond=0)
    outcome = pipeline.ingest(raw, source="test")
    row = pipeline.db["messages"].get(outcome.message_pk)
    assert (outcome.state, row["received_from"]) == ("new", "ingest")
    received = dt.datetime.fromisoformat(row["received_at"])
    assert before <= received <= dt.datetime.now(TZ)
