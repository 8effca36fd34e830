"""The office's hands: settle what mailproc could not decide, record paper copies, excuse and
extend — one command each, every one recorded in `decisions` with who, when and why, and every
one reversible. The machine's reading of a mail stays in `messages.machine_reading` beside the
office's, and a booking never repeats a notice already sent for the mail.
"""

import datetime as dt
import json
import re
from dataclasses import dataclass

import sqlite_utils

from mailproc import ledger
from mailproc.app import App
from mailproc.display import printable
from mailproc.ledger import write
from mailproc.pipeline import Pipeline
from mailproc.rules import Item, Rules
from mailproc.values import Booking


class OfficeError(Exception):
    """The action cannot be done as asked; the message says why, in one line."""


@dataclass
class Done:
    """What an action changed, for the command to print."""

    summary: str
    queued: int = 0


# A Message-ID that is safe to paste inside '…' on a command line: a sender writes it, and one
# holding a quote or a shell character must not become part of a command the clerk runs.
_PASTEABLE_ID = re.compile(r"<[A-Za-z0-9.@_+=-]{1,200}>")


def mail_label(row: dict) -> str:
    """How the office names a mail on the command line: its Message-ID when it is a plain one,
    else #N, its number in the ledger."""
    message_id = row["message_id"] or ""
    return message_id if _PASTEABLE_ID.fullmatch(message_id) else f"#{row['id']}"


def find_message(app: App, message_id: str) -> dict:
    """A mail by its Message-ID, or by `#N`, its number in the ledger (what `inbox` shows for
    mail without a Message-ID)."""
    wanted = message_id.strip()
    if re.fullmatch(r"#\d+", wanted):
        row = next(app.db["messages"].rows_where("id = ?", [int(wanted[1:])]), None)
    else:
        if not wanted.startswith("<"):
            wanted = f"<{wanted}>"
        row = ledger.message_by_message_id(app.db, wanted)
    if row is None:
        raise OfficeError(f"no mail {wanted} in the ledger")
    if not row["archive_path"]:
        raise OfficeError(f"{wanted} has no archived original to read again")
    return row


def _item(rules: Rules, item_id: str) -> Item:
    item = rules.item(item_id)
    if item is None:
        raise OfficeError(
            f"unknown item {item_id!r} (items: {', '.join(i.id for i in rules.items)})"
        )
    return item


def check_target(rules: Rules, unit: str, item_id: str, period: str | None) -> str | None:
    """Validate a unit/item/period named on the command line; the period an item with one
    deadline implies when none is given."""
    if rules.unit(unit) is None:
        raise OfficeError(f"unknown unit {unit!r} (see rules/units.toml)")
    item = _item(rules, item_id)
    if item.never_late:
        return None
    if period is None:
        if len(item.deadlines) == 1:
            return item.period_of(item.deadlines[0])
        return None
    if item.deadline_for(period) is None:
        periods = ", ".join(item.period_of(d) for d in item.deadlines)
        raise OfficeError(f"{item_id} has no deadline {period} (its periods: {periods})")
    return period


def _assignments(app: App, pk: int) -> list[dict]:
    """The office's bookings of one mail that are in force, newest last."""
    return list(
        app.db["decisions"].rows_where(
            "kind = 'assign' and message = ? and undone_at is null", [pk], order_by="id"
        )
    )


def _booking_of(app: App, pk: int) -> Booking | None:
    rows = _assignments(app, pk)
    return Booking(rows[-1]["unit"], rows[-1]["item"], rows[-1]["period"]) if rows else None


def rebook(app: App, row: dict, booking: Booking | None = None) -> Done:
    """Read a stored mail again under `booking`, by default the office's current one (or
    none), and apply it."""
    pipeline = Pipeline(app)
    result, mail = pipeline.reread(row, booking or _booking_of(app, row["id"]))
    queued = pipeline.apply_reading(row, mail, result)
    return Done(
        f"{mail_label(row)}: {result.unit or '-'} {result.item or '-'} {result.period or '-'} "
        f"{result.status or '-'} v{result.version or '-'}, reply {result.reply}"
        + ("" if queued or result.reply == "none" else " (already sent before)"),
        int(queued),
    )


