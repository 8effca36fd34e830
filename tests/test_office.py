"""The office's hands: assign, excuse, extend, paper, inbox, history, replay."""

import datetime as dt
import email
import json
import shutil
from email import policy

from click.testing import CliRunner
from conftest import CORPUS, ROOT, make_config
from corpus_check import expected_entries
from mails import TZ, XLSX, make_mail, stats_xlsx
from python_calamine import CalamineWorkbook

from mailproc.classify import Classifier
from mailproc.cli import cli
from mailproc.ledger import open_ledger
from mailproc.reports.status import paper_owed_lines
from mailproc.rules import load_rules

STRANGER = "<20190613163100.271.98bd746c@qq.com>"  # 0119.eml: no unit, got 无法识别


ACTIONS = {"assign", "unassign", "excuse", "extend", "paper", "confirm", "register", "resend"}


def run(config, *args: str):
    """One command; an office action applied without asking, as a clerk answering yes."""
    confirmed = ["--yes"] if args[0] in ACTIONS and "--dry-run" not in args else []
    result = CliRunner().invoke(cli, [*args, *confirmed, "--config", str(config)])
    assert result.exit_code in (0, 2), result.output
    return result


def ledger(config):
    return open_ledger(config.parent / "mailproc.db")


def outbox_count(config) -> int:
    return ledger(config)["outbox"].count


def test_assign_sends_one_ack_and_unassign_sends_nothing(office):
    before = outbox_count(office)
    result = run(office, "assign", STRANGER, "--unit", "东风镇", "--item", "weekly",
                 "--note", "电话确认是东风镇的统计表", "--by", "王明欣")  # fmt: skip
    assert "判读为 东风镇 周报 第3周（6月20日），按时，第1版，回执待发送" in result.stdout
    # issue 13, point 6: the booking says what it changes in the record before it is applied
    assert "  东风镇 周报 第3周（6月20日）：逾期 → 按时，共2版\n" in result.stdout
    db = ledger(office)
    row = next(db["messages"].rows_where("message_id = ?", [STRANGER]))
    assert (row["unit"], row["item"], row["period"], row["status"]) == (
        "东风镇", "weekly", "2019-06-20", "on_time")  # fmt: skip
    assert json.loads(row["machine_reading"])["disposition"] == "unrecognized"
    acks = list(db["outbox"].rows_where("id > ?", [before]))
    assert [a["kind"] for a in acks] == ["ack"] and acks[0]["status"] == "sent"
    assert db["receipts"].count_where("message = ?", [row["id"]]) == 1

    run(office, "assign", STRANGER, "--unit", "东风镇", "--item", "weekly")
    run(office, "unassign", STRANGER, "--note", "弄错了")
    assert outbox_count(office) == before + 1
    row = next(ledger(office)["messages"].rows_where("message_id = ?", [STRANGER]))
    assert (row["unit"], row["disposition"]) == (None, "unrecognized")
    assert ledger(office)["receipts"].count_where("message = ?", [row["id"]]) == 0

    story = run(office, "history", STRANGER).stdout
    expected = [
        "收到 user8302@qq.com",
        "系统判读",
        "办公室登记（王明欣）：东风镇 周报 电话确认",
        "回复回执",
        "撤销登记（office）：弄错了",
        "当前判读：无法识别 无法识别通知",
    ]
    for words in expected:
        assert words in story, words
    decisions = list(ledger(office)["decisions"].rows_where("message = ?", [row["id"]]))
    # the second, identical assign recorded nothing: one decision, undone once
    assert all(d["at"] and d["by"] for d in decisions) and len(decisions) == 1


def test_assign_into_an_existing_group_renumbers_versions(office):
    # 0077.eml: 榆树街道's 2019-06-13 weekly on 8 June (v1). Book the stranger's earlier-
    # received table to the same unit and period: it arrived later, so it becomes v2.
    run(
        office,
        "assign",
        STRANGER,
        "--unit",
        "榆树街道",
        "--item",
        "weekly",
        "--period",
        "2019-06-13",
    )
    rows = list(
        ledger(office)["receipts"].rows_where(
            "unit = '榆树街道' and item = 'weekly' and period = '2019-06-13'", order_by="version"
        )
    )
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[1]["status"] == rows[0]["status"] == "on_time"
    assert rows[1]["on_time"] == 0  # itself after the deadline


