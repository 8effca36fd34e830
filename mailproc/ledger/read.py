"""Questions the stages ask of the ledger, and the ledger's formats (times, JSON)."""

import datetime as dt
import json
from typing import Any

import sqlite_utils


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


def now_iso(tz: dt.tzinfo) -> str:
    return dt.datetime.now(tz).isoformat(timespec="seconds")


def dumps(value: Any) -> str:
    """JSON as stored in the ledger: compact, Chinese kept readable."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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


def unit_deadline(
    db: sqlite_utils.Database, unit: str, item: str, period: str, deadline: dt.datetime
) -> dt.datetime:
    """The deadline that holds for the unit: the campaign's, or one the office extended."""
    extended = active_decision(db, "extend", unit, item, period)
    if extended is None:
        return deadline
    return dt.datetime.fromisoformat(json.loads(extended["value"])["deadline"])


def flag_texts(row: dict, *kinds: str) -> list[str]:
    """The texts of a mail's flags of these kinds (代报, 填报单位不符), from its ledger row."""
    return [flag["text"] for flag in json.loads(row["flags"] or "[]") if flag["kind"] in kinds]


def registrations(db: sqlite_utils.Database) -> dict[str, dict]:
    """The addresses the office registered for a unit (`mailproc register`), each with its
    decision in force (`id`, `unit`): the latest that was not undone."""
    rows = db.query(
        "select id, unit, json_extract(value, '$.address') as address from decisions "
        "where kind = 'register' and undone_at is null order by id"
    )
    return {row["address"]: row for row in rows}


def registered_unit(db: sqlite_utils.Database, address: str) -> str | None:
    """The unit the office registered an address for, if any."""
    row = registrations(db).get(address.lower())
    return row["unit"] if row else None


def replies_for_day(db: sqlite_utils.Database, address: str, received: dt.datetime) -> int:
    """Replies queued to an address for mail received on the same day (the campaign's)."""
    row = next(
        db.query(
            "select count(*) as n from outbox o join messages m on m.id = o.message "
            "where o.to_addrs = ? and substr(m.received_at, 1, 10) = ?",
            [address, received.date().isoformat()],
        )
    )
    return row["n"]


def console_user(db: sqlite_utils.Database, name: str) -> dict | None:
    return next(db["users"].rows_where("name = ?", [name], limit=1), None)


def console_session(db: sqlite_utils.Database, token_hash: str, now: str) -> dict | None:
    """A session that has not expired, with its user's role (None once the user is removed)."""
    return next(
        db.query(
            "select s.*, u.role from console_sessions s join users u on u.name = s.user "
            "where s.token_hash = ? and s.expires_at > ?",
            [token_hash, now],
        ),
        None,
    )