def assign(
    app: App,
    message_id: str,
    unit: str,
    item: str,
    period: str | None,
    note: str | None,
    by: str,
) -> Done:
    """Book a mail for a unit and item (and period): the office's reading replaces the machine's."""
    row = find_message(app, message_id)
    period = check_target(app.rules, unit, item, period)
    with app.db.atomic():
        for previous in _assignments(app, row["id"]):
            write.undo_decision(app.db, app.tz, previous["id"], by, "replaced by a new assignment")
        write.record_decision(
            app.db,
            app.tz,
            "assign",
            by,
            note,
            message=row["id"],
            unit=unit,
            item=item,
            period=period,
        )
        done = rebook(app, row)
        write.log(app.db, app.tz, row["id"], "assigned", {"by": by, "note": note})
    return done


def unassign(app: App, message_id: str, note: str | None, by: str) -> Done:
    """Undo the office's booking: the machine's reading stands again."""
    row = find_message(app, message_id)
    with app.db.atomic():
        active = _assignments(app, row["id"])
        if not active:
            raise OfficeError(f"{mail_label(row)} was not assigned by the office")
        for decision in active:
            write.undo_decision(app.db, app.tz, decision["id"], by, note)
        done = rebook(app, row)
        write.log(app.db, app.tz, row["id"], "unassigned", {"by": by, "note": note})
    return done


def excuse(
    app: App,
    unit: str,
    item: str,
    period: str | None,
    note: str | None,
    by: str,
    undo: bool = False,
) -> Done:
    """The unit owes nothing for this deadline: no reminder, no overdue notice, no penalty."""
    period = check_target(app.rules, unit, item, period)
    with app.db.atomic():
        if undo:
            _undo(app, "excuse", unit, item, period, note, by)
            return Done(f"{unit} {item} {period}: excuse withdrawn")
        write.record_decision(
            app.db, app.tz, "excuse", by, note, unit=unit, item=item, period=period
        )
    return Done(f"{unit} {item} {period}: excused")


def extend(
    app: App,
    unit: str,
    item: str,
    period: str | None,
    until: dt.datetime | None,
    note: str | None,
    by: str,
    undo: bool = False,
) -> Done:
    """Move one unit's deadline; its receipts are judged on time or late against the new one."""
    period = check_target(app.rules, unit, item, period)
    if period is None:
        raise OfficeError(f"{item} has no deadline to extend")
    with app.db.atomic():
        if undo:
            _undo(app, "extend", unit, item, period, note, by)
            summary = f"{unit} {item} {period}: extension withdrawn"
        else:
            if until is None:
                raise OfficeError("--until is needed (the new deadline, ISO 8601)")
            value = {"deadline": until.isoformat()}
            write.record_decision(
                app.db, app.tz, "extend", by, note, unit=unit, item=item, period=period, value=value
            )
            summary = f"{unit} {item} {period}: deadline moved to {until.isoformat()}"
        write.settle(app.db, app.rules, unit, item, period)
    return Done(summary)


def paper(
    app: App,
    unit: str,
    item: str,
    period: str | None,
    received: dt.date | None,
    waive: bool,
    note: str | None,
    by: str,
    undo: bool = False,
) -> Done:
    """Record a paper copy received (or waived) for a plan or summary."""
    period = check_target(app.rules, unit, item, period)
    if not _item(app.rules, item).needs_paper:
        raise OfficeError(f"{item} needs no paper copy")
    with app.db.atomic():
        if undo:
            _undo(app, "paper", unit, item, period, note, by)
            return Done(f"{unit} {item} {period}: paper copy owed again")
        if waive == (received is not None):
            raise OfficeError("give either --received DATE or --waive")
        value = (
            {"state": "waived"} if waive else {"state": "received", "date": received.isoformat()}
        )
        write.record_decision(
            app.db, app.tz, "paper", by, note, unit=unit, item=item, period=period, value=value
        )
    return Done(f"{unit} {item} {period}: paper copy {value['state']}")


def _undo(
    app: App,
    kind: str,
    unit: str,
    item: str,
    period: str | None,
    note: str | None,
    by: str,
) -> None:
    active = ledger.active_decision(app.db, kind, unit, item, period)
    if active is None:
        raise OfficeError(f"no {kind} recorded for {unit} {item} {period}")
    write.undo_decision(app.db, app.tz, active["id"], by, note)