def test_bad_targets_are_one_line(office):
    # issue 13, point 11: names as a clerk types them, and a suggestion when one is wrong
    assert run(office, "assign", STRANGER, "--unit", "东峰镇", "--item", "weekly").stderr == (
        "mailproc: 没有名为“东峰镇”的单位，是否指：东风镇？\n")  # fmt: skip
    preview = run(office, "assign", STRANGER, "--unit", "东风", "--item", "周报", "--dry-run")
    assert preview.stdout.startswith("将办理：#") and "东风镇 周报 第3周" in preview.stdout
    result = run(office, "assign", STRANGER, "--unit", "东风镇", "--item", "weekly",
                 "--period", "2019-06-14")  # fmt: skip
    assert "周报没有 2019-06-14 这个截止日期" in result.stderr
    assert "台账中没有邮件 <nope>" in run(office, "assign", "nope", "--unit", "东风镇",
                                           "--item", "plan").stderr  # fmt: skip


def test_excuse_removes_the_unit_from_reminders_alerts_and_penalties(office):
    run(office, "excuse", "--unit", "唐家镇", "--item", "weekly", "--period", "2019-06-13",
        "--note", "局长批准：防汛任务")  # fmt: skip
    run(office, "tick", "--now", "2019-06-12T09:00:00+08:00")
    db = ledger(office)
    reminded = {r["unit"] for r in db["outbox"].rows_where("kind = 'reminder'")}
    assert "唐家镇" not in reminded and reminded
    run(office, "tick", "--now", "2019-06-13T11:05:00+08:00")
    alert = next(db["outbox"].rows_where("kind = 'alert' and cause = 'alert:weekly:2019-06-13'"))
    assert "唐家镇" not in alert["eml"].split("逾期报送")[0]
    assert not db["outbox"].count_where("kind = 'overdue' and unit = '唐家镇'")
    status = json.loads(run(office, "status", "--json").stdout)
    assert status["units"]["唐家镇"]["weekly/2019-06-13"]["state"] == "excused"
    shown = "唐家镇 周报（2019-06-13）免报  局长批准：防汛任务"
    digest = next(db["outbox"].rows_where("cause = 'digest:weekly:2019-06-13'"))
    assert shown in email.message_from_string(digest["eml"], policy=policy.default).get_body(
        ("plain",)).get_content()  # fmt: skip
    assert shown in run(office, "status").stdout
    run(office, "dashboard")
    assert shown in (office.parent / "reports" / "index.html").read_text(encoding="utf-8")
    scores = json.loads(run(office, "assess", "--json").stdout)
    tangjia = next(u for u in scores["units"] if u["unit"] == "唐家镇")
    assert "weekly/2019-06-13" in tangjia["record"]
    assert tangjia["possible"] == 600  # six deadlines count, the excused one does not
    run(office, "excuse", "--unit", "唐家镇", "--item", "weekly", "--period", "2019-06-13",
        "--undo", "--note", "撤销")  # fmt: skip
    status = json.loads(run(office, "status", "--json").stdout)
    assert status["units"]["唐家镇"]["weekly/2019-06-13"]["state"] == "missing"


