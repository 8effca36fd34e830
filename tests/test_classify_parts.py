"""Classification on its own: ParsedMail values and an in-memory History, no ledger, no SQLite.

The tests follow the parts of the decision (mailproc/classify.py): the gate, units, items and
periods, status and versions, problems, and the 附件1 whose figures count. The last test runs
this file again in a Python where sqlite3 and sqlite_utils cannot be imported.
"""

import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from mails import (
    DOCX,
    TZ,
    XLSX,
    docx_bytes,
    forwarded,
    make_mail,
    sheet_per_week_xlsx,
    stats_xlsx,
    table_xlsx,
)

from mailproc.classify import Classifier
from mailproc.read.mail import parse_message
from mailproc.rules import load_rules
from mailproc.values import Booking, Classification

ROOT = Path(__file__).resolve().parents[1]
CLASSIFIER = Classifier(load_rules(ROOT / "rules"))
WITHOUT_SQLITE = "MAILPROC_TEST_WITHOUT_SQLITE"  # set in the subprocess that has no SQLite

STATS = [("附件1：东风镇活动情况统计表.xlsx", stats_xlsx(), XLSX)]
UNNAMED_STATS = [("统计表.xlsx", stats_xlsx(""), XLSX)]  # names no unit
PHOTO = [("现场.jpg", b"\xff\xd8\xff\xe0" + b"0" * 64, "image/jpeg")]
NOTHING = {  # the reading of a mail that is never answered nor counted
    "disposition": None,
    "unit": None,
    "unit_source": None,
    "item": None,
    "period": None,
    "status": None,
    "version": None,
    "reply": "none",
    "problems": [],
}


class MemoryHistory:
    """What the ledger would tell the classifier, held in plain dicts a test fills in."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str, str], list[dict]] = {}
        self.extended: dict[tuple[str, str, str], dt.datetime] = {}
        # our outgoing Message-IDs → the mail (or unit/item/period) each one was about
        self.outgoing: dict[str, dict | None] = {}
        self.registered: dict[str, str] = {}  # addresses the office registered → unit

    def add_receipt(
        self, unit: str, item: str, period: str, status: str, problems: list[str] = ()
    ) -> None:
        receipt = {"status": status, "problems": json.dumps(list(problems))}
        self.groups.setdefault((unit, item, period), []).append(receipt)

    def receipts(self, unit: str, item: str, period: str) -> list[dict]:
        return self.groups.get((unit, item, period), [])

    def answered_by_us(self, message_ids) -> dict | None:
        return next((self.outgoing[m] for m in message_ids if self.outgoing.get(m)), None)

    def is_ours(self, message_ids) -> bool:
        return any(m in self.outgoing for m in message_ids)

    def deadline(self, unit: str, item: str, period: str, deadline: dt.datetime) -> dt.datetime:
        return self.extended.get((unit, item, period), deadline)

    def registered_unit(self, address: str) -> str | None:
        return self.registered.get(address)


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 6) -> dt.datetime:
    return dt.datetime(2019, month, day, hour, minute, second, tzinfo=TZ)


def classify(
    raw: bytes,
    received: dt.datetime,
    history: MemoryHistory | None = None,
    booking: Booking | None = None,
) -> Classification:
    return CLASSIFIER.classify(parse_message(raw), received, history or MemoryHistory(), booking)


def decided(result: Classification) -> dict:
    """The fields of a reading that the ledger keeps, to compare in one assertion."""
    values = {key: getattr(result, key) for key in NOTHING}
    return values | {"problems": list(result.problems)}


def weekly(**changes: object) -> dict:
    """东风镇's weekly report of 2019-06-13, on time, acknowledged; with `changes`."""
    reading = {
        "disposition": "submission",
        "unit": "东风镇",
        "unit_source": "subject",
        "item": "weekly",
        "period": "2019-06-13",
        "status": "on_time",
        "version": 1,
        "reply": "ack",
        "problems": [],
    }
    return reading | changes


# -- the gate ---------------------------------------------------------------------------------


def test_own_mail_by_its_header_is_never_read():
    raw = make_mail("【回执】东风镇 周报", headers={"X-Mailproc-Kind": "ack"}, files=STATS)
    result = classify(raw, at(13, 9))
    assert decided(result) == NOTHING | {"disposition": "own"}
    assert (result.files, result.notes) == ((), ())


def test_own_mail_by_our_message_id_even_without_the_header():
    history = MemoryHistory()
    history.outgoing["<ours-1@dwajj>"] = None
    raw = make_mail("东风镇第2周周报", message_id="<ours-1@dwajj>", files=STATS)
    assert decided(classify(raw, at(13, 9), history)) == NOTHING | {"disposition": "own"}


MULTIPART_REPORT = (
    b"From: mail@mx.163.com\r\nTo: dwajj6780436@163.com\r\nSubject: Undelivered\r\n"
    b"Message-ID: <bounce-1@mx>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--XX--\r\n"
)


