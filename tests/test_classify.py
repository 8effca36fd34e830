"""Classification through the pipeline: units, items, periods, status, versions, the gate."""

import datetime as dt
import email
import json
from email import policy
from email.utils import format_datetime

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
    zip_with,
)

from mailproc.reports.mail_list import message_records


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 6) -> dt.datetime:
    return dt.datetime(2019, month, day, hour, minute, second, tzinfo=TZ)


def ingest(pipeline, raw: bytes) -> dict:
    """Ingest one mail, deliver its reply, and return its `messages --json` record."""
    outcome = pipeline.ingest(raw, source="test")
    pipeline.app.deliver()
    message_id = pipeline.db["messages"].get(outcome.message_pk)["message_id"]
    return next(r for r in message_records(pipeline.db) if r["message_id"] == message_id)


STATS = [("附件1：东风镇活动情况统计表.xlsx", stats_xlsx(), XLSX)]


def test_received_header_decides_not_date(pipeline):
    raw = make_mail(
        "东风镇第2周安全生产月活动情况", received=at(13, 11, 0, 1), date=at(13, 10, 30), files=STATS
    )
    record = ingest(pipeline, raw)
    assert record["received_at"] == "2019-06-13T11:00:01+08:00"
    assert (record["period"], record["status"], record["reply"]) == ("2019-06-13", "late", "ack")


def test_deadline_instant_is_on_time(pipeline):
    record = ingest(pipeline, make_mail("东风镇第2周周报", received=at(13, 11, 0, 0), files=STATS))
    assert (record["period"], record["status"]) == ("2019-06-13", "on_time")


def test_date_header_used_only_without_received(pipeline):
    raw = make_mail("东风镇第2周周报", received=at(12, 9), files=STATS)
    raw = raw.split(b"\r\n", 1)[1]  # drop the Received line
    record = ingest(pipeline, raw)
    assert record["received_at"] == "2019-06-12T09:00:00+08:00"
    assert any("Date" in note for note in record["notes"])


@pytest.mark.parametrize("filename", ["东风镇第二周统计表.xlsx", "东风镇统计表20190613.xlsx"])
def test_explicit_week_wins_over_timing(pipeline, filename):
    record = ingest(
        pipeline,
        make_mail(
            "东风镇安全生产月周报", received=at(17, 9), files=[(filename, stats_xlsx(), XLSX)]
        ),
    )
    assert (record["period"], record["status"]) == ("2019-06-13", "late")


def test_date_range_ending_on_a_deadline(pipeline):
    record = ingest(
        pipeline, make_mail("东风镇6.17-6.20安全生产月活动信息", received=at(15, 9), files=STATS)
    )
    assert (record["period"], record["status"]) == ("2019-06-20", "on_time")


def test_range_starting_on_a_deadline_names_no_week(pipeline):
    record = ingest(
        pipeline, make_mail("东风镇6月13日至19日活动信息", received=at(18, 9), files=STATS)
    )
    assert record["period"] == "2019-06-20"


def test_friday_rule_late_for_previous_week_then_next_week(pipeline):
    first = ingest(
        pipeline, make_mail("东风镇本周安全生产月活动开展情况", received=at(14, 16), files=STATS)
    )
    assert (first["period"], first["status"], first["version"]) == ("2019-06-13", "late", 1)
    second = ingest(
        pipeline, make_mail("东风镇本周活动开展情况（补充）", received=at(14, 17), files=STATS)
    )
    assert (second["period"], second["status"]) == ("2019-06-20", "on_time")
    saturday = ingest(
        pipeline,
        make_mail(
            "新兴镇本周活动开展情况", sender="xinxing_aj@163.com", received=at(15, 9), files=STATS
        ),
    )
    assert (saturday["period"], saturday["status"]) == ("2019-06-20", "on_time")