def test_extend_judges_receipts_against_the_new_deadline(office):
    # 新兴镇's 2019-06-06 weekly came 11:45 that day: late.
    status = json.loads(run(office, "status", "--json").stdout)
    assert status["units"]["新兴镇"]["weekly/2019-06-06"]["state"] == "late"
    run(office, "extend", "--unit", "新兴镇", "--item", "weekly", "--period", "2019-06-06",
        "--until", "2019-06-06T15:00:00+08:00", "--note", "系统故障")  # fmt: skip
    status = json.loads(run(office, "status", "--json").stdout)
    assert status["units"]["新兴镇"]["weekly/2019-06-06"]["state"] == "on_time"
    assert [d["note"] for d in status["decisions"]] == ["系统故障"]
    assert (
        "新兴镇 周报（2019-06-06）延期至 2019-06-06 15:00  系统故障" in run(office, "status").stdout
    )
    run(
        office, "extend", "--unit", "新兴镇", "--item", "weekly", "--period", "2019-06-06", "--undo"
    )
    status = json.loads(run(office, "status", "--json").stdout)
    assert status["units"]["新兴镇"]["weekly/2019-06-06"]["state"] == "late"


def test_extended_unit_gets_its_overdue_notice_at_the_new_deadline(office):
    run(office, "extend", "--unit", "唐家镇", "--item", "weekly", "--period", "2019-06-13",
        "--until", "2019-06-14T17:00:00+08:00", "--note", "防汛")  # fmt: skip
    run(office, "tick", "--now", "2019-06-13T11:05:00+08:00")
    db = ledger(office)
    assert not db["outbox"].count_where("kind = 'overdue' and unit = '唐家镇'")
    alert = next(db["outbox"].rows_where("cause = 'alert:weekly:2019-06-13'"))
    assert (
        "唐家镇" not in email.message_from_string(alert["eml"], policy=policy.default).get_content()
    )
    run(office, "tick", "--now", "2019-06-14T17:01:00+08:00")
    notices = list(db["outbox"].rows_where("kind = 'overdue' and unit = '唐家镇'"))
    assert [n["cause"] for n in notices] == ["overdue:weekly:2019-06-13:唐家镇"]
    run(office, "tick", "--now", "2019-06-14T18:00:00+08:00")
    assert db["outbox"].count_where("kind = 'overdue' and unit = '唐家镇'") == 1
    notice = email.message_from_string(notices[0]["eml"], policy=policy.default).get_content()
    assert "报送截止时间 6月14日（周五）17时 已过" in notice
    alerts = list(db["outbox"].rows_where("cause = 'alert:weekly:2019-06-13:唐家镇'"))
    assert len(alerts) == 1
    message = email.message_from_string(alerts[0]["eml"], policy=policy.default)
    assert message["Subject"] == "【逾期通报】唐家镇\u3000周报（第2周，6月13日）延期后仍未报送"
    assert "唐家镇经办公室同意延期至 6月14日（周五）17时" in message.get_content()


def test_extended_unit_that_meets_its_deadline_raises_no_alert(office):
    run(office, "extend", "--unit", "新兴镇", "--item", "weekly", "--period", "2019-06-06",
        "--until", "2019-06-06T15:00:00+08:00")  # fmt: skip
    run(office, "tick", "--now", "2019-06-06T15:01:00+08:00")
    db = ledger(office)
    ran = next(db["jobs_run"].rows_where("key = 'alert:weekly:2019-06-06:新兴镇'"))
    assert ran["outcome"] == "nothing to report"
    assert not db["outbox"].count_where("cause like 'alert:weekly:2019-06-06:%'")


def test_paper_copies(office):
    owed = json.loads(run(office, "status", "--json").stdout)["paper_owed"]
    assert {"unit": "于楼街道", "item": "plan", "period": "2019-05-31"} in owed
    run(office, "paper", "--unit", "于楼街道", "--item", "plan", "--received", "2019-06-03")
    run(office, "paper", "--unit", "向海街道", "--item", "plan", "--waive", "--note", "电子签章")
    owed = json.loads(run(office, "status", "--json").stdout)["paper_owed"]
    assert {"unit": "于楼街道", "item": "plan", "period": "2019-05-31"} not in owed
    assert {"unit": "向海街道", "item": "plan", "period": "2019-05-31"} not in owed
    assert "周报不需要报送纸质文件" in run(office, "paper", "--unit", "于楼街道", "--item",
                                               "weekly", "--waive").stderr  # fmt: skip
    decisions = list(ledger(office)["decisions"].rows_where("kind = 'paper'"))
    assert [json.loads(d["value"])["state"] for d in decisions] == ["received", "waived"]
    page = office.parent / "reports" / "index.html"
    run(office, "dashboard")
    owed_list = page.read_text(encoding="utf-8").split('id="paper-owed"')[1].split("</ul>")[0]
    plans = next(line for line in owed_list.splitlines() if "方案" in line)
    assert "<li>方案（2019-05-31）：除于楼街道、向海街道外，其余 32 个单位</li>" in plans
    status = run(office, "status").stdout
    assert "  方案（2019-05-31）：除于楼街道、向海街道外，其余 32 个单位\n" in status