@pytest.mark.parametrize(
    "raw",
    [
        make_mail("系统退信", sender="MAILER-DAEMON@163.com"),
        make_mail("东风镇第2周周报", files=STATS, headers={"Return-Path": "<>"}),
        MULTIPART_REPORT,
    ],
    ids=["mailer-daemon", "empty-return-path", "multipart-report"],
)
def test_bounces(raw):
    assert decided(classify(raw, at(13, 9))) == NOTHING | {"disposition": "bounce"}


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        ("自动回复：我正在休假", {}),
        ("东风镇第3周周报", {"Auto-Submitted": "auto-replied"}),
        ("东风镇第3周周报", {"X-Autoreply": "yes"}),
    ],
    ids=["subject", "auto-submitted", "x-autoreply"],
)
def test_auto_replies_are_logged_for_the_senders_unit_and_never_answered(subject, headers):
    result = classify(make_mail(subject, files=STATS, headers=headers), at(18, 9))
    expected = {"disposition": "auto_reply", "unit": "东风镇", "unit_source": "address"}
    assert decided(result) == NOTHING | expected
    assert result.sender_unit == "东风镇"


def test_bulk_mail_from_a_stranger_is_not_read():
    raw = make_mail(
        "东风镇第3周周报",
        sender="news@example.cn",
        files=STATS,
        headers={"List-Id": "<news.example.cn>"},
    )
    assert decided(classify(raw, at(18, 9))) == NOTHING | {"disposition": "bulk"}


def test_bulk_mail_from_a_unit_counts_but_gets_no_reply():
    raw = make_mail("东风镇第3周周报", files=STATS, headers={"Precedence": "bulk"})
    result = classify(raw, at(18, 9))
    assert decided(result) == weekly(period="2019-06-20", reply="none")
    assert list(result.notes) == ["期次：主题: 第3周", "不回复：群发邮件"]


def test_a_thank_you_to_our_acknowledgement_is_an_answer_to_us():
    raw = make_mail("Re: 【回执】东风镇 周报（第3周）已收到", body="收到，谢谢")
    expected = {"disposition": "answer_to_us", "unit": "东风镇", "unit_source": "address"}
    assert decided(classify(raw, at(18, 9))) == NOTHING | expected


def test_an_answer_to_our_message_id_without_files_is_an_answer_to_us():
    history = MemoryHistory()
    history.outgoing["<reminder-3@dwajj>"] = {"unit": "东风镇", "item": "weekly", "period": "x"}
    raw = make_mail("Re: 您的邮件", body="好的", headers={"In-Reply-To": "<reminder-3@dwajj>"})
    expected = {"disposition": "answer_to_us", "unit": "东风镇", "unit_source": "address"}
    assert decided(classify(raw, at(21, 9), history)) == NOTHING | expected


OUR_SERVER = Classifier(load_rules(ROOT / "rules"), authserv_id="mx.163.com")
FORGED = (
    "mx.163.com; spf=fail smtp.mailfrom=dongfeng_aj@163.com; dkim=none; "
    "dmarc=fail header.from=163.com"
)
SPOOFED = "发件地址验证未通过（SPF/DMARC）：dongfeng_aj@163.com（东风镇的登记地址）可能被冒用"


def authenticated(raw: bytes, *results: str) -> bytes:
    """The mail as the mailbox holds it, with Authentication-Results headers on top (the
    receiving server's first, as it adds its own above what the mail came with)."""
    return b"".join(f"Authentication-Results: {r}\r\n".encode() for r in results) + raw


def test_a_unit_address_failing_spf_and_dmarc_is_booked_flagged_and_not_answered():
    raw = authenticated(make_mail("东风镇第3周周报", files=STATS), FORGED)
    result = OUR_SERVER.classify(parse_message(raw), at(18, 9), MemoryHistory())
    assert decided(result) == weekly(period="2019-06-20", reply="none")
    assert [(f.kind, f.text) for f in result.flags] == [("spoofed", SPOOFED)]
    assert list(result.notes) == [SPOOFED, "期次：主题: 第3周", "不回复：发件地址验证未通过"]
    assert not CLASSIFIER.classify(parse_message(raw), at(18, 9), MemoryHistory()).flags


def test_a_forged_answer_to_our_notice_is_flagged_too():
    raw = authenticated(make_mail("Re: 【催报提醒】东风镇", body="我单位本周免报"), FORGED)
    result = OUR_SERVER.classify(parse_message(raw), at(18, 9), MemoryHistory())
    assert (result.disposition, [f.kind for f in result.flags]) == ("answer_to_us", ["spoofed"])


@pytest.mark.parametrize(
    ("sender", "results"),
    [
        ("dongfeng_aj@163.com", ["mx.163.com; spf=fail smtp.mailfrom=x; dmarc=pass"]),
        ("dongfeng_aj@163.com", ["mx.163.com; spf=softfail; dmarc=fail"]),
        ("dongfeng_aj@163.com", ["mx.163.com; spf=pass; dmarc=pass", FORGED]),  # ours on top
        ("dongfeng_aj@163.com", [FORGED.replace("mx.163.com", "mx.evil.example", 1)]),
        ("dongfeng_aj@163.com", []),
        ("somebody@qq.com", [FORGED]),  # a stranger's address is no unit's to forge
    ],
)
def test_no_flag_unless_our_server_found_a_unit_address_failing_both(sender, results):
    raw = authenticated(make_mail("东风镇第3周周报", sender=sender, files=STATS), *results)
    result = OUR_SERVER.classify(parse_message(raw), at(18, 9), MemoryHistory())
    assert "spoofed" not in [flag.kind for flag in result.flags]


