"""The ledger: one SQLite file that is the single source of truth.

Every mail handled, every receipt against a deadline, every figure read from 附件1, every
outgoing message (the outbox) and every action lives here. The schema is built by
`Migrations`, so an office's existing ledger is upgraded in place; `docs/ledger.md` documents
each table for anyone opening the file with another SQLite tool.
"""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("mailproc")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db["messages"].create(
        {
            "id": int,
            "message_id": str,
            "sha256": str,
            "received_at": str,
            "received_from": str,
            "sender": str,
            "sender_name": str,
            "subject": str,
            "disposition": str,
            "unit": str,
            "unit_source": str,
            "sender_unit": str,
            "item": str,
            "period": str,
            "status": str,
            "version": int,
            "reply": str,
            "problems": str,
            "notes": str,
            "in_reply_to": str,
            "archive_path": str,
            "source": str,
            "ingested_at": str,
        },
        pk="id",
        not_null={"sha256", "received_at", "disposition", "reply", "ingested_at"},
    )
    db["messages"].create_index(["sha256"], unique=True)
    db["messages"].create_index(["message_id"])
    db["messages"].create_index(["unit", "item", "period"])

    db["attachments"].create(
        {
            "id": int,
            "message": int,
            "filename": str,
            "raw_filename": str,
            "kind": str,
            "role": str,
            "size": int,
            "sha256": str,
            "from_archive": str,
            "archive_path": str,
            "problems": str,
        },
        pk="id",
        foreign_keys=[("message", "messages", "id")],
    )
    db["attachments"].create_index(["message"])

    db["receipts"].create(
        {
            "id": int,
            "message": int,
            "unit": str,
            "item": str,
            "period": str,
            "version": int,
            "received_at": str,
            "on_time": int,
            "status": str,
            "complete": int,
            "problems": str,
        },
        pk="id",
        not_null={"message", "unit", "item", "period", "version", "received_at"},
        foreign_keys=[("message", "messages", "id")],
    )
    db["receipts"].create_index(["unit", "item", "period", "version"], unique=True)

    db["figures"].create(
        {
            "id": int,
            "message": int,
            "unit": str,
            "item": str,
            "period": str,
            "version": int,
            "column": str,
            "value": int,
            "approximate": int,
        },
        pk="id",
        foreign_keys=[("message", "messages", "id")],
    )
    db["figures"].create_index(["unit", "item", "period", "version", "column"], unique=True)

    db["outbox"].create(
        {
            "id": int,
            "kind": str,
            "cause": str,
            "message": int,
            "unit": str,
            "to_addrs": str,
            "cc_addrs": str,
            "subject": str,
            "message_id": str,
            "eml": str,
            "status": str,
            "attempts": int,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
            "delivered_to": str,
        },
        pk="id",
        not_null={"kind", "cause", "status", "created_at"},
        defaults={"status": "queued", "attempts": 0},
    )
    db["outbox"].create_index(["cause"], unique=True)
    db["outbox"].create_index(["message_id"], unique=True)
    db["outbox"].create_index(["status"])

    db["log"].create(
        {"id": int, "at": str, "message": int, "action": str, "detail": str},
        pk="id",
    )
    db["log"].create_index(["message"])


@migrations()
def m002_mailbox_and_retries(db: sqlite_utils.Database) -> None:
    db["mailbox_state"].create(
        {
            "id": int,
            "account": str,
            "folder": str,
            "uidvalidity": int,
            "last_uid": int,
            "updated_at": str,
        },
        pk="id",
        not_null={"account", "folder", "uidvalidity", "last_uid"},
    )
    db["mailbox_state"].create_index(["account", "folder"], unique=True)
    db["outbox"].add_column("next_attempt_at", str)


@migrations()
def m003_jobs(db: sqlite_utils.Database) -> None:
    db["jobs_run"].create(
        {
            "id": int,
            "key": str,
            "kind": str,
            "item": str,
            "period": str,
            "due_at": str,
            "ran_at": str,
            "outcome": str,
            "detail": str,
        },
        pk="id",
        not_null={"key", "kind", "due_at", "ran_at", "outcome"},
    )
    db["jobs_run"].create_index(["key"], unique=True)


@migrations()
def m004_office_decisions(db: sqlite_utils.Database) -> None:
    db["messages"].add_column("machine_reading", str)
    db["decisions"].create(
        {
            "id": int,
            "kind": str,
            "message": int,
            "unit": str,
            "item": str,
            "period": str,
            "value": str,
            "note": str,
            "by": str,
            "at": str,
            "undone_at": str,
            "undone_by": str,
            "undone_note": str,
        },
        pk="id",
        not_null={"kind", "at", "by"},
    )
    db["decisions"].create_index(["kind", "unit", "item", "period"])
    db["decisions"].create_index(["message"])


def deadline_decisions(db: sqlite_utils.Database) -> dict[tuple[str, str, str, str], dict]:
    """The excuses and extensions in force, by (kind, unit, item, period); the latest wins.
    They hold for the deadline they name, whenever they were made."""
    return {
        (row["kind"], row["unit"], row["item"], row["period"]): row
        for row in db.query(
            "select * from decisions where kind in ('excuse', 'extend') and undone_at is null "
            "order by id"
        )
    }


def active_decision(
    db: sqlite_utils.Database, kind: str, unit: str, item: str, period: str | None
) -> dict | None:
    """The latest decision of this kind for (unit, item, period) that was not undone."""
    return next(
        db["decisions"].rows_where(
            "kind = ? and unit = ? and item = ? and period is ? and undone_at is null",
            [kind, unit, item, period],
            order_by="id desc",
            limit=1,
        ),
        None,
    )


def open_ledger(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the ledger and bring its schema up to date."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=10000")
    migrations.apply(db)
    return db


def now_iso(tz: dt.tzinfo) -> str:
    return dt.datetime.now(tz).isoformat(timespec="seconds")


def dumps(value: Any) -> str:
    """JSON as stored in the ledger: compact, Chinese kept readable."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def log(
    db: sqlite_utils.Database, tz: dt.tzinfo, message: int | None, action: str, detail: Any
) -> None:
    db["log"].insert(
        {"at": now_iso(tz), "message": message, "action": action, "detail": dumps(detail)}
    )


def received_by(row: dict, as_of: dt.datetime | None) -> bool:
    """Whether a row's mail had arrived at `as_of` (None: at any time). Times are compared as
    moments, not as text, so a moment given in another zone still compares right."""
    return as_of is None or dt.datetime.fromisoformat(row["received_at"]) <= as_of


def find_message(db: sqlite_utils.Database, sha256: str) -> dict | None:
    return next(db["messages"].rows_where("sha256 = ?", [sha256], limit=1), None)


def message_by_message_id(db: sqlite_utils.Database, message_id: str) -> dict | None:
    return next(
        db["messages"].rows_where("message_id = ?", [message_id], order_by="id", limit=1), None
    )


def receipts_for(db: sqlite_utils.Database, unit: str, item: str, period: str) -> list[dict]:
    return list(
        db["receipts"].rows_where(
            "unit = ? and item = ? and period = ?", [unit, item, period], order_by="version"
        )
    )


def outbox_row_by_message_id(db: sqlite_utils.Database, message_id: str) -> dict | None:
    return next(db["outbox"].rows_where("message_id = ?", [message_id], limit=1), None)
