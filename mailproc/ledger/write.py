"""Every change to the ledger: mail recorded or quarantined, receipts and figures, a new reading
settled into its group, decisions of the office, outgoing messages and their delivery, the
mailbox's progress, the jobs run.

Callers hold the transaction (`with db.atomic():`) when several writes must stand or fall
together: a mail, its files, its receipt and its reply are one.
"""

import dataclasses
import datetime as dt
import email.header
import email.policy
import re
from collections.abc import Iterable
from email.message import EmailMessage
from typing import Any

import sqlite_utils
from sqlite_utils.db import jsonify_if_needed

from mailproc.ledger.read import dumps, now_iso, unit_deadline
from mailproc.rules import Rules
from mailproc.values import Classification

# The writes made for every mail and every reply are plain statements, each prepared once
# (sqlite3 caches them by their text): through sqlite-utils' tables each one first asked
# the schema what the table is, some eighty statements a mail.


def _insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    """One row as sqlite-utils would store it (lists and dicts as JSON); its rowid."""
    columns = ", ".join(f'"{name}"' for name in row)
    marks = ", ".join("?" * len(row))
    values = [jsonify_if_needed(value) for value in row.values()]
    return db.execute(f'insert into "{table}" ({columns}) values ({marks})', values).lastrowid


def _insert_all(db: sqlite_utils.Database, table: str, rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        _insert(db, table, row)


def _update(db: sqlite_utils.Database, table: str, pk: int, fields: dict[str, Any]) -> None:
    assignments = ", ".join(f'"{name}" = ?' for name in fields)
    values = [jsonify_if_needed(value) for value in fields.values()]
    db.execute(f'update "{table}" set {assignments} where id = ?', [*values, pk])


def log(
    db: sqlite_utils.Database, tz: dt.tzinfo, message: int | None, action: str, detail: Any
) -> None:
    with db.atomic():
        _insert(
            db,
            "log",
            {"at": now_iso(tz), "message": message, "action": action, "detail": dumps(detail)},
        )


# -- mail ----------------------------------------------------------------------------------


def reading(result: Classification) -> dict[str, Any]:
    """The ledger fields of one reading of a mail (the machine's, or the office's)."""
    return {
        "disposition": result.disposition,
        "unit": result.unit,
        "unit_source": result.unit_source,
        "sender_unit": result.sender_unit,
        "item": result.item,
        "period": result.period,
        "status": result.status,
        "version": result.version,
        "reply": result.reply,
        "problems": dumps(result.problems),
        "flags": dumps([{"kind": f.kind, "text": f.text} for f in result.flags]),
    }


def record_message(db: sqlite_utils.Database, fields: dict[str, Any]) -> int:
    """A mail as it arrived (its headers, archive path, source) with its reading."""
    with db.atomic():
        return _insert(db, "messages", fields)


def refile_message(db: sqlite_utils.Database, pk: int, moves: dict[str, str]) -> None:
    """A mail's archived files moved to the folder of its new reading: old path → new path."""
    row = db["messages"].get(pk)
    db["messages"].update(pk, {"archive_path": moves.get(row["archive_path"], row["archive_path"])})
    for old, new in moves.items():
        db.execute(
            "update attachments set archive_path = ? where message = ? and archive_path = ?",
            [new, pk, old],
        )


def record_attachments(db: sqlite_utils.Database, rows: Iterable[dict[str, Any]]) -> None:
    with db.atomic():
        _insert_all(db, "attachments", rows)


def recover_message(db: sqlite_utils.Database, pk: int, fields: dict[str, Any]) -> None:
    """A quarantined mail that reads now: the headers it was missing."""
    db["messages"].update(pk, fields)


def record_receipt(
    db: sqlite_utils.Database, pk: int, received: dt.datetime, result: Classification
) -> None:
    """The mail's receipt against its deadline, and its 附件1 figures when every cell read."""
    receipt = {
        "message": pk,
        "unit": result.unit,
        "item": result.item,
        "period": result.period,
        "version": result.version,
        "received_at": received.isoformat(),
        "on_time": int(bool(result.on_time)),
        "status": result.status,
        "complete": int(not result.problems),
        "problems": dumps(result.problems),
    }
    with db.atomic():
        _insert(db, "receipts", receipt)
        table = result.table
        if table is not None and not table.bad_cells:
            approximate = {cell.column for cell in table.approximations}
            _insert_all(
                db,
                "figures",
                (
                    {
                        "message": pk,
                        "unit": result.unit,
                        "item": result.item,
                        "period": result.period,
                        "version": result.version,
                        "column": column,
                        "value": value,
                        "approximate": int(column in approximate),
                    }
                    for column, value in table.values.items()
                ),
            )


def forget_receipts(db: sqlite_utils.Database, pks: Iterable[int]) -> None:
    """Drop the receipts and figures of mails about to be read again."""
    for pk in pks:
        db["receipts"].delete_where("message = ?", [pk])
        db["figures"].delete_where("message = ?", [pk])


def apply_reading(
    db: sqlite_utils.Database, rules: Rules, pk: int, received: dt.datetime, result: Classification
) -> tuple[int | None, str | None]:
    """Put a new reading of a stored mail in the ledger: its receipt and figures follow, and the
    groups it leaves and joins are numbered again by receipt time. Returns the version and
    status the mail has once its group is settled."""
    groups = {
        (r["unit"], r["item"], r["period"]) for r in db["receipts"].rows_where("message = ?", [pk])
    }
    forget_receipts(db, [pk])
    db["messages"].update(pk, reading(result))
    if result.unit and result.item and result.period:
        # a place holder version (unique per group): settle() numbers the group afterwards
        record_receipt(db, pk, received, dataclasses.replace(result, version=-pk))
        groups.add((result.unit, result.item, result.period))
    for group in groups:
        settle(db, rules, *group)
    settled = db["messages"].get(pk)
    return settled["version"], settled["status"]


def settle(db: sqlite_utils.Database, rules: Rules, unit: str, item_id: str, period: str) -> None:
    """Number a group's receipts by receipt time; the first decides on time or late, against
    the unit's deadline (an extension counts)."""
    item = rules.item(item_id)
    deadline = item.deadline_for(period) if item else None
    if deadline is None:
        return
    deadline = unit_deadline(db, unit, item_id, period, deadline)
    rows = list(
        db.query(
            "select * from receipts where unit = ? and item = ? and period = ? "
            "order by received_at, id",
            [unit, item_id, period],
        )
    )
    for row in rows:  # step aside first: (unit, item, period, version) is unique
        db["receipts"].update(row["id"], {"version": -row["id"]})
        db.execute("update figures set version = ? where message = ?", [-row["id"], row["message"]])
    status = None
    for version, row in enumerate(rows, 1):
        on_time = dt.datetime.fromisoformat(row["received_at"]) <= deadline
        status = status or ("on_time" if on_time else "late")
        db["receipts"].update(
            row["id"], {"version": version, "on_time": int(on_time), "status": status}
        )
        db["messages"].update(row["message"], {"version": version, "status": status})
        db.execute("update figures set version = ? where message = ?", [version, row["message"]])


# -- the office's decisions ---------------------------------------------------------------------


def record_decision(
    db: sqlite_utils.Database,
    tz: dt.tzinfo,
    kind: str,
    by: str,
    note: str | None,
    *,
    message: int | None = None,
    unit: str | None = None,
    item: str | None = None,
    period: str | None = None,
    value: Any = None,
) -> int:
    return (
        db["decisions"]
        .insert(
            {
                "kind": kind,
                "by": by,
                "note": note,
                "at": now_iso(tz),
                "value": dumps(value) if value is not None else None,
                "message": message,
                "unit": unit,
                "item": item,
                "period": period,
            }
        )
        .last_pk
    )


def undo_decision(
    db: sqlite_utils.Database, tz: dt.tzinfo, decision: int, by: str, note: str | None
) -> None:
    db["decisions"].update(
        decision, {"undone_at": now_iso(tz), "undone_by": by, "undone_note": note}
    )


# -- the outbox -----------------------------------------------------------------------------


def queue(
    db: sqlite_utils.Database,
    *,
    kind: str,
    cause: str,
    message: EmailMessage,
    message_pk: int | None,
    unit: str | None,
    tz: dt.tzinfo,
    item: str | None = None,
    period: str | None = None,
) -> int | None:
    """Insert one outgoing message unless its cause was queued before; returns its id. `item`
    and `period` say what a notice to a unit is about, so a reply to it can be booked."""
    row = {
        "kind": kind,
        "cause": cause,
        "message": message_pk,
        "unit": unit,
        "item": item,
        "period": period,
        "to_addrs": _text(message["To"]),
        "cc_addrs": _text(message["Cc"] or ""),
        "subject": _text(message["Subject"]),
        "message_id": message["Message-ID"],
        "eml": message.as_string(policy=email.policy.SMTP),
        "status": "queued",
        "attempts": 0,
        "created_at": now_iso(tz),
    }
    with db.atomic():
        if db.execute("select 1 from outbox where cause = ?", [cause]).fetchone():
            return None
        return _insert(db, "outbox", row)


_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _text(value: str) -> str:
    """A header as a person reads it (the message keeps it encoded for the wire)."""
    value = _FOLD.sub("", value)
    if "=?" not in value:  # no encoded word: as it stands
        return value
    return str(email.header.make_header(email.header.decode_header(value)))


def _set_outbox(
    db: sqlite_utils.Database, outbox_id: int, fields: dict[str, Any], durable: bool = True
) -> None:
    with db.atomic(durable=durable):
        _update(db, "outbox", outbox_id, fields)


def requeue(db: sqlite_utils.Database, outbox_id: int) -> None:
    """A failed message queued again, due at once."""
    _set_outbox(db, outbox_id, {"status": "queued", "next_attempt_at": None})


def delivery_resumed(db: sqlite_utils.Database, outbox_id: int, sent: bool, tz: dt.tzinfo) -> None:
    """A message a crash left `sending`: sent after all, or queued again."""
    if sent:
        fields = {"status": "sent", "sent_at": now_iso(tz), "delivered_to": "recovered"}
    else:
        fields = {"status": "queued"}
    _set_outbox(db, outbox_id, fields)


def delivery_started(db: sqlite_utils.Database, outbox_id: int, attempts: int) -> None:
    """On disk before the message leaves: after a power cut it is found `sending` and checked,
    never sent blind a second time."""
    _set_outbox(db, outbox_id, {"status": "sending", "attempts": attempts})


def delivery_sent(db: sqlite_utils.Database, outbox_id: int, where: str, tz: dt.tzinfo) -> None:
    """Not flushed to disk on its own (the next commit that is flushes it): lost to a power
    cut, the message is `sending` again, and delivery asks whether it went out."""
    fields = {"status": "sent", "sent_at": now_iso(tz), "delivered_to": where}
    _set_outbox(db, outbox_id, fields, durable=False)


def delivery_failed(db: sqlite_utils.Database, outbox_id: int, error: str) -> None:
    _set_outbox(db, outbox_id, {"status": "failed", "last_error": error})


def delivery_postponed(
    db: sqlite_utils.Database, outbox_id: int, error: str, until: dt.datetime
) -> None:
    _set_outbox(
        db,
        outbox_id,
        {"status": "queued", "last_error": error, "next_attempt_at": until.isoformat()},
    )


# -- a mail in hand -------------------------------------------------------------------------------


def take_in_hand(db: sqlite_utils.Database, tz: dt.tzinfo, sha256: str, source: str) -> int:
    """Note, and commit at once, that a mail is being read; how many times it has been taken
    in hand without being recorded (1 the first time). Not flushed to disk on its own: a
    process that dies leaves it committed, and only a power cut could lose one count."""
    with db.atomic(durable=False):
        row = db.execute("select attempts from in_hand where sha256 = ?", [sha256]).fetchone()
        attempts = (row[0] if row else 0) + 1
        db.execute(
            "insert or replace into in_hand (sha256, source, started_at, attempts)"
            " values (?, ?, ?, ?)",
            [sha256, source, now_iso(tz), attempts],
        )
    return attempts


def out_of_hand(db: sqlite_utils.Database, sha256: str) -> None:
    """The mail is recorded (call in the transaction that records it)."""
    with db.atomic():
        db.execute("delete from in_hand where sha256 = ?", [sha256])


# -- the mailbox and the jobs ------------------------------------------------------------------


def save_mailbox_state(
    db: sqlite_utils.Database,
    tz: dt.tzinfo,
    account: str,
    folder: str,
    uidvalidity: int,
    last_uid: int,
) -> None:
    """How far one folder of one account has been read. Not flushed to disk on its own: a
    power cut that loses it makes the next poll fetch mail again that the ledger knows by its
    sha256 (see `Pipeline.ingest`), so it changes nothing."""
    with db.atomic(durable=False):
        db.execute(
            "insert into mailbox_state (account, folder, uidvalidity, last_uid, updated_at)"
            " values (?, ?, ?, ?, ?) on conflict (account, folder) do update set"
            " uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,"
            " updated_at = excluded.updated_at",
            [account, folder, uidvalidity, last_uid, now_iso(tz)],
        )


def record_job_run(db: sqlite_utils.Database, fields: dict[str, Any]) -> None:
    db["jobs_run"].insert(fields)


# -- the console's users and sessions -------------------------------------------------------------


def add_user(
    db: sqlite_utils.Database, tz: dt.tzinfo, name: str, role: str, password_hash: str
) -> None:
    """A new console user, or a new role and password for an existing one (unlocked)."""
    db["users"].upsert(
        {
            "name": name,
            "role": role,
            "password_hash": password_hash,
            "created_at": now_iso(tz),
            "failures": 0,
            "locked_until": None,
        },
        pk="name",
    )


def remove_user(db: sqlite_utils.Database, name: str) -> None:
    """The user and every session they had: a removed clerk is logged out at once."""
    with db.atomic():
        db["console_sessions"].delete_where("user = ?", [name])
        db["users"].delete_where("name = ?", [name])


def login_failed(
    db: sqlite_utils.Database, name: str, failures: int, locked_until: str | None
) -> None:
    db["users"].update(name, {"failures": failures, "locked_until": locked_until})


def login_succeeded(db: sqlite_utils.Database, name: str, session: dict[str, str]) -> None:
    """Failures forgotten, and the new session (its token's hash, its CSRF token) stored."""
    with db.atomic():
        db["users"].update(name, {"failures": 0, "locked_until": None})
        db["console_sessions"].insert(session)


def end_session(db: sqlite_utils.Database, token_hash: str, now: str) -> None:
    """One session ended (logout), and every expired one forgotten."""
    with db.atomic():
        db["console_sessions"].delete_where("token_hash = ? or expires_at < ?", [token_hash, now])