def test_the_gate_reads_only_its_own_servers_results_through_comments():
    gate = OUR_SERVER.gate
    raw = authenticated(
        make_mail("东风镇第3周周报"),
        "MX.163.com (authenticated (sort of)); spf = fail (sender IP 1.2.3.4) "
        "smtp.mailfrom=dongfeng_aj@163.com; dmarc=fail (p=none) header.from=163.com",
        "mx.163.com; spf=pass; dmarc=pass",  # written by the sender, below ours
    )
    assert gate.authentication(parse_message(raw)) == {"spf": "fail", "dmarc": "fail"}
    assert CLASSIFIER.gate.authentication(parse_message(raw)) == {}


# -- units ------------------------------------------------------------------------------------


def test_unit_named_in_the_subject_wins_over_the_senders_and_the_office_sees_it():
    raw = make_mail("【平安镇】安全生产月周报（第3周）", sender="dwzjj_aq@163.com", files=STATS)
    result = classify(raw, at(19, 9))
    assert decided(result) == weekly(unit="平安镇", period="2019-06-20")
    assert result.sender_unit == "区住房和城乡建设局"
    assert list(result.notes) == [
        "代报：区住房和城乡建设局 的邮箱为 平安镇 报送",
        "填报单位不符：附件1：东风镇活动情况统计表.xlsx 写的是 东风镇",
        "期次：主题: 第3周",
    ]


@pytest.mark.parametrize(
    ("subject", "sender", "body", "files", "unit", "source"),
    [
        ("安全生产月周报（第2周）", "someone@qq.com", "附件请查收。",
         [("清水镇统计表.xlsx", stats_xlsx(""), XLSX)], "清水镇", "filename"),
        ("安全生产月周报（第2周）", "someone@qq.com", "附件请查收。",
         [("统计表.xlsx", stats_xlsx("新兴镇"), XLSX)], "新兴镇", "table"),
        ("安全生产月周报（第2周）", "xinxing_aj@163.com", "附件请查收。",
         [("统计表.xlsx", stats_xlsx(""), XLSX)], "新兴镇", "address"),
        ("安全生产月周报（第2周）", "someone@qq.com", "西安镇安全办 报送",
         [("统计表.xlsx", stats_xlsx(""), XLSX)], "西安镇", "body"),
    ],
    ids=["file-name", "filled-in-by", "registered-address", "body"],
)  # fmt: skip
def test_unit_when_the_subject_names_none(subject, sender, body, files, unit, source):
    result = classify(make_mail(subject, sender=sender, body=body, files=files), at(12, 9))
    assert decided(result) == weekly(unit=unit, unit_source=source)


def test_daibao_names_the_unit_reported_for():
    raw = make_mail(
        "区住建局代报区公安分局安全生产月周报（第2周）",
        sender="dwzjj_aq@163.com",
        files=[("统计表.xlsx", stats_xlsx(""), XLSX)],
    )
    result = classify(raw, at(12, 9))
    assert decided(result) == weekly(unit="区公安分局")
    assert result.notes[0] == "代报：区住房和城乡建设局 的邮箱为 区公安分局 报送"


@pytest.mark.parametrize(
    ("written", "unit"),
    [
        ("区住房城乡建设局", "区住房和城乡建设局"),
        ("大洼区市场局", "区市场监督管理局"),
        ("区文旅广电局", "区文化旅游和广播电视局"),
        ("国网盘锦市大洼区供电公司", "国网大洼供电分公司"),
        ("東風鎮", "东风镇"),
    ],
)
def test_names_written_short_or_in_traditional_characters(written, unit):
    raw = make_mail(f"{written}安全生产月活动信息（第3周）", sender="clerk@qq.com", files=STATS)
    result = classify(raw, at(19, 9))
    assert (result.unit, result.unit_source, result.sender_unit) == (unit, "subject", None)


@pytest.mark.parametrize(
    ("subject", "body", "unit", "written"),
    [
        ("东凤镇安全生产月活动信息（第3周）", "附件请查收。", "东风镇", "东凤镇"),
        ("安全生产月活动信息（第3周）", "榆数街道 安办\n附件请查收。", "榆树街道", "榆数街道"),
        # (one missing inside a name, 区公安局, is already a name written short)
        ("界沟街道安全生产月周报（第3周）", "附件请查收。", "二界沟街道", "界沟街道"),
        ("二界勾街道第3周周报", "附件请查收。", "二界沟街道", "二界勾街道"),
    ],
    ids=["sound-alike", "in-the-body", "one-missing", "long-name"],
)
def test_a_unit_name_with_one_character_wrong_is_a_guess_to_confirm(subject, body, unit, written):
    raw = make_mail(subject, sender="clerk@qq.com", body=body, files=UNNAMED_STATS)
    result = classify(raw, at(19, 9))
    assert (result.unit, result.unit_source, result.reply) == (unit, "guess", "ack")
    (flag,) = [f for f in result.flags if f.kind == "unit_guess"]
    assert flag.text == f"单位名称疑似笔误：“{written}”按{unit}登记，请核对"


