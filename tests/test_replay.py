"""Replay (mailproc/replay.py): after a rules change, every stored mail is read again in
receipt order and the ledger is brought in line, owing only the replies new readings need."""

import datetime as dt
import hashlib
import json

import pytest
from click.testing import CliRunner
from mails import TZ, XLSX, make_mail, stats_xlsx

from mailproc.app import open_app
from mailproc.cli import cli
from mailproc.office import actions, replay
from mailproc.pipeline import Pipeline

# 东风镇 writes as 东风安办 from a personal box: no unit until rules/ learn the alias.
NICKNAME = make_mail(
    "东风安办安全生产月周报（第2周）",
    sender="clerk@qq.com",
    received=dt.datetime(2019, 6, 12, 9, 0, tzinfo=TZ),
    files=[("统计表.xlsx", stats_xlsx("", lectures=7), XLSX)],
    message_id="<nickname@qq.com>",
)
# 东风镇's own report of the same week, after the deadline: late while it is the first.
LATE = make_mail(
    "东风镇第2周周报",
    received=dt.datetime(2019, 6, 13, 11, 30, tzinfo=TZ),
    files=[("附件1：东风镇统计表.xlsx", stats_xlsx(lectures=3), XLSX)],
    message_id="<late@163.com>",
)
# A stranger's table the office booked for 新兴镇.
BOOKED = make_mail(
    "安全生产月活动统计表",
    sender="user@qq.com",
    received=dt.datetime(2019, 6, 12, 10, 0, tzinfo=TZ),
    files=[("统计表.xlsx", stats_xlsx("", lectures=5), XLSX)],
    message_id="<booked@qq.com>",
)
JUNK = b"\x00\x01binary, not a mail\xff"


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


READING = ("disposition", "unit", "unit_source", "item", "period", "status", "version", "reply")


@pytest.fixture
def ledger(pipeline: Pipeline) -> Pipeline:
    """Four mails ingested under today's rules, one of them booked by the office."""
    for raw in (NICKNAME, BOOKED, LATE, JUNK):
        pipeline.ingest(raw, source="test")
    actions.assign(
        pipeline.app, "<booked@qq.com>", "新兴镇", "weekly", "2019-06-13", "电话确认", "王明欣"
    )
    return pipeline


def teach_alias(pipeline: Pipeline) -> Pipeline:
    """rules/units.toml with 东风安办 among 东风镇's aliases, and a pipeline that reads it."""
    units = pipeline.app.config.rules / "units.toml"
    text = units.read_text(encoding="utf-8")
    old = 'aliases = ["东风镇人民政府"]'
    assert text.count(old) == 1
    units.write_text(
        text.replace(old, 'aliases = ["东风镇人民政府", "东风安办"]'), encoding="utf-8"
    )
    return Pipeline(open_app(pipeline.app.config))


def readings(pipeline: Pipeline) -> dict[str, tuple]:
    rows = pipeline.db.query("select * from messages order by id")
    return {row["message_id"] or f"#{row['id']}": tuple(row[k] for k in READING) for row in rows}


def snapshot(pipeline: Pipeline) -> dict[str, list[dict]]:
    tables = ("messages", "receipts", "figures", "outbox", "decisions")
    return {name: list(pipeline.db[name].rows) for name in tables}


def test_before_the_rules_change_the_nickname_is_unrecognized(ledger):
    assert readings(ledger) == {
        "<nickname@qq.com>": ("unrecognized", None, None, None, None, None, None, "unrecognized"),
        "<booked@qq.com>": ("submission", "新兴镇", "office", "weekly", "2019-06-13", "on_time", 1,
                            "ack"),
        "<late@163.com>": ("submission", "东风镇", "subject", "weekly", "2019-06-13", "late", 1,
                           "ack"),
        "#4": ("quarantined", None, None, None, None, None, None, "none"),
    }  # fmt: skip


def test_reread_all_reads_in_receipt_order_and_changes_lists_what_moves(ledger):
    renewed = teach_alias(ledger)
    try:
        rereads = replay.reread_all(renewed)
        changed = replay.changes(rereads)
    finally:
        renewed.app.close()
    # the unparseable mail is left out; the others in receipt order
    assert [r.row["message_id"] for r in rereads] == [
        "<nickname@qq.com>",
        "<booked@qq.com>",
        "<late@163.com>",
    ]
    assert [(r.row["message_id"], r.old, r.new) for r in changed] == [
        (
            "<nickname@qq.com>",
            (None, None, None, None),
            ("东风镇", "weekly", "2019-06-13", "on_time"),
        ),
        (  # no longer the first of its week: the nickname's on-time report decides
            "<late@163.com>",
            ("东风镇", "weekly", "2019-06-13", "late"),
            ("东风镇", "weekly", "2019-06-13", "on_time"),
        ),
    ]
    assert [r.result.version for r in rereads] == [1, 1, 2]


