"""Replay: after rules/ change, read every stored mail again and bring the ledger in line.

Mail is read again in receipt order from the archive, with the current rules and the office's
bookings, against a history built up by the replay itself — exactly as if it were arriving
now. `--dry-run` lists what would change (unit, item, period, status); applying rewrites the
readings, receipts and figures in one transaction and queues only the replies the new
readings owe: a reply's cause is the mail and its reading, so one already sent for the same
reading is never sent again. Office decisions live in their own table and survive.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from mailproc.ledger import write
from mailproc.pipeline import LedgerHistory, Pipeline
from mailproc.values import Booking, Classification, ParsedMail

COMPARED = ("unit", "item", "period", "status")
NOT_READ_AGAIN = ("duplicate", "own")


class ReplayHistory(LedgerHistory):
    """Receipts as the replay has rebuilt them so far; decisions and outbox from the ledger."""

    def __init__(self, db: sqlite_utils.Database):
        super().__init__(db)
        self.groups: dict[tuple[str, str, str], list[dict]] = {}

    def receipts(self, unit: str, item: str, period: str) -> list[dict]:
        return self.groups.get((unit, item, period), [])

    def add(self, result: Classification) -> None:
        if result.unit and result.item and result.period:
            key = (result.unit, result.item, result.period)
            self.groups.setdefault(key, []).append(
                {"status": result.status, "problems": json.dumps(result.problems)}
            )


@dataclass
class Reread:
    row: dict
    result: Classification
    mail: ParsedMail

    @property
    def old(self) -> tuple:
        return tuple(self.row[k] for k in COMPARED)

    @property
    def new(self) -> tuple:
        return tuple(getattr(self.result, k) for k in COMPARED)


def _bookings(db: sqlite_utils.Database) -> dict[int, Booking]:
    return {
        row["message"]: Booking(row["unit"], row["item"], row["period"])
        for row in db["decisions"].rows_where(
            "kind = 'assign' and undone_at is null", order_by="id"
        )
    }


def reread_all(pipeline: Pipeline) -> list[Reread]:
    """Every stored mail read again, in receipt order."""
    db = pipeline.db
    history = ReplayHistory(db)
    bookings = _bookings(db)
    rows = db.query(
        "select * from messages where disposition not in (?, ?) order by received_at, id",
        NOT_READ_AGAIN,
    )
    rereads = []
    for row in rows:
        try:
            result, mail = pipeline.reread(row, bookings.get(row["id"]), history)
        except Exception:  # a quarantined mail that still cannot be read stays quarantined
            if row["disposition"] != "quarantined":
                raise
            continue
        history.add(result)
        rereads.append(Reread(row, result, mail))
    return rereads


def changes(rereads: Iterable[Reread]) -> list[Reread]:
    return [r for r in rereads if r.old != r.new]


def apply(pipeline: Pipeline, rereads: list[Reread]) -> int:
    """Write every new reading, in receipt order, the way the office's booking of one mail is
    written (`Pipeline.apply_reading`); returns how many replies were newly queued."""
    db = pipeline.db
    queued = 0
    with db.atomic():
        # every group is built again from its first mail on: none keeps an old receipt
        write.forget_receipts(db, (reread.row["id"] for reread in rereads))
        for reread in rereads:
            queued += pipeline.apply_reading(reread.row, reread.mail, reread.result)
        write.log(
            db,
            pipeline.tz,
            None,
            "replayed",
            {"mails": len(rereads), "changed": len(changes(rereads)), "replies": queued},
        )
    return queued