def test_after_last_deadline_is_late_for_it(pipeline):
    record = ingest(pipeline, make_mail("东风镇本周活动开展情况", received=at(29, 9), files=STATS))
    assert (record["period"], record["status"]) == ("2019-06-27", "late")


def test_a_week_named_only_in_the_html_part_counts(pipeline):
    """Foxmail and 163's web mail send a placeholder as the plain part: 第1周 is in the HTML."""
    raw = make_mail(
        "东风镇安全生产月活动开展情况",
        received=at(10, 9),
        body="此邮件为HTML格式，请使用支持HTML的邮件客户端查看。",
        html="<html><body><p>区安委办：</p><p>现报送我镇第1周活动开展情况，附件1见附件。</p>"
        "</body></html>",
        files=STATS,
    )
    record = ingest(pipeline, raw)
    assert (record["period"], record["status"], record["reply"]) == ("2019-06-06", "late", "ack")


def test_second_version_keeps_first_status(pipeline):
    first = ingest(pipeline, make_mail("东风镇第1周周报", received=at(6, 11, 30)))
    assert (first["status"], first["reply"], first["problems"]) == ("late", "missing", ["no_stats"])
    second = ingest(pipeline, make_mail("东风镇第1周周报（更正）", received=at(6, 15), files=STATS))
    assert (second["version"], second["status"], second["reply"]) == (2, "late", "ack")
    row = pipeline.db["receipts"].get(2)
    assert (row["on_time"], row["complete"]) == (0, 1)


def test_subject_unit_wins_over_sender_and_is_shown(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "【平安镇】安全生产月周报（第3周）",
            sender="dwzjj_aq@163.com",
            received=at(19, 9),
            files=STATS,
        ),
    )
    assert record["unit"] == "平安镇"
    assert any("代报" in note and "区住房和城乡建设局" in note for note in record["notes"])


def test_traditional_subject_and_personal_address(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "東風鎮安全生產月第三週活動開展情況",
            sender="lina70@qq.com",
            received=at(19, 9),
            files=STATS,
        ),
    )
    assert (record["unit"], record["item"], record["period"]) == ("东风镇", "weekly", "2019-06-20")


def test_unit_from_file_name_when_subject_has_none(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "安全生产月活动方案",
            sender="someone@qq.com",
            received=at(25, 9, month=5),
            files=[("清水镇活动方案.docx", docx_bytes(), DOCX)],
        ),
    )
    assert (record["unit"], record["item"], record["reply"]) == ("清水镇", "plan", "ack")


def test_plan_without_document_and_cloud_link(pipeline):
    plain = ingest(
        pipeline,
        make_mail(
            "新兴镇安全生产月活动方案", sender="xinxing_aj@163.com", received=at(25, 9, month=5)
        ),
    )
    assert (plain["reply"], plain["problems"]) == ("missing", ["no_attachment"])
    linked = ingest(
        pipeline,
        make_mail(
            "唐家镇大洼行活动工作总结",
            sender="tangjia_aj@163.com",
            received=at(20, 9, month=12),
            body="从网易邮箱发来的超大附件：总结.docx 下载地址 https://mail.163.com/large-attachment-download/x",
        ),
    )
    assert (linked["item"], linked["reply"], linked["problems"][0]) == (
        "tour_summary",
        "missing",
        "cloud_link",
    )


def test_event_report(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "【重大活动】东风镇开展危化品泄漏事故应急演练",
            received=at(18, 9),
            files=[("现场.jpg", b"\xff\xd8\xff\xe0" + b"0" * 64, "image/jpeg")],
        ),
    )
    assert (record["item"], record["period"], record["status"], record["reply"]) == (
        "event",
        None,
        None,
        "ack",
    )