@pytest.mark.parametrize(
    "written",
    [
        "西安市",  # the last character is never the slip
        "体育局",  # 体 does not sound like 教 (区教育局)
        "平原镇",  # 原 does not sound like 安 (平安镇)
        "榆林街道",  # 林 is no slip of 树
        "新华镇",  # one character off 新开镇, 新兴镇 and 新立镇 alike
        "大街道",  # 大洼街道 less a character, but too short a rest: an ordinary word
        "东凤镇和新兴镇",  # another unit named in full: it counts, the slip does not
        "东凤镇 榆数街道",  # two guesses name two units: none
    ],
)
def test_ordinary_words_and_two_names_are_no_guess(written):
    raw = make_mail(
        f"{written}安全生产月活动信息（第3周）",
        sender="clerk@qq.com",
        body="附件请查收。",
        files=UNNAMED_STATS,
    )
    result = classify(raw, at(19, 9))
    assert result.unit_source != "guess"
    assert not [f for f in result.flags if f.kind == "unit_guess"]


def test_a_registered_address_outranks_a_guess():
    raw = make_mail(
        "东凤镇安全生产月活动信息（第3周）", sender="xinxing_aj@163.com", files=UNNAMED_STATS
    )
    result = classify(raw, at(19, 9))
    assert (result.unit, result.unit_source, result.flags) == ("新兴镇", "address", ())


def test_a_department_outside_the_campaign_is_no_unit():
    raw = make_mail(
        "区财政局安全生产月活动信息（第3周）",
        sender="clerk@qq.com",
        files=[("统计表.xlsx", stats_xlsx("区财政局"), XLSX)],
    )
    result = classify(raw, at(19, 9))
    assert decided(result) == NOTHING | {"disposition": "unrecognized", "reply": "unrecognized"}
    assert list(result.notes) == ["无法确定报送单位"]


def test_a_forwarded_report_counts_for_the_inner_unit():
    inner = make_mail(
        "安全生产月周报（第2周）",
        sender="xinxing_aj@163.com",
        received=at(12, 8),
        files=[("统计表.xlsx", stats_xlsx("新兴镇"), XLSX)],
    )
    result = classify(forwarded(inner).as_bytes(), at(14, 9))
    assert decided(result) == weekly(unit="新兴镇", unit_source="table", status="late")
    assert result.sender_unit == "新兴镇"


# -- items and periods ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "status"), [(at(13, 11, 0, 0), "on_time"), (at(13, 11, 0, 1), "late")]
)
def test_the_deadline_instant_is_on_time_the_second_after_late(received, status):
    result = classify(make_mail("东风镇第2周周报", files=STATS), received)
    assert decided(result) == weekly(status=status)
    assert (result.deadline, result.unit_deadline) == (at(13, 11), at(13, 11))
    assert list(result.notes) == ["期次：主题: 第2周"]


@pytest.mark.parametrize(
    ("subject", "filename", "received", "period", "status", "why"),
    [
        ("东风镇6.17-6.20安全生产月活动信息", "附件1.xlsx", at(15, 9),
         "2019-06-20", "on_time", "期次：主题: 6.17-6.20"),
        ("东风镇安全生产月周报", "东风镇统计表20190613.xlsx", at(17, 9),
         "2019-06-13", "late", "期次：附件名: 20190613"),
        ("东风镇安全生产月周报", "东风镇第二周统计表.xlsx", at(17, 9),
         "2019-06-13", "late", "期次：附件名: 第2周"),
    ],
    ids=["range-in-subject", "date-in-file-name", "week-in-file-name"],
)  # fmt: skip
def test_a_named_week_wins_over_the_receipt_time(subject, filename, received, period, status, why):
    result = classify(make_mail(subject, files=[(filename, stats_xlsx(), XLSX)]), received)
    assert decided(result) == weekly(period=period, status=status)
    assert list(result.notes) == [why]


def test_a_report_naming_no_week_counts_for_the_next_deadline():
    result = classify(make_mail("东风镇本周活动开展情况", files=STATS), at(12, 9))
    assert decided(result) == weekly()
    assert list(result.notes) == []


def test_the_day_after_a_deadline_counts_late_for_it_when_nothing_came():
    result = classify(make_mail("东风镇本周安全生产月活动开展情况", files=STATS), at(14, 16))
    assert decided(result) == weekly(status="late")


def test_the_day_after_a_deadline_counts_for_the_next_when_the_week_was_reported():
    history = MemoryHistory()
    history.add_receipt("东风镇", "weekly", "2019-06-13", "on_time")
    result = classify(make_mail("东风镇本周活动开展情况（补充）", files=STATS), at(14, 17), history)
    assert decided(result) == weekly(period="2019-06-20")


def test_after_the_grace_day_a_report_counts_for_the_next_week():
    result = classify(make_mail("东风镇本周活动开展情况", files=STATS), at(15, 9))
    assert decided(result) == weekly(period="2019-06-20")


def test_after_the_last_deadline_a_report_is_late_for_it():
    result = classify(make_mail("东风镇本周活动开展情况", files=STATS), at(29, 9))
    assert decided(result) == weekly(period="2019-06-27", status="late")


@pytest.mark.parametrize(
    ("subject", "period"),
    [
        ("向海街道安全生产月第三周工作总结", "2019-06-20"),
        ("向海街道活动方案落实情况（第二周）", "2019-06-13"),
    ],
)
def test_a_week_number_makes_a_weekly_report_whatever_else_the_subject_says(subject, period):
    raw = make_mail(
        subject, sender="xianghai_aq@sina.com", files=[("表.xlsx", stats_xlsx(""), XLSX)]
    )
    result = classify(raw, at(5, 9))
    assert decided(result) == weekly(unit="向海街道", period=period)


def test_a_statistics_table_without_item_words_is_the_weekly_report():
    raw = make_mail("东风镇安全生产工作动态", files=[("东风镇.xlsx", stats_xlsx(), XLSX)])
    assert decided(classify(raw, at(11, 15))) == weekly()


