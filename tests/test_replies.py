"""Nobody can use the office's mailbox against others: replies go to `From`, a stranger's words
are never sent back, a forged unit report is shown to the office, a machine that quotes us is
not answered, and no address gets more than three automatic replies for one day's mail."""

import datetime as dt
import email
from email import policy

from conftest import make_config
from mails import TZ, XLSX, make_mail, stats_xlsx

from mailproc.app import open_app
from mailproc.office import actions
from mailproc.pipeline import REPLIES_PER_DAY, Pipeline
from mailproc.reports.stats import period_stats

ATTACKER, VICTIM = "attacker@evil.example", "victim@other.example"


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2019, 6, day, hour, minute, tzinfo=TZ)


def sent(app) -> list[dict]:
    return list(app.db["outbox"].rows_where("message is not null", order_by="id"))


def test_twenty_forged_mails_send_nothing_to_the_reply_to(tmp_path):
    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)
        for n in range(20):
            raw = make_mail(
                f"代开发票加QQ12345 安全生产月活动统计表 {n}",
                sender=ATTACKER,
                received=at(12, 9, n),
                files=[("统计表.xlsx", stats_xlsx(""), XLSX)],
                headers={"Reply-To": VICTIM},
            )
            pipeline.ingest(raw, source=f"forged-{n}")
        replies = sent(app)
        inbox = actions.inbox(app.db)
    assert [r["to_addrs"] for r in replies] == [ATTACKER] * REPLIES_PER_DAY
    assert not any("代开发票" in r["eml"] or "QQ12345" in r["subject"] for r in replies)
    assert len([e for e in inbox if e["sender"] == ATTACKER]) == 20


def test_a_forged_unit_report_is_shown_and_its_receipt_goes_to_from(tmp_path):
    raw = make_mail(
        "唐家镇第2周周报",
        sender=ATTACKER,
        received=at(12, 9),
        files=[("附件1.xlsx", stats_xlsx("唐家镇"), XLSX)],
        headers={"Reply-To": VICTIM},
    )
    with open_app(make_config(tmp_path)) as app:
        outcome = Pipeline(app).ingest(raw, source="forged")
        row = app.db["messages"].get(outcome.message_pk)
        (reply,) = sent(app)
        before = [e["what"] for e in actions.inbox(app.db)]
        doubtful = period_stats(app.db, app.rules, "2019-06-13").unconfirmed
        actions.register(app, ATTACKER, "唐家镇", "电话核实：唐家镇安办的个人邮箱", "王明欣")
        after = [e["what"] for e in actions.inbox(app.db)]
        settled = period_stats(app.db, app.rules, "2019-06-13").unconfirmed
    assert (row["unit"], row["sender_unit"]) == ("唐家镇", None)
    assert reply["to_addrs"] == ATTACKER  # never the Reply-To a stranger named
    assert before == ["未登记地址"] and after == []
    assert (doubtful, settled) == (["唐家镇"], [])  # the figures wait for the office


def test_a_registered_clerks_mailbox_counts_as_the_units(tmp_path):
    raw = make_mail(
        "本周周报（第2周）",
        sender="lina@qq.com",
        received=at(12, 9),
        files=[("统计表.xlsx", stats_xlsx(""), XLSX)],
    )
    with open_app(make_config(tmp_path)) as app:
        actions.register(app, "Lina@QQ.com", "东风镇", None, "王明欣")
        outcome = Pipeline(app).ingest(raw, source="clerk")
        row = app.db["messages"].get(outcome.message_pk)
    assert (row["unit"], row["sender_unit"], row["flags"]) == ("东风镇", "东风镇", "[]")


def test_an_auto_responder_that_quotes_us_is_not_answered(tmp_path):
    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)
        pipeline.ingest(
            make_mail("安全生产月活动总结", sender="robot@corp.example", received=at(12, 9)),
            source="first",
        )
        (notice,) = sent(app)
        ours = email.message_from_string(notice["eml"], policy=policy.default)
        quoted = "\n".join(f"> {line}" for line in ours.get_body().get_content().splitlines())
        for n in range(2):  # the same fixed answer, twice
            answer = make_mail(
                "您好",
                sender="robot@corp.example",
                received=at(12, 10, n),
                body=f"您好，您的邮件已收到。\n> 主题：{ours['Subject']}\n{quoted}",
            )
            outcome = pipeline.ingest(answer, source=f"robot-{n}")
            assert (outcome.disposition, outcome.reply) == ("answer_to_us", "none")
        assert len(sent(app)) == 1