def test_paper_owed_lines_name_the_shorter_list():
    rules = load_rules(ROOT / "rules")
    names = [unit.name for unit in rules.units]
    owed = [(name, "plan", "2019-05-31") for name in names]
    owed += [(name, "month_summary", "2019-07-03") for name in names[1:]]
    owed += [(name, "tour_summary", "2019-12-25") for name in names[:2]]
    assert paper_owed_lines(owed, rules) == [
        ("方案（2019-05-31）", f"全部 {len(names)} 个单位"),
        ("月总结（2019-07-03）", f"除{names[0]}外，其余 {len(names) - 1} 个单位"),
        ("大洼行总结（2019-12-25）", f"{names[0]}、{names[1]}"),
    ]


def test_inbox_lists_work_with_its_command(office):
    lines = run(office, "inbox", "--json").stdout.splitlines()
    entries = [json.loads(line) for line in lines]
    stranger = next(e for e in entries if e["message_id"] == STRANGER)
    assert stranger["what"] == "无法识别" and stranger["command"].startswith("mailproc assign")
    assert any(e["what"].startswith("代报待确认（") for e in entries)
    run(office, "assign", STRANGER, "--unit", "东风镇", "--item", "weekly")
    entries = [json.loads(line) for line in run(office, "inbox", "--json").stdout.splitlines()]
    assert STRANGER not in {e["message_id"] for e in entries}