@pytest.mark.parametrize(
    "subject",
    [
        "【重大活动】东风镇开展危化品泄漏事故应急演练",
        "东风镇开展消防疏散演习（6.20）",
        "6月13日东风镇举办安全生产宣传咨询日活动",
    ],
)
def test_events_have_no_period_and_are_never_late(subject):
    result = classify(make_mail(subject, files=PHOTO), at(21, 15))
    assert decided(result) == weekly(item="event", period=None, status=None, version=None)
    assert (result.deadline, result.on_time) == (None, None)


def test_a_dated_activity_report_with_weekly_words_stays_weekly():
    raw = make_mail("东风镇6月13日开展应急演练活动情况", body="本周开展演练一场。")
    result = classify(raw, at(13, 9))
    assert decided(result) == weekly(reply="missing", problems=["no_stats"])
    assert list(result.notes) == ["期次：主题: 6月13日"]


def test_an_answer_to_a_reminder_counts_for_the_reminders_unit_item_and_week():
    history = MemoryHistory()
    history.outgoing["<reminder-3@dwajj>"] = {
        "unit": "东风镇",
        "item": "weekly",
        "period": "2019-06-20",
    }
    raw = make_mail(
        "Re: 您的邮件",
        sender="lina@qq.com",
        files=[("统计表.xlsx", stats_xlsx(""), XLSX)],
        headers={"In-Reply-To": "<reminder-3@dwajj>"},
    )
    result = classify(raw, at(21, 9), history)
    expected = weekly(unit_source="answered", period="2019-06-20", status="late")
    assert decided(result) == expected
    assert list(result.notes) == [
        "未登记地址：lina@qq.com 不是任何单位的登记邮箱，已记入东风镇",
        "期次：回复所针对的通知",
    ]


def test_a_report_from_an_address_the_office_registered_counts_as_the_units():
    history = MemoryHistory()
    history.registered["lina@qq.com"] = "东风镇"
    raw = make_mail("本周周报（第3周）", sender="lina@qq.com", files=STATS)
    result = classify(raw, at(19, 9), history)
    assert decided(result) == weekly(unit_source="filename", period="2019-06-20")
    assert (result.sender_unit, result.flags) == ("东风镇", ())


def test_a_reply_to_naming_a_unit_address_does_not_make_the_sender_that_unit():
    raw = make_mail(
        "本周周报（第3周）",
        sender="attacker@evil.example",
        files=STATS,
        headers={"Reply-To": "dongfeng_aj@163.com"},
    )
    result = classify(raw, at(19, 9))
    assert decided(result) == weekly(unit_source="filename", period="2019-06-20")
    assert result.sender_unit is None
    assert [flag.kind for flag in result.flags] == ["unregistered"]


def test_a_unit_without_an_item_is_unrecognized_and_keeps_its_unit():
    result = classify(make_mail("东风镇安全生产月", body="请查收"), at(18, 10))
    assert decided(result) == NOTHING | {
        "disposition": "unrecognized",
        "unit": "东风镇",
        "unit_source": "subject",
        "reply": "unrecognized",
    }
    assert list(result.notes) == ["无法确定报送内容"]


def test_a_stranger_gets_a_reply_only_when_the_mail_looks_like_a_submission():
    advert = make_mail("6月份工业品促销", sender="sales@promo.example.cn", body="全场8折")
    assert decided(classify(advert, at(18, 9))) == NOTHING | {"disposition": "unrelated"}
    table = make_mail(
        "安全生产月活动统计表",
        sender="user@qq.com",
        files=[("统计表.xlsx", stats_xlsx(""), XLSX)],
    )
    expected = {"disposition": "unrecognized", "reply": "unrecognized"}
    assert decided(classify(table, at(18, 10))) == NOTHING | expected


def test_a_supervisor_answering_an_alert_with_a_file_gets_no_reply():
    raw = make_mail(
        "回复：【逾期通报】周报（第2周，6月13日）未报 3 个、逾期 2 个单位",
        sender="duchashi@example.cn",
        files=[("督查意见.docx", docx_bytes(), DOCX)],
    )
    result = classify(raw, at(13, 15))
    assert decided(result) == NOTHING | {"disposition": "unrecognized"}
    assert list(result.notes) == [
        "无法确定报送单位",
        "不回复：回复本系统邮件，单位不明，请办公室查看",
    ]


# -- status and versions ------------------------------------------------------------------------


def test_a_second_version_keeps_the_first_versions_status():
    history = MemoryHistory()
    history.add_receipt("东风镇", "weekly", "2019-06-13", "on_time", ["no_stats"])
    result = classify(make_mail("东风镇第2周周报（更正）", files=STATS), at(13, 15), history)
    assert decided(result) == weekly(version=2)
    assert result.on_time is False  # this version itself came after the deadline