def confirm(app: App, message_id: str, note: str | None, by: str) -> Done:
    """The office has looked at this mail's 代报 or 填报单位 mismatch and lets it stand."""
    row = find_message(app, message_id)
    with app.db.atomic():
        write.record_decision(
            app.db,
            app.tz,
            "confirm",
            by,
            note,
            message=row["id"],
            unit=row["unit"],
            item=row["item"],
            period=row["period"],
        )
        write.log(app.db, app.tz, row["id"], "confirmed", {"by": by, "note": note})
        if ledger.flag_texts(row, "spoofed", "reply_held") and row["unit"] and row["item"]:
            # the office vouches for the mail: the reply held back goes out now
            return rebook(app, row, Booking(row["unit"], row["item"], row["period"]))
    return Done(f"{mail_label(row)}: confirmed as read")


def register(
    app: App, address: str, unit: str, note: str | None, by: str, undo: bool = False
) -> Done:
    """An address the office knows to be a unit's (a clerk's own mailbox): from now on its
    mail counts as the unit's, and its 未登记地址 flags leave the inbox."""
    address = address.strip().lower()
    if "@" not in address:
        raise OfficeError(f"{address!r} is not a mail address")
    if app.rules.unit(unit) is None:
        raise OfficeError(f"unknown unit {unit!r} (see rules/units.toml)")
    owner = app.rules.unit_by_address(address)
    if owner is not None:
        raise OfficeError(f"{address} is already {owner.name}'s in rules/units.toml")
    with app.db.atomic():
        if undo:
            active = ledger.registrations(app.db).get(address)
            if active is None or active["unit"] != unit:
                raise OfficeError(f"{address} was not registered for {unit}")
            write.undo_decision(app.db, app.tz, active["id"], by, note)
            return Done(f"{address}: no longer registered for {unit}")
        write.record_decision(
            app.db, app.tz, "register", by, note, unit=unit, value={"address": address}
        )
    return Done(f"{address}: registered for {unit}")


def resend(app: App, outbox_id: int, note: str | None, by: str) -> Done:
    """Queue a failed message again (after the cause of the failure was fixed)."""
    row = next(app.db["outbox"].rows_where("id = ?", [outbox_id]), None)
    if row is None or row["status"] != "failed":
        raise OfficeError(f"outbox #{outbox_id} is not a failed message")
    with app.db.atomic():
        write.requeue(app.db, outbox_id)
        write.record_decision(
            app.db,
            app.tz,
            "resend",
            by,
            note,
            message=row["message"],
            unit=row["unit"],
            value={"outbox": outbox_id},
        )
    return Done(f"outbox #{outbox_id} queued again")