def test_reread_all_without_a_rules_change_changes_nothing(ledger):
    assert replay.changes(replay.reread_all(ledger)) == []


def test_dry_run_lists_the_changes_and_leaves_the_ledger_alone(ledger):
    config_file = ledger.app.config.rules.parent / "config.toml"
    config_file.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    teach_alias(ledger).app.close()
    before = snapshot(ledger)
    result = CliRunner().invoke(cli, ["replay", "--dry-run", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    numbers = {r["message_id"]: r["id"] for r in ledger.db["messages"].rows}
    assert result.output.splitlines() == [
        f"#{numbers['<nickname@qq.com>']}：未识别 → 东风镇 周报 2019-06-13 按时",
        f"#{numbers['<late@163.com>']}：东风镇 周报 2019-06-13 逾期 → 东风镇 周报 2019-06-13 按时",
        "共 3 封邮件，判读有变化的 2 封",
        "（预览，未作任何更改）",
    ]
    assert snapshot(ledger) == before


def test_apply_rewrites_readings_receipts_and_figures_and_owes_one_reply(ledger):
    outbox_before = [(r["kind"], r["cause"]) for r in ledger.db["outbox"].rows]
    renewed = teach_alias(ledger)
    try:
        queued = replay.apply(renewed, replay.reread_all(renewed))
        assert queued == 1
        assert readings(renewed) == {
            "<nickname@qq.com>": ("submission", "东风镇", "subject", "weekly", "2019-06-13",
                                  "on_time", 1, "ack"),
            "<booked@qq.com>": ("submission", "新兴镇", "office", "weekly", "2019-06-13",
                                "on_time", 1, "ack"),
            "<late@163.com>": ("submission", "东风镇", "subject", "weekly", "2019-06-13",
                               "on_time", 2, "ack"),
            "#4": ("quarantined", None, None, None, None, None, None, "none"),
        }  # fmt: skip
        receipts = renewed.db.query(
            "select message, unit, version, on_time, status, complete from receipts order by id"
        )
        assert [tuple(r.values()) for r in receipts] == [
            (1, "东风镇", 1, 1, "on_time", 1),
            (2, "新兴镇", 1, 1, "on_time", 1),
            (3, "东风镇", 2, 0, "on_time", 1),
        ]
        lectures = renewed.db.query(
            "select message, unit, version, value from figures where column = 'lectures' "
            "order by message"
        )
        assert [tuple(r.values()) for r in lectures] == [
            (1, "东风镇", 1, 7),
            (2, "新兴镇", 1, 5),
            (3, "东风镇", 2, 3),
        ]
        outbox = [(r["kind"], r["cause"], r["message"]) for r in renewed.db["outbox"].rows]
        assert [(kind, cause) for kind, cause, _ in outbox[:-1]] == outbox_before
        assert outbox[-1] == (
            "ack",
            f"reply:{sha256(NICKNAME)}:ack:东风镇:weekly:2019-06-13",
            1,
        )
        log = renewed.db.query("select detail from log where action = 'replayed'")
        assert [json.loads(r["detail"]) for r in log] == [{"mails": 3, "changed": 2, "replies": 1}]

        again = replay.reread_all(renewed)
        assert replay.changes(again) == []
        assert replay.apply(renewed, again) == 0
        assert renewed.db["outbox"].count == len(outbox_before) + 1
    finally:
        renewed.app.close()


def test_the_offices_booking_survives_a_replay(ledger):
    renewed = teach_alias(ledger)
    try:
        replay.apply(renewed, replay.reread_all(renewed))
        booked = next(renewed.db["messages"].rows_where("message_id = '<booked@qq.com>'"))
        decisions = list(renewed.db["decisions"].rows_where("kind = 'assign'"))
    finally:
        renewed.app.close()
    assert (booked["unit"], booked["unit_source"], booked["item"], booked["period"]) == (
        "新兴镇",
        "office",
        "weekly",
        "2019-06-13",
    )
    assert [(d["message"], d["unit"], d["undone_at"]) for d in decisions] == [
        (booked["id"], "新兴镇", None)
    ]


def test_a_mail_that_still_cannot_be_parsed_stays_quarantined(ledger):
    renewed = teach_alias(ledger)
    try:
        replay.apply(renewed, replay.reread_all(renewed))
        junk = renewed.db["messages"].get(4)
        kept = (junk["disposition"], junk["unit"], junk["reply"], junk["notes"])
        receipts = renewed.db["receipts"].count_where("message = 4")
    finally:
        renewed.app.close()
    assert kept[:3] == ("quarantined", None, "none")
    assert kept[3].startswith('["无法解析：')
    assert receipts == 0
