"""Jobs: reminders, overdue notices, alerts, digests and the assessment, read as of a moment."""

import datetime as dt
import email
import io
import json
import shutil
from email import policy

from click.testing import CliRunner
from conftest import ROOT, SUPERVISORS
from corpus_check import expected_entries
from python_calamine import CalamineWorkbook

from mailproc.cli import cli
from mailproc.jobs import planned_jobs
from mailproc.ledger import open_ledger
from mailproc.reports.status import status_matrix
from mailproc.rules import load_rules
from mailproc.workdays import WorkCalendar


def tick(config, now: str):
    return run(config, "tick", "--now", now)


def run(config, *args: str):
    result = CliRunner().invoke(cli, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result


def outbox(config, kind: str, since_id: int = 0) -> list[dict]:
    db = open_ledger(config.parent / "mailproc.db")
    return list(db["outbox"].rows_where("kind = ? and id > ?", [kind, since_id], order_by="id"))


def last_id(config) -> int:
    db = open_ledger(config.parent / "mailproc.db")
    return max((r["id"] for r in db["outbox"].rows), default=0)


def units_with_receipt(item: str, period: str, by: str) -> set[str]:
    moment = dt.datetime.fromisoformat(by)
    return {
        e["unit"]
        for e in expected_entries()
        if e["item"] == item
        and e["period"] == period
        and dt.datetime.fromisoformat(e["received_at"]) <= moment
    }


ALL_UNITS = [u.name for u in load_rules("rules").units]


def test_working_days_follow_the_official_calendar():
    working_days_before = WorkCalendar().working_days_before
    assert working_days_before(dt.date(2019, 6, 13), 1) == dt.date(2019, 6, 12)
    assert working_days_before(dt.date(2019, 6, 10), 1) == dt.date(2019, 6, 6)  # 端午 7 June
    assert working_days_before(dt.date(2019, 10, 8), 1) == dt.date(2019, 9, 30)  # 国庆
    assert working_days_before(dt.date(2019, 9, 30), 1) == dt.date(2019, 9, 29)  # 调休 Sunday
    assert working_days_before(dt.date(2027, 3, 1), 1) == dt.date(2027, 2, 26)  # beyond its data


def test_planned_jobs_from_rules():
    jobs = {job.key: job for job in planned_jobs(load_rules("rules"))}
    assert jobs["reminder:weekly:2019-06-13"].due.isoformat() == "2019-06-12T09:00:00+08:00"
    assert jobs["reminder:plan:2019-05-31"].due.isoformat() == "2019-05-30T09:00:00+08:00"
    # from the first second after the deadline: at 11:00:00 a report is still on time
    assert jobs["alert:weekly:2019-06-13"].due.isoformat() == "2019-06-13T11:00:01+08:00"
    assert jobs["digest:weekly:2019-06-27"].due.isoformat() == "2019-06-27T11:00:01+08:00"
    assert "digest:plan:2019-05-31" not in jobs
    assert jobs["assessment"].due.isoformat() == "2019-12-26T00:00:00+08:00"


def test_a_tick_at_the_deadline_instant_leaves_its_notices_for_later(office):
    tick(office, "2019-06-13T11:00:00+08:00")
    db = open_ledger(office.parent / "mailproc.db")
    assert not db["jobs_run"].count_where("key like '%:weekly:2019-06-13' and kind != 'reminder'")
    tick(office, "2019-06-13T11:00:01+08:00")
    assert db["outbox"].count_where("cause like 'overdue:weekly:2019-06-13:%'") > 0


def test_the_assessment_waits_for_an_extended_deadline(office):
    run(office, "extend", "--unit", "东风镇", "--item", "tour_summary", "--period", "2019-12-25",
        "--until", "2019-12-27T17:00:00+08:00", "--yes")  # fmt: skip
    tick(office, "2019-12-26T00:00:00+08:00")
    db = open_ledger(office.parent / "mailproc.db")
    assert not db["jobs_run"].count_where("key = 'assessment'")
    meanwhile = json.loads(
        run(office, "assess", "--json", "--now", "2019-12-26T12:00:00+08:00").stdout
    )
    dongfeng = next(u for u in meanwhile["units"] if u["unit"] == "东风镇")
    assert dongfeng["record"]["tour_summary/2019-12-25"] == "not_due"
    tick(office, "2019-12-27T17:00:01+08:00")
    assert db["jobs_run"].count_where("key = 'assessment'") == 1


def test_alert_and_overdue_after_the_deadline(office):
    tick(office, "2019-06-13T10:00:00+08:00")  # everything due before, caught up
    before = last_id(office)
    tick(office, "2019-06-13T11:05:00+08:00")
    missing = [
        u for u in ALL_UNITS
        if u not in units_with_receipt("weekly", "2019-06-13", "2019-06-13T11:05:00+08:00")
    ]  # fmt: skip
    alerts = outbox(office, "alert", before)
    assert len(alerts) == 1
    alert = email.message_from_string(alerts[0]["eml"], policy=policy.default)
    assert alert["To"] == ", ".join(SUPERVISORS)
    body = alert.get_content()
    named = [u for u in ALL_UNITS if u in body.split("逾期报送")[0]]
    assert named == missing
    overdue = outbox(office, "overdue", before)
    assert sorted(r["unit"] for r in overdue) == sorted(missing)
    assert all(r["status"] == "sent" for r in overdue)
    db = open_ledger(office.parent / "mailproc.db")
    (job,) = db["jobs_run"].rows_where("key = 'alert:weekly:2019-06-13'")
    assert json.loads(job["detail"])["missing"] == missing

    again = last_id(office)
    result = tick(office, "2019-06-13T11:05:00+08:00")
    assert result.stdout.strip() == "共办理 0 项；邮件已发出 0 封，待重试 0 封，发送失败 0 封"
    assert last_id(office) == again


def test_reminders_only_to_units_without_a_receipt(office):
    tick(office, "2019-06-12T08:59:00+08:00")
    before = last_id(office)
    tick(office, "2019-06-12T09:00:00+08:00")
    reminded = sorted(r["unit"] for r in outbox(office, "reminder", before))
    have = units_with_receipt("weekly", "2019-06-13", "2019-06-12T09:00:00+08:00")
    assert reminded == sorted(u for u in ALL_UNITS if u not in have)
    message = email.message_from_string(outbox(office, "reminder", before)[0]["eml"],
                                        policy=policy.default)  # fmt: skip
    assert message["X-Mailproc-Kind"] == "reminder"
    assert "报送截止时间为 6月13日（周四）11时，" in message.get_content()  # issue 13, point 12


def test_reminder_after_its_deadline_is_dropped(office):
    result = tick(office, "2019-06-14T09:00:00+08:00")
    assert "周报 第2周（6月13日）催报提醒：未发出：提醒未及在截止时间前发出" in result.stdout
    assert outbox(office, "reminder") == []


def test_digest_with_workbook_equal_to_stats(office):
    tick(office, "2019-06-13T10:00:00+08:00")
    before = last_id(office)
    now = "2019-06-13T11:05:00+08:00"
    tick(office, now)
    (digest,) = outbox(office, "digest", before)
    message = email.message_from_string(digest["eml"], policy=policy.default)
    assert message["X-Mailproc-Kind"] == "digest"
    assert message.get_body(("html",)) is not None
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "安全生产月_周报_2019-06-13_截至0613-1105.xlsx"
    book = CalamineWorkbook.from_filelike(io.BytesIO(attachment.get_content()))
    table = book.get_sheet_by_name("本期汇总").to_python()
    totals = next(row for row in table if row[1] == "合计")[2:19]
    stats = CliRunner().invoke(
        cli, ["stats", "--period", "2019-06-13", "--as-of", now, "--json", "--config", str(office)]
    )
    expected = json.loads(stats.stdout)["totals"]
    assert [int(v) for v in totals] == list(expected.values())
    assert "因停机延迟" not in tick(office, now).stdout
    # issue 13, point 4: the counts add up to the units, agree with `status`, and the 代报
    # the dashboard lists are in the digest too
    text = message.get_body(("plain",)).get_content()
    matrix = status_matrix(
        open_ledger(office.parent / "mailproc.db"),
        load_rules(office.parent / "rules"),
        dt.datetime.fromisoformat(now),
    )
    counted = matrix.counts("weekly", "2019-06-13")
    assert sum(counted.values()) == 34
    assert (
        f"34 个单位中：按时 {counted['on_time']} 个，逾期 {counted['late']} 个，"
        f"未报 {counted['missing']} 个。"
    ) in text
    on_behalf = int(text.split("代报待确认 ")[1].split(" 封")[0])
    assert on_behalf >= 2


def test_missed_digest_goes_out_once_saying_so(office):
    result = tick(office, "2019-06-13T15:00:00+08:00")
    assert "周报 第2周（6月13日）周汇总：已发出（因停机延迟）" in result.stdout
    digests = outbox(office, "digest")
    assert [r["subject"].count("6月13日") for r in digests][-1] == 1
    latest = email.message_from_string(digests[-1]["eml"], policy=policy.default)
    assert "因系统停机延迟" in latest.get_body(("plain",)).get_content()
    tick(office, "2019-06-13T15:30:00+08:00")
    assert len(outbox(office, "digest")) == len(digests)


def hand_scores() -> dict[str, int]:
    """Points per unit from expected.json alone: first receipt's status, else missing; on time
    but never complete (every version had a problem) scores as late."""
    rules = load_rules("rules")
    points = rules.jobs.points
    first: dict[tuple, str] = {}
    complete: set[tuple] = set()
    for e in expected_entries():
        if e["item"] and e["period"] and e["unit"]:
            first.setdefault((e["unit"], e["item"], e["period"]), e["status"])
            if e["problem"] is None:
                complete.add((e["unit"], e["item"], e["period"]))
    for key, status in first.items():
        if status == "on_time" and key not in complete:
            first[key] = "late"
    return {
        unit: sum(
            points[first.get((unit, item.id, item.period_of(d)), "missing")]
            for item, d in rules.deadlines()
        )
        for unit in ALL_UNITS
    }


def test_assessment_matches_a_hand_computation(office):
    result = CliRunner().invoke(
        cli, ["assess", "--json", "--now", "2020-01-01T00:00:00+08:00", "--config", str(office)]
    )
    got = json.loads(result.stdout)
    scores = {u["unit"]: u["score"] for u in got["units"]}
    assert scores == hand_scores()
    assert [u["rank"] for u in got["units"]] == sorted(u["rank"] for u in got["units"])
    best = max(scores.values())
    assert {u["unit"] for u in got["units"] if u["rank"] == 1} == {
        u for u, s in scores.items() if s == best
    }
    assert len(list((office.parent / "reports").glob("安全生产月_考核_截至*.xlsx"))) == 1


def test_holiday_deadlines_roll_forward_when_the_rules_say_so(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    items = (rules / "items.toml").read_text(encoding="utf-8")
    (rules / "items.toml").write_text(
        items.replace('deadlines = ["2019-05-31"]', 'deadlines = ["2019-06-07"]'), encoding="utf-8"
    )
    assert load_rules(rules).item("plan").deadlines[0].isoformat() == "2019-06-07T23:59:59+08:00"
    campaign = (rules / "campaign.toml").read_text(encoding="utf-8")
    (rules / "campaign.toml").write_text(
        campaign.replace("roll_holiday_deadlines = false", "roll_holiday_deadlines = true"),
        encoding="utf-8",
    )
    rolled = load_rules(rules)
    assert rolled.item("plan").deadlines[0].isoformat() == "2019-06-10T23:59:59+08:00"  # 端午
    assert rolled.item("weekly").deadlines[0].isoformat() == "2019-06-06T11:00:00+08:00"


def test_a_rules_year_decides_its_working_days():
    calendar = WorkCalendar(
        years=frozenset({2019, 2099}),
        holidays=frozenset({dt.date(2099, 2, 16), dt.date(2098, 12, 31)}),
        workdays=frozenset({dt.date(2099, 2, 14)}),  # a Saturday worked in exchange
    )
    assert not calendar.is_working_day(dt.date(2099, 2, 16))  # a Monday off
    assert calendar.is_working_day(dt.date(2099, 2, 14))
    assert calendar.is_working_day(dt.date(2099, 2, 17)) and not calendar.is_working_day(
        dt.date(2099, 2, 15)
    )
    assert calendar.working_days_before(dt.date(2099, 2, 17), 1) == dt.date(2099, 2, 14)
    assert calendar.working_days_before(dt.date(2099, 1, 1), 1) == dt.date(2098, 12, 30)
    # a year the rules list is theirs alone: 端午 of 2019 is not in this list
    assert calendar.is_working_day(dt.date(2019, 6, 7))
    days = [dt.date(2019, 6, 7), dt.date(2098, 5, 1), dt.date(2099, 1, 1)]
    assert calendar.unknown_years(days) == [2098]
    assert calendar.unknown_years([dt.date(2099, 5, 1), dt.date(2026, 5, 1)]) == []


def test_a_campaign_year_without_a_calendar_is_told_in_the_digest_and_on_the_dashboard(office):
    items = office.parent / "rules" / "items.toml"
    items.write_text(
        items.read_text(encoding="utf-8").replace('"2019-12-25"', '"2099-12-25"'),
        encoding="utf-8",
    )
    tick(office, "2019-06-13T10:00:00+08:00")
    before = last_id(office)
    tick(office, "2019-06-13T11:05:00+08:00")
    (digest,) = outbox(office, "digest", before)
    message = email.message_from_string(digest["eml"], policy=policy.default)
    warning = "注意：2099年有截止时间或催报提醒，但该年的节假日和调休安排尚未录入"
    assert warning in message.get_body(("plain",)).get_content()
    assert warning in message.get_body(("html",)).get_content()
    run(office, "dashboard", "--now", "2019-06-13T12:00:00+08:00")
    page = (office.parent / "reports" / "index.html").read_text(encoding="utf-8")
    assert warning in page


def test_no_calendar_warning_while_every_year_is_known(office):
    run(office, "dashboard", "--now", "2019-06-13T12:00:00+08:00")
    page = (office.parent / "reports" / "index.html").read_text(encoding="utf-8")
    assert "节假日和调休安排尚未录入" not in page