def test_gate_never_answers_automatic_mail(pipeline):
    cases = {
        "auto": make_mail("自动回复：我正在休假", received=at(18, 9), body="我不在"),
        "auto_header": make_mail(
            "东风镇第3周周报",
            received=at(18, 9, 5),
            files=STATS,
            headers={"Auto-Submitted": "auto-replied"},
        ),
        "list": make_mail(
            "东风镇第3周周报",
            received=at(18, 9, 6),
            files=STATS,
            headers={"List-Id": "<news.example.cn>"},
            sender="news@example.cn",
        ),
        "bounce": make_mail("系统退信", sender="MAILER-DAEMON@163.com", received=at(18, 9, 7)),
        "own": make_mail(
            "【回执】东风镇 周报", received=at(18, 9, 8), headers={"X-Mailproc-Kind": "ack"}
        ),
        "thanks": make_mail(
            "Re: 【回执】东风镇 周报（第3周）已收到", received=at(18, 9, 9), body="收到，谢谢"
        ),
    }
    for name, raw in cases.items():
        record = ingest(pipeline, raw)
        assert record["reply"] == "none", name
    assert pipeline.db["outbox"].count == 0


def test_strangers(pipeline):
    unrelated = ingest(
        pipeline,
        make_mail(
            "6月份工业品促销", sender="sales@promo.example.cn", received=at(18, 9), body="全场8折"
        ),
    )
    assert (unrelated["unit"], unrelated["reply"]) == (None, "none")
    submission = ingest(
        pipeline,
        make_mail(
            "安全生产月活动统计表",
            sender="user@qq.com",
            received=at(18, 10),
            files=[("统计表.xlsx", stats_xlsx(unit=""), XLSX)],
        ),
    )
    assert (submission["unit"], submission["item"], submission["reply"]) == (
        None,
        None,
        "unrecognized",
    )
    row = next(pipeline.db["outbox"].rows)
    assert row["to_addrs"] == "user@qq.com" and row["cc_addrs"] == "dwajj6780436@163.com"


def test_reply_to_our_notice_counts_for_its_period(pipeline):
    first = ingest(pipeline, make_mail("东风镇第3周周报", received=at(19, 9)))
    notice = next(pipeline.db["outbox"].rows)
    correction = make_mail(
        "Re: 您的邮件",
        received=at(21, 9),
        files=STATS,
        headers={"In-Reply-To": notice["message_id"]},
    )
    record = ingest(pipeline, correction)
    assert (
        first["period"],
        record["unit"],
        record["item"],
        record["period"],
        record["version"],
    ) == ("2019-06-20", "东风镇", "weekly", "2019-06-20", 2)
    assert json.loads(pipeline.db["receipts"].get(2)["problems"]) == []


def test_forwarded_submission_counts_for_the_inner_unit(pipeline):
    inner = make_mail(
        "安全生产月周报（第2周）",
        sender="xinxing_aj@163.com",
        received=at(12, 8),
        files=[("统计表.xlsx", stats_xlsx("新兴镇"), XLSX)],
    )
    received = f"Received: from mx by mx-dw.163.com; {format_datetime(at(14, 9))}\r\n"
    record = ingest(pipeline, received.encode() + forwarded(inner).as_bytes())
    assert (record["unit"], record["item"], record["period"], record["status"]) == (
        "新兴镇",
        "weekly",
        "2019-06-13",
        "late",
    )
    assert record["received_at"] == "2019-06-14T09:00:00+08:00"


def test_zipped_files_with_gbk_names_count_as_attachments(pipeline):
    archive = zip_with([("附件1：东风镇统计表.xlsx", stats_xlsx(), False)])
    record = ingest(
        pipeline,
        make_mail(
            "东风镇第2周周报",
            received=at(12, 9),
            files=[("周报.zip", archive, "application/zip")],
        ),
    )
    assert (record["reply"], record["problems"]) == ("ack", [])
    names = [row["filename"] for row in pipeline.db["attachments"].rows]
    assert names == ["附件1：东风镇统计表.xlsx"]


PHOTO = [("现场.jpg", b"\xff\xd8\xff\xe0" + b"0" * 64, "image/jpeg")]