def inbox(db: sqlite_utils.Database) -> list[dict]:
    """What needs a person, each with the command that settles it."""
    settled = {
        row["message"]
        for row in db["decisions"].rows_where(
            "kind in ('assign', 'confirm') and undone_at is null and message is not null"
        )
    }
    registered = ledger.registrations(db)
    entries = []
    for row in db.query("select * from messages order by received_at, id"):
        if row["id"] in settled:
            continue
        notes = json.loads(row["notes"] or "[]")
        mid = mail_label(row)
        what = None
        if spoofed := ledger.flag_texts(row, "spoofed"):  # first: the rest may be forged too
            what = spoofed[0]
            command = (
                f"mailproc confirm '{mid}' --note 说明  或  mailproc assign '{mid}' --unit ..."
            )
        elif row["disposition"] in {"unrecognized", "quarantined"}:
            what = "无法识别" if row["disposition"] == "unrecognized" else f"无法处理（{notes[0]}）"
            command = f"mailproc assign '{mid}' --unit 单位 --item 项目 --note 说明"
        elif ledger.flag_texts(row, "reply_held"):
            what = "回复暂缓（该地址当天已收到自动回复 3 封）"
            command = f"mailproc confirm '{mid}' --note 说明（发出暂缓的回复）"
        elif ledger.flag_texts(row, "unregistered") and row["sender"] not in registered:
            what = "未登记地址"
            command = (
                f"mailproc register {row['sender']} --unit {row['unit']} --note 说明  "
                f"或  mailproc confirm '{mid}' --note 说明"
            )
        elif ledger.flag_texts(row, "message_id_clash"):
            what = "Message-ID 与另一封邮件相同、内容不同"
            command = (
                f"mailproc confirm '{mid}' --note 说明  或  mailproc assign '{mid}' --unit ..."
            )
        elif ledger.flag_texts(row, "reporter_mismatch"):
            what = "填报单位不符"
            command = (
                f"mailproc confirm '{mid}' --note 说明  或  mailproc assign '{mid}' --unit ..."
            )
        elif ledger.flag_texts(row, "on_behalf"):
            what = "代报待确认"
            command = (
                f"mailproc confirm '{mid}' --note 说明  或  mailproc assign '{mid}' --unit ..."
            )
        elif "unreadable_file" in json.loads(row["problems"] or "[]"):
            what = "文件无法打开（已通知单位重发）"
            command = f"mailproc confirm '{mid}' --note 说明"
        if what:
            entries.append(
                {
                    "id": row["id"],
                    "what": what,
                    "received_at": row["received_at"],
                    "message_id": row["message_id"],
                    "sender": row["sender"],
                    "subject": row["subject"],
                    "unit": row["unit"],
                    "command": command,
                }
            )
    for row in db["outbox"].rows_where("status = 'failed'", order_by="id"):
        entries.append(
            {
                "outbox": row["id"],
                "what": "发送失败",
                "received_at": row["created_at"],
                "message_id": row["message_id"],
                "sender": row["to_addrs"],
                "subject": row["subject"],
                "unit": row["unit"],
                "command": f"mailproc resend {row['id']} --note 说明（{row['last_error']}）",
            }
        )
    return entries


def history(app: App, message_id: str) -> list[str]:
    """The whole story of one mail: how it came, how it was read, what the office decided,
    what was sent about it."""
    row = find_message(app, message_id)
    db = app.db
    events: list[tuple[str, str]] = [
        (
            row["received_at"],
            f"收到 {row['sender'] or '（发件人不明）'}：{row['subject'] or '（无主题）'}"
            f"（{row['source']}）",
        ),
    ]
    machine = json.loads(row["machine_reading"] or "{}")
    why = (json.loads(row["notes"] or "[]") or ["未能读取"])[0]
    machine_text = _reading_text(machine) or f"无（{why}）"
    events.append((row["ingested_at"], f"系统判读：{machine_text}"))
    for decision in db["decisions"].rows_where("message = ?", [row["id"]], order_by="id"):
        events.append(
            (
                decision["at"],
                f"办公室 {decision['kind']}（{decision['by']}）："
                f"{decision['unit'] or ''} {decision['item'] or ''} {decision['period'] or ''}"
                f" {decision['note'] or ''}",
            )
        )
        if decision["undone_at"]:
            events.append(
                (
                    decision["undone_at"],
                    f"撤销 {decision['kind']}（{decision['undone_by']}）："
                    f"{decision['undone_note'] or ''}",
                )
            )
    for entry in db["log"].rows_where("message = ?", [row["id"]], order_by="id"):
        events.append((entry["at"], f"记录 {entry['action']}：{entry['detail']}"))
    for sent in db["outbox"].rows_where("message = ?", [row["id"]], order_by="id"):
        events.append(
            (
                sent["created_at"],
                f"回复 {sent['kind']} → {sent['to_addrs']}：{sent['subject']}（{sent['status']}）",
            )
        )
    current = {k: row[k] for k in reading_keys()}
    events.append(("", f"当前判读：{_reading_text(current)}"))
    return [
        f"{at[:19].replace('T', ' '):<19}  {printable(text)}"  # sender's words: no escapes
        for at, text in sorted(events, key=lambda e: e[0] or "9")
    ]


def reading_keys() -> list[str]:
    return ["disposition", "unit", "item", "period", "status", "version", "reply", "problems"]


def _reading_text(values: dict) -> str:
    return " ".join(f"{k}={values.get(k)}" for k in reading_keys() if k in values)
