"""Delivery: moves queued outbox rows to a transport, each exactly once.

A row goes queued → sending → sent (or failed) in the ledger, committed before the transport
is called. A row found still `sending` when delivery starts was interrupted by a crash: the
transport is asked whether it got through (`already_sent`) before it is sent again. The `dir`
transport writes each message as an `.eml` named by its outbox id, so a repeat rewrites the
same file instead of producing a second copy.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import sqlite_utils

from mailproc.archive import safe_name
from mailproc.ledger import write
from mailproc.private import write_private

MAX_RETRY_MINUTES = 60


class Transport(Protocol):
    def send(self, row: dict) -> str:
        """Deliver one outbox row; returns where it went. Raises DeliveryError."""
        ...

    def already_sent(self, row: dict) -> bool:
        """Whether a row interrupted in flight was in fact delivered."""
        ...

    def close(self) -> None: ...


class DeliveryError(Exception):
    """A send did not happen: `permanent` (never retry) or not; `stop_batch` when trying the
    next message now is pointless (the server is unreachable, the login is refused)."""

    def __init__(self, message: str, permanent: bool, stop_batch: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.stop_batch = stop_batch


class DirTransport:
    """Writes every message into one folder (files 0600): the default, and what the demo uses."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def send(self, row: dict) -> str:
        about = row["unit"] or ("未识别" if row["kind"] == "unrecognized" else "")
        name = safe_name(f"{row['id']:05d}-{row['kind']}{'-' if about else ''}{about}.eml")
        target = self.folder / name
        write_private(target, row["eml"].encode("utf-8"))
        return str(target)

    def already_sent(self, row: dict) -> bool:
        return False  # rewriting the same file is harmless

    def close(self) -> None:
        pass


@dataclass
class Delivered:
    """What one delivery run did."""

    sent: int = 0
    failed: int = 0
    retry: int = 0
    stopped: str | None = None  # why the run stopped early: server unreachable, login refused
    later: bool = False  # another deliverer was sending: what is queued goes out with it


def deliver(
    db: sqlite_utils.Database,
    transport: Transport,
    tz: dt.tzinfo,
    retry_minutes: float = 2,
    should_stop: Callable[[], bool] = lambda: False,
) -> Delivered:
    """Send every outbox row that is due."""
    counts = Delivered()
    now = dt.datetime.now(tz)
    for row in db["outbox"].rows_where("status = 'sending'", order_by="id"):
        write.delivery_resumed(db, row["id"], transport.already_sent(row), tz)
    due = db["outbox"].rows_where(
        "status = 'queued' and (next_attempt_at is null or next_attempt_at <= ?)",
        [now.isoformat()],
        order_by="id",
    )
    try:
        for row in list(due):
            if should_stop():
                break
            attempts = row["attempts"] + 1
            write.delivery_started(db, row["id"], attempts)
            try:
                where = transport.send(row)
            except DeliveryError as exc:
                if exc.permanent:
                    write.delivery_failed(db, row["id"], str(exc))
                    counts.failed += 1
                else:
                    wait = min(retry_minutes * 2 ** (attempts - 1), MAX_RETRY_MINUTES)
                    later = now + dt.timedelta(minutes=wait)
                    write.delivery_postponed(db, row["id"], str(exc), later)
                    counts.retry += 1
                    if exc.stop_batch:
                        counts.stopped = str(exc)
                        break
                continue
            write.delivery_sent(db, row["id"], where, tz)
            counts.sent += 1
    finally:
        transport.close()
    return counts