def test_replay_after_a_unit_comes_back(tmp_path):
    make_config(tmp_path)
    units = tmp_path / "rules" / "units.toml"
    full = units.read_text(encoding="utf-8")
    start = full.index('[[unit]]\nname = "东风镇"')
    units.write_text(full[:start] + full[full.index("[[unit]]", start + 5) :], encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    run(config, "ingest", str(CORPUS))
    run(config, "assign", STRANGER, "--unit", "新兴镇", "--item", "event", "--note", "确认")
    shutil.copy(tmp_path / "rules" / "units.toml", tmp_path / "without.toml")
    units.write_text(full, encoding="utf-8")
    sent_before = outbox_count(config)

    dry = run(config, "replay", "--dry-run").stdout.splitlines()
    dongfeng = [e["message_id"] for e in expected_entries() if e["unit"] == "东风镇"]
    numbers = {r["message_id"]: f"#{r['id']}" for r in ledger(config)["messages"].rows}
    assert sorted(line.split("：")[0] for line in dry[:-2]) == sorted(numbers[m] for m in dongfeng)
    assert dry[-2:] == [f"共 272 封邮件，判读有变化的 {len(dongfeng)} 封", "（预览，未作任何更改）"]
    assert outbox_count(config) == sent_before

    applied = run(config, "replay", "--yes").stdout
    assert f"（共 {len(dongfeng)} 封待发）" in applied
    new = list(ledger(config)["outbox"].rows_where("id > ?", [sent_before]))
    assert {r["unit"] for r in new} == {"东风镇"}
    by_id = {e["message_id"]: e for e in expected_entries()}
    for row in new:
        answered = ledger(config)["messages"].get(row["message"])
        assert row["kind"] == by_id[answered["message_id"]]["reply"]
    records = [json.loads(line) for line in run(config, "messages", "--json").stdout.splitlines()]
    booked = next(r for r in records if r["message_id"] == STRANGER)
    assert (booked["unit"], booked["item"]) == ("新兴镇", "event")  # the office's booking stays
    for record in records:
        if record["message_id"] == STRANGER:
            continue
        want = by_id[record["message_id"]]
        assert (record["unit"], record["item"], record["period"], record["status"]) == (
            want["unit"],
            want["item"],
            want["period"],
            want["status"],
        ), record["message_id"]
    again = run(config, "replay", "--yes").stdout
    assert again.strip() == "共 272 封邮件，判读有变化的 0 封"
    assert outbox_count(config) == sent_before + len(dongfeng)


def test_unparseable_mail_is_booked_by_its_number(tmp_path):
    make_config(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    junk = tmp_path / "junk.eml"
    junk.write_bytes(b"\x00\x01binary, not a mail\xff")
    run(config, "ingest", str(junk))
    inbox = run(config, "inbox").stdout
    assert "无法处理（无法解析：内容不是可以读取的邮件）" in inbox
    assert "（发件人不明）  （无主题）" in inbox
    assert "mailproc assign '#1' --unit 单位 --item 项目" in inbox
    done = run(config, "assign", "#1", "--unit", "东风镇", "--item", "weekly",
               "--period", "2019-06-13", "--note", "电话确认")  # fmt: skip
    assert done.stdout.startswith("将办理：#1 判读为 东风镇 周报 第2周（6月13日）")
    db = ledger(config)
    row = db["messages"].get(1)
    assert (row["unit"], row["item"], row["disposition"], row["reply"]) == (
        "东风镇", "weekly", "submission", "none")  # fmt: skip
    assert db["receipts"].count_where("message = 1") == 1
    assert db["outbox"].count == 0  # nobody to answer
    assert "系统判读：无（无法解析：内容不是可以读取的邮件）" in run(config, "history", "#1").stdout
    assert run(config, "inbox").stdout.startswith("待办 0 件")


def test_a_unit_address_that_failed_spf_and_dmarc_waits_in_the_inbox(tmp_path):
    make_config(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(
        '[paths]\nrules = "rules"\ntemplates = "templates"\n[mailbox]\nhost = "imap.163.com"\n'
        'username = "dwajj6780436@163.com"\npassword_env = "UNSET"\nauthserv_id = "mx.163.com"\n',
        encoding="utf-8",
    )
    forged = (
        b"Authentication-Results: mx.163.com; spf=fail smtp.mailfrom=dongfeng_aj@163.com;"
        b" dmarc=fail header.from=163.com\r\n"
        + make_mail(
            "东风镇第2周周报", files=[("附件1.xlsx", stats_xlsx(), XLSX)], message_id="<f@x>"
        )
    )
    (tmp_path / "forged.eml").write_bytes(forged)
    run(config, "ingest", str(tmp_path / "forged.eml"))
    text = "发件地址验证未通过（SPF/DMARC）：dongfeng_aj@163.com（东风镇的登记地址）可能被冒用"
    assert run(config, "inbox").stdout.splitlines()[:4] == [
        "编号  收到时间          单位    发件人               主题",
        "#1    2019-06-12 09:30  东风镇  dongfeng_aj@163.com  东风镇第2周周报",
        f"    {text}",
        "    → mailproc confirm '#1' --note 说明  或  mailproc assign '#1' --unit ...",
    ]
    assert ledger(config)["outbox"].count == 0  # no automatic reply to a forged address
    run(config, "dashboard", "--now", "2019-06-12T10:00:00+08:00")
    page = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    assert "发件地址验证未通过，可能被冒用，请核实（1）" in page and text in page
    run(config, "tick", "--now", "2019-06-13T11:05:00+08:00")
    (digest,) = ledger(config)["outbox"].rows_where("kind = 'digest'")
    body = email.message_from_string(digest["eml"], policy=policy.default)
    assert (
        f"  · 发件地址验证未通过、可能被冒用 1 封\n      - 2019-06-12 09:30 {text}；"
        "主题：东风镇第2周周报\n"
    ) in body.get_body(("plain",)).get_content()
    run(config, "confirm", "<f@x>", "--note", "电话核实，确为东风镇所发")
    assert run(config, "inbox").stdout.startswith("待办 0 件")
    kinds = [row["kind"] for row in ledger(config)["outbox"].rows if row["message"]]
    assert kinds == ["ack"]  # the office vouched for the sender: the 回执 goes out


def test_replay_recovers_mail_an_internal_error_quarantined(tmp_path, monkeypatch):
    make_config(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    real = Classifier.classify

    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug in this version")

    monkeypatch.setattr(Classifier, "classify", broken)
    run(config, "ingest", str(CORPUS / "0039.eml"))
    row = ledger(config)["messages"].get(1)
    assert row["disposition"] == "quarantined" and "内部错误" in row["notes"]
    assert ledger(config)["attachments"].count == 0

    monkeypatch.setattr(Classifier, "classify", real)  # the fixed version
    dry = run(config, "replay", "--dry-run").stdout.splitlines()
    assert dry == [  # issue 13, point 9: no None, no codes
        "#1：未识别 → 二界沟街道 周报 2019-06-06 按时",
        "共 1 封邮件，判读有变化的 1 封",
        "（预览，未作任何更改）",
    ]
    run(config, "replay", "--yes")
    db = ledger(config)
    row = db["messages"].get(1)
    assert (row["unit"], row["item"], row["period"], row["reply"]) == (
        "二界沟街道", "weekly", "2019-06-06", "ack")  # fmt: skip
    assert json.loads(row["machine_reading"])["unit"] == "二界沟街道"
    assert db["attachments"].count >= 1
    assert all((tmp_path / "archive" / a["archive_path"]).is_file() for a in db["attachments"].rows)
    assert [o["kind"] for o in db["outbox"].rows] == ["ack"]


def test_an_extension_to_a_day_runs_to_its_end_and_its_notice_names_it(office):
    run(office, "extend", "--unit", "唐家镇", "--item", "weekly", "--period", "2019-06-13",
        "--until", "2019-06-14")  # fmt: skip
    assert "唐家镇 周报（2019-06-13）延期至 2019-06-14 23:59" in run(office, "status").stdout
    run(office, "tick", "--now", "2019-06-15T10:00:00+08:00")  # one tick past both deadlines
    db = ledger(office)
    notices = list(db["outbox"].rows_where("kind = 'overdue' and unit = '唐家镇'"))
    assert len(notices) == 1
    text = email.message_from_string(notices[0]["eml"], policy=policy.default).get_content()
    assert "报送截止时间 6月14日24时 已过" in text
    alert = next(db["outbox"].rows_where("cause = 'alert:weekly:2019-06-13'"))
    body = email.message_from_string(alert["eml"], policy=policy.default).get_content()
    assert "唐家镇" not in body  # it has its own alert


def test_an_excused_unit_is_not_missing_from_the_figures(office):
    before = json.loads(run(office, "stats", "--period", "2019-06-13", "--json").stdout)
    assert "唐家镇" in before["missing"]
    run(office, "excuse", "--unit", "唐家镇", "--item", "weekly", "--period", "2019-06-13")
    after = json.loads(run(office, "stats", "--period", "2019-06-13", "--json").stdout)
    assert "唐家镇" not in after["missing"] and after["excused"] == ["唐家镇"]
    run(office, "report", "weekly", "--period", "2019-06-13")
    path = next((office.parent / "reports").glob("*2019-06-13*.xlsx"))
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    assert next(row for row in rows if row[1] == "唐家镇")[-3] == "免报"


def test_a_reply_to_an_overdue_notice_counts_for_its_week(office, tmp_path):
    run(office, "tick", "--now", "2019-06-13T11:05:00+08:00")
    db = ledger(office)
    notice = next(db["outbox"].rows_where("cause = 'overdue:weekly:2019-06-13:唐家镇'"))
    unit = next(u for u in load_rules(ROOT / "rules").units if u.name == "唐家镇")
    reply = make_mail(
        "补报",
        sender=unit.addresses[0],
        received=dt.datetime(2019, 6, 15, 10, tzinfo=TZ),  # Saturday: by timing, week 3
        files=[("附件1.xlsx", stats_xlsx("唐家镇"), XLSX)],
        headers={"In-Reply-To": notice["message_id"]},
    )
    (tmp_path / "reply.eml").write_bytes(reply)
    run(office, "ingest", str(tmp_path / "reply.eml"))
    row = next(ledger(office)["messages"].rows_where("subject = '补报'"))
    assert (row["unit"], row["item"], row["period"], row["status"]) == (
        "唐家镇", "weekly", "2019-06-13", "late")  # fmt: skip


def test_a_guessed_unit_waits_in_the_inbox_and_on_the_dashboard_until_confirmed(tmp_path):
    make_config(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    raw = make_mail(
        "东凤镇第2周周报",
        sender="clerk@qq.com",
        files=[("附件1.xlsx", stats_xlsx(""), XLSX)],
        message_id="<g@x>",
    )
    (tmp_path / "guess.eml").write_bytes(raw)
    run(config, "ingest", str(tmp_path / "guess.eml"))
    text = "单位名称疑似笔误：“东凤镇”按东风镇登记，请核对"
    assert run(config, "inbox").stdout.splitlines()[1:4] == [
        "#1    2019-06-12 09:30  东风镇  clerk@qq.com  东凤镇第2周周报",
        f"    {text}",
        "    → mailproc confirm '#1' --note 说明  或  mailproc assign '#1' --unit ...",
    ]
    run(config, "dashboard", "--now", "2019-06-12T10:00:00+08:00")
    assert text in (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    run(config, "confirm", "<g@x>", "--note", "电话核实，确为东风镇所发", "--yes")
    assert run(config, "inbox").stdout.startswith("待办 0 件")


def ledger_dump(config) -> list:
    db = ledger(config)
    return [list(db[table].rows) for table in ("messages", "receipts", "decisions", "outbox")]


def test_every_action_previews_exactly_what_it_then_does(office):
    """The preview contract: preview=True checks and computes, changes nothing, and lists the
    lines the applied action then reports."""
    from mailproc.app import open_app
    from mailproc.config import load_config
    from mailproc.office import actions

    calls = [
        lambda app, p: actions.assign(app, STRANGER, "东风镇", "weekly", None, "电话", "王", p),
        lambda app, p: actions.unassign(app, STRANGER, "弄错了", "王", preview=p),
        lambda app, p: actions.excuse(app, "唐家镇", "周报", "第2周", "停电", "王", preview=p),
        lambda app, p: actions.extend(
            app, "新兴镇", "weekly", "2019-06-06", dt.datetime(2019, 6, 7, 17, tzinfo=TZ),
            None, "王", preview=p,
        ),
        lambda app, p: actions.paper(
            app, "于楼街道", "方案", None, dt.date(2019, 6, 3), False, None, "王", preview=p
        ),
        lambda app, p: actions.register(app, "clerk@qq.com", "东风镇", None, "王", preview=p),
    ]  # fmt: skip
    for call in calls:
        before = ledger_dump(office)
        with open_app(load_config(office)) as app:
            previewed = call(app, True)
        assert previewed.preview and previewed.changes and previewed.queued == 0
        assert ledger_dump(office) == before, previewed.summary
        with open_app(load_config(office)) as app:
            done = call(app, False)
        assert not done.preview
        assert done.changes[: len(previewed.changes)] == previewed.changes
        assert done.summary == previewed.summary
        assert ledger_dump(office) != before
        with open_app(load_config(office)) as app:  # issue 13, point 8: a repeat changes nothing
            again = call(app, False)
        assert again.changes == [] and "无需重复办理" in again.summary


def test_an_extension_before_the_deadline_is_refused(office):
    # issue 13, point 1: 新兴镇's report of 06-12 13:38 was on time; a mistyped --until must
    # not turn it late
    result = run(office, "extend", "--unit", "新兴镇", "--item", "weekly",
                 "--period", "2019-06-13", "--until", "2019-06-10")  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        "mailproc: 新的截止时间 6月10日 23:59:59 不晚于原截止时间 6月13日 11:00，不能作为延期\n"
    )
    assert ledger(office)["decisions"].count == 0
    status = json.loads(run(office, "status", "--json").stdout)
    assert status["units"]["新兴镇"]["weekly/2019-06-13"]["state"] == "on_time"


def test_a_booking_waits_for_the_clerk(office):
    # issue 13, point 6: shown first, applied only on yes; its original leaves _quarantine
    before = ledger_dump(office)
    runner = CliRunner()
    args = ["assign", STRANGER, "--unit", "东风镇", "--item", "weekly", "--config", str(office)]
    declined = runner.invoke(cli, args, input="n\n")
    assert "东风镇 周报 第3周（6月20日）：逾期 → 按时，共2版" in declined.stdout
    assert declined.stdout.rstrip().endswith("未作任何更改")
    assert ledger_dump(office) == before
    accepted = runner.invoke(cli, args, input="y\n")
    assert "已办理。" in accepted.stdout
    row = next(ledger(office)["messages"].rows_where("message_id = ?", [STRANGER]))
    assert row["archive_path"].startswith("东风镇/weekly/2019-06-20/")
    archive = office.parent / "archive"
    assert (archive / row["archive_path"]).is_file()
    assert not list((archive / "_quarantine").glob(f"{row['archive_path'].split('/')[-1]}"))
    for attachment in ledger(office)["attachments"].rows_where("message = ?", [row["id"]]):
        assert (archive / attachment["archive_path"]).is_file()


def test_inbox_leaves_out_what_a_later_version_settled_and_names_who_sent(tmp_path):
    # issue 13, point 5: a file that could not be opened is settled by a complete later
    # version of the same unit's week; a 代报 shows the address it really came from
    make_config(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    mails = {
        "broken.eml": make_mail("东风镇第2周周报", files=[("附件1.xlsx", b"PK\x03\x04cut", XLSX)],
                                received=dt.datetime(2019, 6, 12, 9, 30, tzinfo=TZ)),
        "behalf.eml": make_mail("新兴镇第2周周报", files=[("附件1.xlsx", stats_xlsx("新兴镇"),
                                XLSX)], received=dt.datetime(2019, 6, 12, 9, 40, tzinfo=TZ)),
        "cut.eml": make_mail("清水镇第2周周报", sender="qingshui_aj@163.com",
                             files=[("附件1.xlsx", b"PK\x03\x04cut", XLSX)],
                             received=dt.datetime(2019, 6, 12, 9, 50, tzinfo=TZ)),
    }  # fmt: skip
    for name, data in mails.items():
        (tmp_path / name).write_bytes(data)
    run(config, "ingest", *(str(tmp_path / name) for name in mails))
    before = run(config, "inbox").stdout
    assert before.count("文件无法打开") == 2
    good = make_mail("东风镇第2周周报（更正）", files=[("附件1.xlsx", stats_xlsx(), XLSX)],
                     received=dt.datetime(2019, 6, 12, 10, 30, tzinfo=TZ))  # fmt: skip
    (tmp_path / "good.eml").write_bytes(good)
    run(config, "ingest", str(tmp_path / "good.eml"))
    after = run(config, "inbox").stdout
    assert after.count("文件无法打开") == 1  # 清水镇's still waits; 东风镇's is settled
    assert "qingshui_aj@163.com" in after
    behalf = next(line for line in after.splitlines() if "新兴镇第2周周报" in line)
    assert "新兴镇" in behalf and "dongfeng_aj@163.com" in behalf
    assert "代报待确认（东风镇 的邮箱为 新兴镇 报送）" in after