def received_before() -> MemoryHistory:
    """东风镇's week-2 report already received, complete."""
    history = MemoryHistory()
    history.add_receipt("东风镇", "weekly", "2019-06-13", "on_time")
    return history


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("东风镇第2周周报", "更正：应急演练场次应为2场，以此为准。"),
        ("东风镇第2周周报（更正）", "我镇本周宣讲活动参加人次应为500，特此说明。"),
        ("关于东风镇第2周周报数据的修正", "区安委办：\n  本周发放宣传资料一千二百份。\n特此说明。"),
        ("Re: 东风镇第2周周报", "更正：宣讲活动场次应为３场。\n\n-----原始邮件-----\n发件人：x"),
    ],
    ids=["words-in-body", "column-and-number", "chinese-number", "full-width-in-a-reply"],
)  # fmt: skip
def test_a_correction_in_words_only_asks_for_the_corrected_table(subject, body):
    result = classify(make_mail(subject, body=body), at(13, 10), received_before())
    assert decided(result) == weekly(version=2, reply="missing", problems=["no_stats"])
    (flag,) = [f for f in result.flags if f.kind == "correction"]
    assert flag.text.startswith("文字更正（未附附件1）：") and flag.text in result.notes


@pytest.mark.parametrize(
    ("subject", "body", "files", "history"),
    [
        # a first version corrects nothing, whatever it says
        ("东风镇第2周周报", "更正：应急演练场次应为2场，以此为准。", [], MemoryHistory()),
        # the corrected 附件1 came with it
        ("东风镇第2周周报（更正）", "更正：应急演练场次应为2场。", STATS, received_before()),
        # no figure: a week, a date, the report's wording
        ("东风镇第2周周报（更正）", "6月13日的周报文字有误，更正后的周报见附件。",
         [("周报.docx", docx_bytes(), DOCX)], received_before()),
        ("东风镇第2周周报", "补充现场照片，以此为准。", PHOTO, received_before()),
        # an ordinal is no figure, whatever counter follows it (第3次, 第2版)
        ("东风镇第2周周报（更正）", "第3次报送的周报第2版文字有误，更正后的周报见附件。",
         [("周报.docx", docx_bytes(), DOCX)], received_before()),
        # a quoted notice of ours (更正后请直接回复本邮件…第2版) is not the sender's word
        ("Re: 东风镇第2周周报", "补充照片\n> 更正后请直接回复本邮件，系统会登记为新的一版；第2版",
         PHOTO, received_before()),
    ],
    ids=["first-version", "with-table", "no-figure", "no-number", "ordinal", "quoted"],
)  # fmt: skip
def test_no_correction_without_a_further_version_a_figure_or_missing_table(
    subject, body, files, history
):
    result = classify(make_mail(subject, body=body, files=files), at(13, 10), history)
    assert not [f for f in result.flags if f.kind == "correction"]
    assert result.problems == (() if history.groups else ("no_stats",))


def test_a_receipt_of_another_week_is_no_earlier_version():
    history = MemoryHistory()
    history.add_receipt("东风镇", "weekly", "2019-06-06", "late")
    result = classify(make_mail("东风镇第2周周报", files=STATS), at(13, 9), history)
    assert decided(result) == weekly()


@pytest.mark.parametrize(
    ("received", "status"), [(at(14, 18, 0, 0), "on_time"), (at(14, 18, 0, 1), "late")]
)
def test_an_extended_deadline_decides_on_time(received, status):
    history = MemoryHistory()
    history.extended[("东风镇", "weekly", "2019-06-13")] = at(14, 18)
    result = classify(make_mail("东风镇第2周周报", files=STATS), received, history)
    assert decided(result) == weekly(status=status)
    assert (result.deadline, result.unit_deadline) == (at(13, 11), at(14, 18))


def test_the_offices_booking_stands_for_unit_item_and_period():
    raw = make_mail("周报", sender="lina@qq.com", files=[("统计表.xlsx", stats_xlsx(""), XLSX)])
    result = classify(raw, at(14, 9), booking=Booking("东风镇", "weekly", "2019-06-20"))
    assert decided(result) == weekly(unit_source="office", period="2019-06-20")
    assert list(result.notes) == ["期次：办公室指定"]


# -- problems ---------------------------------------------------------------------------------


def plan(files: list[tuple[str, bytes, str]] = (), body: str = "附件请查收。") -> bytes:
    return make_mail(
        "新兴镇安全生产月活动方案", sender="xinxing_aj@163.com", body=body, files=files
    )


PLAN = {
    "disposition": "submission",
    "unit": "新兴镇",
    "unit_source": "subject",
    "item": "plan",
    "period": "2019-05-31",
    "status": "on_time",
    "version": 1,
    "reply": "ack",
    "problems": [],
}


def test_a_plan_with_its_document_is_acknowledged():
    result = classify(plan([("方案.docx", docx_bytes(), DOCX)]), at(25, 9, month=5))
    assert decided(result) == PLAN
    assert [(c.attachment.filename, c.role, c.error) for c in result.files] == [
        ("方案.docx", "document", None)
    ]


def test_a_plan_without_a_document_lacks_its_attachment():
    result = classify(plan(), at(25, 9, month=5))
    assert decided(result) == PLAN | {"reply": "missing", "problems": ["no_attachment"]}


def test_a_weekly_report_without_a_file_lacks_its_table():
    result = classify(make_mail("东风镇第2周周报"), at(12, 9))
    assert decided(result) == weekly(reply="missing", problems=["no_stats"])


