"""The ledger package on its own: an older ledger upgraded in place, and the writes that settle
a group of receipts."""

import datetime as dt
import json
from pathlib import Path

from mailproc.ledger import flag_texts, open_ledger, write
from mailproc.rules import load_rules
from mailproc.values import Classification, Flag

ROOT = Path(__file__).resolve().parents[1]
RULES = load_rules(ROOT / "rules")
TZ = RULES.timezone


def as_before_m005(path: Path) -> None:
    """A ledger as mailproc left it before flags and notice targets had columns."""
    db = open_ledger(path)
    db["messages"].insert(
        {
            "sha256": "a" * 64,
            "received_at": "2019-06-12T09:00:00+08:00",
            "disposition": "submission",
            "reply": "ack",
            "ingested_at": "2019-06-12T09:00:01+08:00",
            "notes": json.dumps(
                ["代报：区住房和城乡建设局 的邮箱为 区公安分局 报送", "期次：主题: 第2周"],
                ensure_ascii=False,
            ),
        }
    )
    db["outbox"].insert(
        {
            "kind": "reminder",
            "cause": "reminder:weekly:2019-06-13:东风镇",
            "status": "sent",
            "created_at": "2019-06-12T09:00:00+08:00",
            "message_id": "<mailproc.1@163.com>",
        }
    )
    for column in ("flags",):
        db.execute(f"alter table messages drop column {column}")
    for column in ("item", "period"):
        db.execute(f"alter table outbox drop column {column}")
    db.execute("delete from _sqlite_migrations where name like 'm005%'")
    db.close()


def test_an_older_ledger_gets_flags_and_notice_targets(tmp_path):
    as_before_m005(tmp_path / "old.db")
    db = open_ledger(tmp_path / "old.db")
    message = db["messages"].get(1)
    assert flag_texts(message, "on_behalf") == ["代报：区住房和城乡建设局 的邮箱为 区公安分局 报送"]
    assert flag_texts(message, "reporter_mismatch") == []
    notice = db["outbox"].get(1)
    assert (notice["unit"], notice["item"], notice["period"]) == (None, "weekly", "2019-06-13")


def receipt(pk: int, day: int, hour: int) -> tuple[int, dt.datetime, Classification]:
    received = dt.datetime(2019, 6, day, hour, tzinfo=TZ)
    reading = Classification(
        disposition="submission",
        unit="东风镇",
        item="weekly",
        period="2019-06-13",
        version=pk,
        on_time=received <= dt.datetime(2019, 6, 13, 11, tzinfo=TZ),
        status="on_time",
        reply="ack",
        flags=(Flag("on_behalf", "代报：…"),),
    )
    return pk, received, reading


def test_apply_reading_settles_the_group_by_receipt_time(tmp_path):
    db = open_ledger(tmp_path / "mailproc.db")
    for pk, received, reading in (receipt(1, 13, 15), receipt(2, 12, 9)):
        db["messages"].insert(
            {
                "id": pk,
                "sha256": str(pk) * 64,
                "received_at": received.isoformat(),
                "disposition": "unrecognized",
                "reply": "none",
                "ingested_at": received.isoformat(),
            }
        )
        version, status = write.apply_reading(db, RULES, pk, received, reading)
    rows = {r["message"]: r for r in db["receipts"].rows}
    # the mail received first is version 1 and decides: on time; the later one keeps that
    assert {pk: (r["version"], r["on_time"], r["status"]) for pk, r in rows.items()} == {
        1: (2, 0, "on_time"),
        2: (1, 1, "on_time"),
    }
    assert (version, status) == (1, "on_time")
    assert flag_texts(db["messages"].get(1), "on_behalf") == ["代报：…"]


def test_settle_judges_against_an_extended_deadline(tmp_path):
    db = open_ledger(tmp_path / "mailproc.db")
    pk, received, reading = receipt(1, 13, 15)
    db["messages"].insert(
        {
            "id": pk,
            "sha256": "1" * 64,
            "received_at": received.isoformat(),
            "disposition": "submission",
            "reply": "ack",
            "ingested_at": received.isoformat(),
        }
    )
    write.apply_reading(db, RULES, pk, received, reading)
    assert db["receipts"].get(1)["status"] == "late"
    write.record_decision(
        db,
        TZ,
        "extend",
        "王明欣",
        "停电",
        unit="东风镇",
        item="weekly",
        period="2019-06-13",
        value={"deadline": "2019-06-13T18:00:00+08:00"},
    )
    write.settle(db, RULES, "东风镇", "weekly", "2019-06-13")
    assert (db["receipts"].get(1)["status"], db["messages"].get(1)["status"]) == (
        "on_time",
        "on_time",
    )
