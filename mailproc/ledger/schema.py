"""The ledger's schema: every table, built and upgraded by `Migrations`, so an office's
existing ledger is upgraded in place. `docs/ledger.md` documents each table for anyone opening
the file with another SQLite tool.
"""

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from mailproc.private import FILE_MODE, make_folder

migrations = Migrations("mailproc")
BUSY_TIMEOUT_MS = 30_000  # a console click waits this long for a poll's transaction, never fails


class Ledger(sqlite_utils.Database):
    """The ledger's connection: every transaction takes the write lock when it begins.

    A deferred transaction that reads, then writes after another process committed, fails at
    once (its snapshot is stale, and SQLite's busy timeout does not help); begun IMMEDIATE it
    waits for the writer before reading anything. So `run` polling and the office clicking in
    the console take turns, each for one short transaction.
    """

    @contextlib.contextmanager
    def atomic(self, durable: bool = True) -> Iterator[sqlite_utils.Database]:
        """One transaction. `durable=False` commits without waiting for the disk (the next
        durable commit flushes it too): for writes a power cut may lose without harm. A
        process that dies after either kind of commit loses nothing."""
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        if not durable:
            self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self.conn.rollback()
                raise
            self.conn.execute("COMMIT")
        finally:
            if not durable:
                self.conn.execute("PRAGMA synchronous=FULL")

    # sqlite-utils asks sqlite_master for every table and view name each time a table is
    # named (`db["outbox"]`): asked once per schema version instead.

    def _names(self, kind: str) -> list[str]:
        version = self.conn.execute("PRAGMA schema_version").fetchone()[0]
        cached = self.__dict__.setdefault("_name_cache", {}).get(kind)
        if cached is None or cached[0] != version:
            rows = self.conn.execute("select name from sqlite_master where type = ?", [kind])
            cached = self._name_cache[kind] = (version, [row[0] for row in rows])
        return cached[1]

    def table_names(self, fts4: bool = False, fts5: bool = False) -> list[str]:
        if fts4 or fts5:
            return super().table_names(fts4, fts5)
        return list(self._names("table"))

    def view_names(self) -> list[str]:
        return list(self._names("view"))


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


# The note texts that marked a flag before flags had a column of their own (m005 reads them once)
_FLAG_NOTE_PREFIXES = {"代报": "on_behalf", "填报单位不符": "reporter_mismatch"}


@migrations()
def m005_typed_flags_and_notice_targets(db: sqlite_utils.Database) -> None:
    """Facts that lived inside strings get columns: a mail's flags (代报, 填报单位不符), and the
    unit, item and period a reminder or overdue notice is about (they were packed in its cause)."""
    db["messages"].add_column("flags", str)
    for row in db.query(
        "select id, notes from messages where notes like '%代报%' or notes like '%填报单位不符%'"
    ):
        flags = [
            {"kind": kind, "text": note}
            for note in json.loads(row["notes"] or "[]")
            for prefix, kind in _FLAG_NOTE_PREFIXES.items()
            if note.startswith(prefix)
        ]
        db.execute(
            "update messages set flags = ? where id = ?",
            [json.dumps(flags, ensure_ascii=False), row["id"]],
        )
    db["outbox"].add_column("item", str)
    db["outbox"].add_column("period", str)
    for row in db.query("select id, cause from outbox where kind in ('reminder', 'overdue')"):
        _, item, period, _ = row["cause"].split(":", 3)
        db.execute("update outbox set item = ?, period = ? where id = ?", [item, period, row["id"]])


@migrations()
def m006_mail_in_hand(db: sqlite_utils.Database) -> None:
    """The mail being read: written before its files are opened, removed with its record, so a
    mail that was in hand when the process died is known at the next start."""
    db["in_hand"].create(
        {"sha256": str, "source": str, "started_at": str, "attempts": int},
        pk="sha256",
        not_null={"source", "started_at", "attempts"},
    )


@migrations()
def m007_replies_by_address(db: sqlite_utils.Database) -> None:
    """Replies counted by address at every mail (at most three a day): found by index, not by
    reading the whole outbox each time."""
    db["outbox"].create_index(["to_addrs"])


def open_ledger(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed, 0600) the ledger and bring its schema up to date."""
    path = Path(path)
    make_folder(path.parent)
    if not path.exists():  # created 0600: SQLite gives its -wal and -shm the ledger's mode
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    db = Ledger(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # every commit on disk unless said otherwise
    db.execute("PRAGMA foreign_keys=ON")
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    migrations.apply(db)
    return db


@migrations()
def m008_console(db: sqlite_utils.Database) -> None:
    """The office console's people and their sessions: a password is kept only as its scrypt
    hash, a session only as the sha256 of its cookie, so a copy of the ledger logs nobody in."""
    db["users"].create(
        {
            "name": str,
            "role": str,
            "password_hash": str,
            "created_at": str,
            "failures": int,
            "locked_until": str,
        },
        pk="name",
        not_null={"role", "password_hash", "created_at", "failures"},
    )
    db["console_sessions"].create(
        {"token_hash": str, "user": str, "csrf_token": str, "created_at": str, "expires_at": str},
        pk="token_hash",
        not_null={"user", "csrf_token", "created_at", "expires_at"},
    )
    db["console_sessions"].create_index(["user"])


@migrations()
def m009_rows_by_message(db: sqlite_utils.Database) -> None:
    """A mail's receipts, figures and replies found by index: reading a mail again (a booking,
    a replay) replaced them by scanning every table, and the history page looked up the
    outbox the same way."""
    db["receipts"].create_index(["message"])
    db["figures"].create_index(["message"])
    db["outbox"].create_index(["message"])