@pytest.mark.parametrize(
    ("raw", "received", "expected"),
    [
        (
            make_mail(
                "唐家镇大洼行活动工作总结",
                sender="tangjia_aj@163.com",
                body="超大附件：总结.docx 下载地址 https://mail.163.com/large-attachment-download/x",
            ),
            at(20, 9, month=12),
            PLAN | {"unit": "唐家镇", "item": "tour_summary", "period": "2019-12-25",
                    "reply": "missing", "problems": ["cloud_link", "no_attachment"]},
        ),
        (
            make_mail(
                "东风镇安全生产月活动信息（第四周）",
                body="文件较大，已通过天翼云盘分享：https://cloud.189.cn/t/abc123",
            ),
            at(26, 9),
            weekly(period="2019-06-27", reply="missing", problems=["cloud_link", "no_stats"]),
        ),
    ],
    ids=["163-large-attachment", "cloud-drive-share"],
)  # fmt: skip
def test_a_cloud_link_comes_first_of_the_problems(raw, received, expected):
    result = classify(raw, received)
    assert decided(result) == expected
    assert result.problem == "cloud_link"


def test_a_truncated_spreadsheet_is_a_broken_table_not_a_missing_one():
    data = stats_xlsx()
    result = classify(
        make_mail("东风镇第2周周报", files=[("附件1.xlsx", data[:800], XLSX)]), at(12, 9)
    )
    assert decided(result) == weekly(reply="missing", problems=["unreadable_file"])
    [check] = result.files
    assert (check.role, check.table, check.error) == (
        "stats_candidate",
        None,
        "文件已损坏或不完整，无法打开",
    )


@pytest.mark.parametrize(
    ("name", "data", "mime", "error"),
    [
        ("方案.docx", docx_bytes()[:500], DOCX,
         "文件已损坏或不完整，无法打开"),
        ("方案.pdf", b"%PDF-1.4 cut here", "application/pdf",
         "PDF 文件不完整（可能在传输中被截断）"),
    ],
    ids=["docx", "pdf"],
)  # fmt: skip
def test_a_document_that_cannot_be_opened_is_unreadable(name, data, mime, error):
    result = classify(plan([(name, data, mime)]), at(25, 9, month=5))
    assert decided(result) == PLAN | {"reply": "missing", "problems": ["unreadable_file"]}
    assert [(c.role, c.error) for c in result.files] == [("document", error)]


def test_bad_cells_in_the_only_table():
    raw = make_mail("东风镇第2周周报", files=[("附件1.xlsx", stats_xlsx(lectures="若干"), XLSX)])
    result = classify(raw, at(12, 9))
    assert decided(result) == weekly(reply="missing", problems=["bad_cells"])
    assert [(c.cell, c.column, c.text) for c in result.table.bad_cells] == [
        ("B5", "lectures", "若干")
    ]


def test_a_spreadsheet_that_is_not_the_table_matters_only_while_the_table_is_owed():
    roster = openpyxl.Workbook()
    roster.active.append(["人员名单"])
    roster.active.append(["张三"])
    data = io.BytesIO()
    roster.save(data)
    names = ("名单.xlsx", data.getvalue(), XLSX)
    alone = classify(make_mail("东风镇第2周周报", files=[names]), at(12, 9))
    assert decided(alone) == weekly(reply="missing", problems=["unreadable_file"])
    assert alone.files[0].error == "打开后未找到附件1《活动情况统计表》的表头"
    beside = classify(make_mail("东风镇第2周周报", files=[names, *STATS]), at(12, 9))
    assert decided(beside) == weekly()
    assert (beside.files[0].error, beside.files[0].note) == (
        None,
        "打开后未找到附件1《活动情况统计表》的表头",
    )


def summary(files: list[tuple[str, bytes, str]]) -> bytes:
    return make_mail("新立镇安全生产月活动总结", sender="xinli_aj@126.com", files=files)


def test_a_part_an_earlier_version_brought_is_not_asked_for_again():
    table = [("附件1.xlsx", stats_xlsx("新立镇"), XLSX)]
    expected = PLAN | {"unit": "新立镇", "item": "month_summary", "period": "2019-07-03"}
    first = classify(summary(table), at(2, 9, month=7))
    assert decided(first) == expected | {"reply": "missing", "problems": ["no_attachment"]}
    history = MemoryHistory()
    history.add_receipt("新立镇", "month_summary", "2019-07-03", "on_time", ["no_stats"])
    second = classify(summary(table), at(2, 9, month=7), history)
    assert decided(second) == expected | {"version": 2}


# -- the 附件1 whose figures count ------------------------------------------------------------


def test_the_units_own_row_counts_not_its_villages():
    rows = [["红旗村", 1, 1, 1], ["东风村", 2, 2, 2], ["东风镇", 5, 3, 4]]
    raw = make_mail(
        "东风镇第3周活动信息", files=[("统计表.xlsx", table_xlsx(rows, "东风镇"), XLSX)]
    )
    result = classify(raw, at(19, 9))
    assert (result.table.row_label, result.table.values) == (
        "东风镇",
        {"lectures": 5, "drills": 3, "media_reports": 4},
    )
    assert list(result.notes) == ["期次：主题: 第3周"]


def test_a_table_without_the_units_row_is_read_from_its_first_row_and_flagged():
    rows = [["红旗村", 1, 1, 1], ["东风村", 2, 2, 2]]
    raw = make_mail(
        "东风镇第3周活动信息", files=[("统计表.xlsx", table_xlsx(rows, "东风镇"), XLSX)]
    )
    result = classify(raw, at(19, 9))
    assert (result.table.row_label, result.table.values["lectures"]) == ("红旗村", 1)
    assert list(result.notes) == [
        "附件1 有 2 行数据，没有写明东风镇的一行：统计表.xlsx 取第一行（红旗村）",
        "期次：主题: 第3周",
    ]