def test_three_replies_a_day_then_the_office_decides(tmp_path):
    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)
        outcomes = [
            pipeline.ingest(
                make_mail(
                    f"东风镇第2周周报（第{n + 1}版）",
                    received=at(12, 9, n),
                    files=[("附件1.xlsx", stats_xlsx(lectures=n), XLSX)],
                ),
                source=f"v{n}",
            )
            for n in range(5)
        ]
        held = [e for e in actions.inbox(app.db) if e["what"].startswith("回复暂缓")]
        replies_before = len(sent(app))
        actions.confirm(app, held[0]["message_id"], "确认", "王明欣")
        replies_after = len(sent(app))
        next_day = pipeline.ingest(
            make_mail(
                "东风镇第2周周报（补充）",
                received=at(13, 9),
                files=[("附件1.xlsx", stats_xlsx(), XLSX)],
            ),
            source="next day",
        )
    assert [o.reply for o in outcomes] == ["ack", "ack", "ack", "none", "none"]
    assert (len(held), replies_before, replies_after) == (2, 3, 4)
    assert next_day.reply == "ack"  # a new day, a new allowance


def test_a_message_id_that_could_break_a_command_line_is_named_by_its_number(tmp_path):
    raw = make_mail(
        "安全生产月活动统计表",
        sender=ATTACKER,
        received=at(12, 9),
        files=[("统计表.xlsx", stats_xlsx(""), XLSX)],
        message_id="<x'; rm -rf ~; echo '@evil.example>",
    )
    with open_app(make_config(tmp_path)) as app:
        outcome = Pipeline(app).ingest(raw, source="quote")
        (entry,) = actions.inbox(app.db)
    assert entry["command"].startswith(f"mailproc assign '#{outcome.message_pk}'")
    assert "rm -rf" not in entry["command"]


def test_a_further_version_says_what_decides_the_record(tmp_path):
    # issue 13, point 3: the receipt of a correction at 13:47 names the first version's time
    # and status, not "本次报送按时" against a deadline long past
    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)
        for received in (at(6, 10, 37), at(6, 13, 47)):
            raw = make_mail(
                "东风镇第1周周报",
                sender="dongfeng_aj@163.com",
                received=received,
                files=[("附件1.xlsx", stats_xlsx("东风镇"), XLSX)],
            )
            pipeline.ingest(raw, source=str(received))
        first, second = (
            email.message_from_string(row["eml"], policy=policy.default).get_content()
            for row in sent(app)
        )
    assert "本次报送按时（截止时间 6月6日（周四）11时）。" in first
    assert (
        "首次报送（6月6日10:37）按时（截止时间 6月6日（周四）11时）；本次为第2版（13:47），已更新"
        in (second)
    )
    assert "本次报送按时" not in second


def test_the_receipt_lists_every_column_of_the_table(tmp_path):
    # issue 13, point 16: all 17 columns, 0 and blank too, so the unit can check each was read
    with open_app(make_config(tmp_path)) as app:
        raw = make_mail("东风镇第2周周报", files=[("附件1.xlsx", stats_xlsx(lectures=0), XLSX)])
        Pipeline(app).ingest(raw, source="test")
        (row,) = sent(app)
        text = email.message_from_string(row["eml"], policy=policy.default).get_content()
        columns = app.rules.columns
    assert f"附件1 统计数据已读取（共 {len(columns)} 项，请核对）：" in text
    listed = [line for line in text.splitlines() if line.startswith("  · ") and "：" in line]
    assert [line.split("：")[0] for line in listed] == [
        f"  · {c.group} {c.header}" for c in columns
    ]
    assert "  · 宣讲活动 场次：0 场" in listed
    assert "  · 宣讲活动 参加人次：120 人次" in listed
    assert "  · 应急演练 场次：2 场" in listed
    assert sum("（按 0 计）" in line for line in listed) == len(columns) - 6