def test_abbreviated_unit_names(pipeline):
    """Names written short or with place names, not in rules' aliases, from a personal box."""
    for written, unit in [
        ("区住房城乡建设局", "区住房和城乡建设局"),
        ("大洼区市场局", "区市场监督管理局"),
        ("区文旅广电局", "区文化旅游和广播电视局"),
        ("国网盘锦市大洼区供电公司", "国网大洼供电分公司"),
    ]:
        record = ingest(
            pipeline,
            make_mail(
                f"{written}安全生产月活动信息（第3周）",
                sender="clerk@qq.com",
                received=at(19, 9),
                files=STATS,
            ),
        )
        assert record["unit"] == unit, written


def test_a_department_outside_the_campaign_is_no_unit(pipeline):
    """区财政局 shares the last character with many units but abbreviates none of them."""
    record = ingest(
        pipeline,
        make_mail(
            "区财政局安全生产月活动信息（第3周）",
            sender="clerk@qq.com",
            received=at(19, 9),
            files=[("统计表.xlsx", stats_xlsx(unit="区财政局"), XLSX)],
        ),
    )
    assert record["unit"] is None and record["reply"] == "unrecognized"


def test_unit_reported_for_is_the_one_after_daibao(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "区住建局代报区公安分局安全生产月周报（第2周）",
            sender="dwzjj_aq@163.com",
            received=at(12, 9),
            files=STATS,
        ),
    )
    assert record["unit"] == "区公安分局"
    assert any(note.startswith("代报：区住房和城乡建设局") for note in record["notes"])


def test_week_number_makes_a_weekly_report_whatever_else_the_subject_says(pipeline):
    for subject, week in [
        ("向海街道安全生产月第三周工作总结", "2019-06-20"),
        ("向海街道活动方案落实情况（第二周）", "2019-06-13"),
        ("向海街道安全生产月第一周工作动态", "2019-06-06"),
    ]:
        record = ingest(
            pipeline,
            make_mail(subject, sender="xianghai_aq@sina.com", received=at(5, 9), files=STATS),
        )
        assert (record["item"], record["period"]) == ("weekly", week), subject


def test_a_statistics_table_without_item_words_is_the_weekly_report(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "东风镇安全生产工作动态",
            received=at(11, 15),
            files=[("东风镇.xlsx", stats_xlsx(), XLSX)],
        ),
    )
    assert (record["item"], record["period"], record["reply"]) == ("weekly", "2019-06-13", "ack")


def test_event_with_its_date_in_the_subject(pipeline):
    for subject in ("6月13日东风镇举办安全生产宣传咨询日活动", "东风镇开展消防疏散演习（6.20）",
                    "东风镇召开安全生产月活动动员大会"):  # fmt: skip
        record = ingest(pipeline, make_mail(subject, received=at(21, 15), files=PHOTO))
        assert (record["item"], record["reply"]) == ("event", "ack"), subject


def test_dated_activity_report_with_weekly_words_stays_weekly(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "东风镇6月13日开展应急演练活动情况", received=at(13, 9), body="本周开展演练一场。"
        ),
    )
    assert (record["item"], record["period"]) == ("weekly", "2019-06-13")


def test_any_cloud_drive_share_is_a_cloud_link(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "东风镇安全生产月活动信息（第四周）",
            received=at(26, 9),
            body="文件较大，已通过天翼云盘分享：https://cloud.189.cn/t/abc123",
        ),
    )
    assert (record["reply"], record["problems"][0]) == ("missing", "cloud_link")


def town_report(pipeline, rows: list[list[object]]) -> dict:
    """东风镇's week-3 report whose 附件1 holds `rows` under the header."""
    files = [("统计表.xlsx", table_xlsx(rows, "东风镇"), XLSX)]
    return ingest(pipeline, make_mail("东风镇第3周活动信息", received=at(19, 9), files=files))


