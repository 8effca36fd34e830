"""A correction in words only, through the pipeline: a further version that changes figures in
its text and brings no 附件1 is answered with thanks and a request for the corrected table, the
figures stay those of the last 附件1, and the office sees the correction."""

import datetime as dt
import email
from email import policy

from conftest import make_config
from mails import TZ, XLSX, make_mail, stats_xlsx

from mailproc.app import open_app
from mailproc.office import actions
from mailproc.pipeline import Pipeline
from mailproc.reports.stats import period_stats

CORRECTION = "更正：宣讲活动场次应为5场，以此为准。"


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2019, 6, day, hour, tzinfo=TZ)


def reply_to(app, pk: int) -> email.message.EmailMessage:
    row = next(app.db["outbox"].rows_where("message = ?", [pk]))
    return email.message_from_string(row["eml"], policy=policy.default)


def test_a_correction_in_words_asks_for_the_table_and_keeps_the_figures(tmp_path):
    report = make_mail(
        "东风镇第2周周报",
        received=at(12, 9),
        files=[("附件1.xlsx", stats_xlsx("东风镇", lectures=3), XLSX)],
    )
    correction = make_mail("东风镇第2周周报（更正）", received=at(12, 15), body=CORRECTION)
    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)
        pipeline.ingest(report, source="report")
        outcome = pipeline.ingest(correction, source="correction")
        row = app.db["messages"].get(outcome.message_pk)
        reply = reply_to(app, outcome.message_pk)
        stats = period_stats(app.db, app.rules, "2019-06-13")
        inbox = actions.inbox(app.db)
        actions.confirm(app, row["message_id"], "已电话提醒补发附件1", "王明欣")
        settled = actions.inbox(app.db)
    assert (outcome.reply, row["problems"]) == ("missing", '["no_stats"]')
    assert "请发送更正后的附件1" in reply["Subject"]
    body = reply.get_content()
    assert "感谢及时更正" in body and "请将更正后的附件1 作为附件重新发送" in body
    assert "内容不完整" not in body and "应为5场" not in body  # the unit's words are not echoed
    assert (stats.units["东风镇"]["lectures"], stats.versions["东风镇"]) == (3, 1)
    (entry,) = inbox
    assert entry["what"] == f"文字更正（未附附件1）：{CORRECTION.rstrip('。')}"
    assert settled == []


def test_a_first_report_in_words_gets_the_ordinary_request(tmp_path):
    raw = make_mail("东风镇第2周周报", received=at(12, 9), body=CORRECTION)
    with open_app(make_config(tmp_path)) as app:
        outcome = Pipeline(app).ingest(raw, source="first")
        body = reply_to(app, outcome.message_pk).get_content()
        inbox = actions.inbox(app.db)
    assert outcome.reply == "missing"
    assert "邮件中没有附件1《活动情况统计表》" in body and "感谢及时更正" not in body
    assert inbox == []
