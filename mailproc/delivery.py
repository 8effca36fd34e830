"""Delivery: moves queued outbox rows to a transport, each exactly once.

A row goes queued → sending → sent (or failed) in the ledger. The `dir` transport writes
each message as an `.eml` file named by its outbox id, so re-delivering a row after a crash
rewrites the same file instead of producing a second copy.
"""

import datetime as dt
import os
from pathlib import Path
from typing import Protocol

import sqlite_utils

from mailproc.archive import safe_name
from mailproc.ledger import now_iso


class Transport(Protocol):
    def send(self, row: dict) -> str:
        """Deliver one outbox row; returns where it went. Raises DeliveryError."""
        ...


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


class DirTransport:
    """Writes every message into one folder: the default, and what the demo uses."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def send(self, row: dict) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = safe_name(f"{row['id']:05d}-{row['kind']}-{row['unit'] or '未识别'}.eml")
        target = self.folder / name
        temporary = target.with_name(f".{name}.tmp")
        temporary.write_bytes(row["eml"].encode("utf-8"))
        os.replace(temporary, target)
        return str(target)


def deliver(db: sqlite_utils.Database, transport: Transport, tz: dt.tzinfo) -> dict[str, int]:
    """Send every queued (or interrupted) outbox row; returns counts by outcome."""
    counts = {"sent": 0, "failed": 0, "retry": 0}
    rows = list(db["outbox"].rows_where("status in ('queued', 'sending')", order_by="id"))
    for row in rows:
        with db.atomic():
            db["outbox"].update(row["id"], {"status": "sending", "attempts": row["attempts"] + 1})
        try:
            where = transport.send(row)
        except DeliveryError as exc:
            status = "failed" if exc.permanent else "queued"
            db["outbox"].update(row["id"], {"status": status, "last_error": str(exc)})
            counts["failed" if exc.permanent else "retry"] += 1
            continue
        db["outbox"].update(
            row["id"], {"status": "sent", "sent_at": now_iso(tz), "delivered_to": where}
        )
        counts["sent"] += 1
    return counts