def test_a_towns_own_row_counts_not_its_villages(pipeline):
    record = town_report(pipeline, [["红旗村", 1, 1, 1], ["东风村", 2, 2, 2], ["东风镇", 5, 3, 4]])
    figures = {r["column"]: r["value"] for r in pipeline.db["figures"].rows}
    assert record["reply"] == "ack"
    assert figures == {"lectures": 5, "drills": 3, "media_reports": 4}


def test_a_table_without_the_units_row_is_read_and_flagged(pipeline):
    record = town_report(pipeline, [["红旗村", 1, 1, 1], ["东风村", 2, 2, 2]])
    assert any(n.startswith("附件1 有 2 行数据，没有写明东风镇的一行") for n in record["notes"])


def test_two_units_tables_in_one_mail_count_for_their_own_unit(pipeline):
    files = [
        ("交通局统计表.xlsx", table_xlsx([["区交通局", 9, 9, 9]], "区交通运输局"), XLSX),
        ("住建局统计表.xlsx", table_xlsx([["区住建局", 1, 2, 3]], "区住房和城乡建设局"), XLSX),
    ]
    record = ingest(
        pipeline,
        make_mail(
            "区住建局第3周活动信息", sender="dwzjj_aq@163.com", received=at(19, 9), files=files
        ),
    )
    figures = {r["column"]: r["value"] for r in pipeline.db["figures"].rows}
    assert record["unit"] == "区住房和城乡建设局"
    assert figures == {"lectures": 1, "drills": 2, "media_reports": 3}


def test_a_summary_sent_in_two_mails_is_complete_with_the_second(pipeline):
    document = [("新立镇安全生产月活动总结.docx", docx_bytes(), DOCX)]
    first = ingest(
        pipeline,
        make_mail(
            "新立镇安全生产月活动总结",
            sender="xinli_aj@126.com",
            received=at(1, 10, month=7),
            files=document,
        ),
    )
    assert (first["version"], first["reply"], first["problems"]) == (1, "missing", ["no_stats"])
    second = ingest(
        pipeline,
        make_mail(
            "新立镇安全生产月活动总结（附件1）",
            sender="xinli_aj@126.com",
            received=at(2, 9, month=7),
            files=[("附件1.xlsx", stats_xlsx("新立镇"), XLSX)],
        ),
    )
    assert (second["version"], second["reply"], second["problems"]) == (2, "ack", [])
    receipts = list(pipeline.db["receipts"].rows_where(order_by="version"))
    assert [r["complete"] for r in receipts] == [0, 1]


def test_a_workbook_with_a_sheet_per_week_is_read_at_the_reports_week(pipeline):
    data = sheet_per_week_xlsx()
    ingest(
        pipeline,
        make_mail(
            "东风镇第三周活动信息",
            received=at(19, 9),
            files=[("统计表.xlsx", data, XLSX)],
        ),
    )
    figures = {r["column"]: r["value"] for r in pipeline.db["figures"].rows}
    assert figures["lectures"] == 3


def test_a_supervisor_answering_an_alert_with_a_file_gets_no_reply(pipeline):
    record = ingest(
        pipeline,
        make_mail(
            "回复：【逾期通报】周报（第2周，6月13日）未报 3 个、逾期 2 个单位",
            sender="duchashi@example.cn",
            received=at(13, 15),
            files=[("督查意见.docx", docx_bytes(), DOCX)],
        ),
    )
    assert (record["unit"], record["reply"]) == (None, "none")
    assert pipeline.db["outbox"].count == 0


def test_a_late_second_shows_in_the_acknowledgement(pipeline):
    ingest(pipeline, make_mail("东风镇第2周周报", received=at(13, 11, 0, 1), files=STATS))
    ack = email.message_from_string(next(pipeline.db["outbox"].rows)["eml"], policy=policy.default)
    assert "于 2019年6月13日（周四）11:00:01 报送" in ack.get_body(("plain",)).get_content()