def test_a_workbook_with_a_sheet_per_week_is_read_at_the_reports_week():
    data = sheet_per_week_xlsx()
    raw = make_mail("东风镇第三周活动信息", files=[("统计表.xlsx", data, XLSX)])
    result = classify(raw, at(19, 9))
    assert (result.table.sheet, result.table.values["lectures"]) == ("第三周", 3)


def test_the_units_own_table_counts_before_another_units():
    files = [
        ("交通局统计表.xlsx", table_xlsx([["区交通局", 9, 9, 9]], "区交通运输局"), XLSX),
        ("住建局统计表.xlsx", table_xlsx([["区住建局", 1, 2, 3]], "区住房和城乡建设局"), XLSX),
    ]
    raw = make_mail("区住建局第3周活动信息", sender="dwzjj_aq@163.com", files=files)
    result = classify(raw, at(19, 9))
    assert (result.unit, result.table.filename, result.table.values["lectures"]) == (
        "区住房和城乡建设局",
        "住建局统计表.xlsx",
        1,
    )
    assert result.notes[0] == "填报单位不符：交通局统计表.xlsx 写的是 区交通运输局"


# -- each part on its own ---------------------------------------------------------------------


def test_the_gate_part_names_its_reason():
    gate = CLASSIFIER.gate
    bounce = parse_message(make_mail("退信", sender="MAILER-DAEMON@163.com"))
    bulk = parse_message(make_mail("通知", headers={"Precedence": "bulk"}))
    plain = parse_message(make_mail("东风镇第2周周报"))
    reasons = [gate.reason(mail, MemoryHistory()) for mail in (bounce, bulk, plain)]
    assert reasons == ["bounce", "bulk", None]
    assert gate.strip_tags("回复：【回执】东风镇 周报") == " 东风镇 周报"


def test_the_units_part_finds_the_unit_and_where_it_was_named():
    units = CLASSIFIER.units
    sender = units.rules.unit("东风镇")
    assert units.unit_named("区市场局关于安全生产月的报告").name == "区市场监督管理局"
    assert units.find(["本周活动情况"], [], [], sender, ["新兴镇报送"]) == (sender, "address")
    found, source = units.find(["本周活动情况"], [], [], None, ["新兴镇报送"])
    assert (found.name, source) == ("新兴镇", "body")
    assert units.names_unit("本单位", sender) and not units.names_unit("新兴镇", sender)


def test_the_periods_part_reads_items_and_weeks():
    periods = CLASSIFIER.periods
    weekly = periods.rules.item("weekly")
    assert periods.find_item(["东风镇第二周活动总结"], "", [], [], at(12, 9)) is weekly
    assert periods.explicit_period(weekly, [("主题", "6.17-6.20活动信息")]) == (
        weekly.deadlines[2],
        "主题: 6.17-6.20",
    )
    assert periods.explicit_period(weekly, [("主题", "第 三 周")]) == (
        weekly.deadlines[2],
        "主题: 第3周",
    )
    assert periods.numbered("第五周") is None  # four weekly deadlines
    assert periods.numbered("第十周") is None
    assert periods.numbered("第四周") is weekly


def test_the_files_part_sorts_each_attachment():
    mail = parse_message(
        make_mail("东风镇第2周周报", files=[*STATS, *PHOTO, ("方案.docx", docx_bytes(), DOCX)])
    )
    checks = CLASSIFIER.files.check_files(mail.attachments)
    assert [(c.role, c.error) for c in checks] == [
        ("stats", None),
        ("image", None),
        ("document", None),
    ]
    assert checks[0].table.values["lectures"] == 3


def test_the_problems_part_lists_what_is_lacking_in_order():
    problems = CLASSIFIER.problems
    weekly = CLASSIFIER.rules.item("weekly")
    mail = parse_message(make_mail("东风镇第2周周报", body="见网盘 https://pan.baidu.com/s/1x"))
    assert problems.lacking(weekly, mail, [], [mail.body_text], []) == ["cloud_link", "no_stats"]
    assert problems.looks_like_submission(["第2周周报"], "", [""], []) is True


# -- no database ------------------------------------------------------------------------------


@pytest.mark.skipif(bool(os.environ.get(WITHOUT_SQLITE)), reason="already without SQLite")
def test_classification_runs_without_sqlite():
    """This file again, in a Python where importing sqlite3 or sqlite_utils fails. The tests'
    conftest.py (fixtures for the pipeline) needs SQLite, so it is left out."""
    prelude = (
        "import sys; sys.modules['sqlite3'] = sys.modules['_sqlite3'] = None; "
        "sys.modules['sqlite_utils'] = None; import pytest; "
        f"sys.exit(pytest.main([{__file__!r}, '-q', '--noconftest', '-p', 'no:cacheprovider']))"
    )
    env = os.environ | {WITHOUT_SQLITE: "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", prelude], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"\b\d+ passed, 1 skipped\b", run.stdout), run.stdout[-500:]


def test_sqlite_is_really_absent_in_the_subprocess():
    if not os.environ.get(WITHOUT_SQLITE):
        pytest.skip("only meaningful inside the subprocess without SQLite")
    with pytest.raises(ImportError):
        import sqlite_utils  # noqa: F401
