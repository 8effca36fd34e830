"""The office's hands: settle what mailproc could not decide, record paper copies, excuse and
extend — one command each, every one recorded in `decisions` with who, when and why, and every
one reversible. The machine's reading of a mail stays in `messages.machine_reading` beside the
office's, and a booking never repeats a notice already sent for the mail.
"""

import dataclasses
import datetime as dt
import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from mailproc import ledger
from mailproc.app import App
from mailproc.classify.periods import periods_named
from mailproc.display import printable
from mailproc.labels import (
    DECISION_WORDS,
    DISPOSITION_WORDS,
    KIND_WORDS,
    OUTBOX_WORDS,
    REPLY_WORDS,
    STATE_WORDS,
    problem_words,
)
from mailproc.ledger import write
from mailproc.office import changes
from mailproc.pipeline import Pipeline
from mailproc.read.text import normalize
from mailproc.rules import Item, Rules
from mailproc.values import Booking


class OfficeError(Exception):
    """The action cannot be done as asked; the message says why, in one line of Chinese."""


@dataclass
class Done:
    """What an action changed (or, previewed, would change), for the clerk to read: a summary
    and one line per fact of the record that changes, old → new."""

    summary: str
    queued: int = 0
    changes: list[str] = field(default_factory=list)
    preview: bool = False


class _Preview(Exception):
    """Raised inside a previewed action's transaction, so everything it wrote is rolled back."""

    def __init__(self, done: Done):
        self.done = done


def _carry_out(app: App, preview: bool, work: Callable[[], Done]) -> Done:
    """Run `work` in one transaction and say what it changed; previewed, roll it all back.
    The preview and the action are the same code, so what a preview shows is what happens."""
    before = changes.standing(app)
    try:
        with app.db.atomic():
            done = work()
            done.changes = changes.difference(before, changes.standing(app))
            if preview:
                raise _Preview(done)
    except _Preview as rolled_back:
        done = dataclasses.replace(rolled_back.done, queued=0, preview=True)
    return done


def _unchanged(summary: str) -> Done:
    """An action whose outcome already holds: nothing is recorded twice."""
    return Done(f"{summary}，无需重复办理")


# A Message-ID that is safe to paste inside '…' on a command line: a sender writes it, and one
# holding a quote or a shell character must not become part of a command the clerk runs.
_PASTEABLE_ID = re.compile(r"<[A-Za-z0-9.@_+=-]{1,200}>")


def mail_label(row: dict) -> str:
    """How the office names a mail on the command line: #N, its number in the ledger, which
    every command takes and no sender can fill with a quote."""
    return f"#{row['id']}"


def find_message(app: App, message_id: str) -> dict:
    """A mail by `#N`, its number in the ledger (what every listing shows), or by its
    Message-ID, with or without its angle brackets and quotes."""
    wanted = message_id.strip().strip("'\"").strip()
    if re.fullmatch(r"#?\d+", wanted):
        row = next(app.db["messages"].rows_where("id = ?", [int(wanted.lstrip("#"))]), None)
    else:
        if not wanted.startswith("<"):
            wanted = f"<{wanted}>"
        row = ledger.message_by_message_id(app.db, wanted)
    if row is None:
        raise OfficeError(f"台账中没有邮件 {printable(wanted)}")
    if not row["archive_path"]:
        raise OfficeError(f"{mail_label(row)} 没有存档的原件，无法重新判读")
    return row


def resolve_unit(rules: Rules, text: str) -> str:
    """A unit as the clerk types it: its name, an alias, or the unique start of one."""
    wanted = normalize(text.strip())
    if not wanted:
        raise OfficeError("请写明单位名称")
    for unit in rules.units:
        if any(normalize(name) == wanted for name in unit.names):
            return unit.name
    starting = [
        u.name for u in rules.units if any(normalize(n).startswith(wanted) for n in u.names)
    ]
    if len(starting) == 1:
        return starting[0]
    if starting:
        raise OfficeError(f"“{text}”可指 {'、'.join(starting)}，请写全称")
    owners = {name: unit.name for unit in rules.units for name in unit.names}
    near = difflib.get_close_matches(text.strip(), list(owners), n=6, cutoff=0.4)
    close = list(dict.fromkeys(owners[name] for name in near))[:3]
    hint = f"，是否指：{'、'.join(close)}？" if close else "（单位名称见 rules/units.toml）"
    raise OfficeError(f"没有名为“{text}”的单位{hint}")


def resolve_item(rules: Rules, text: str) -> Item:
    """An item as the clerk types it: its id (weekly), its Chinese label or name (周报), or the
    unique start of one."""
    wanted = normalize(text.strip())
    words = {i.id: [i.id, i.label, i.short, i.name] for i in rules.items}
    for item in rules.items:
        if any(normalize(word) == wanted for word in words[item.id]):
            return item
    starting = [
        i
        for i in rules.items
        if wanted and any(normalize(w).startswith(wanted) for w in words[i.id])
    ]
    if len(starting) == 1:
        return starting[0]
    every = "、".join(f"{i.label}（{i.id}）" for i in rules.items)
    raise OfficeError(f"没有名为“{text}”的报送事项（可写：{every}）")


def resolve_period(item: Item, text: str | None) -> str | None:
    """The period a clerk names: its date or its deadline's (2019-06-13, 6月13日), its name or
    number (第N周, 第N期, 9月份); none for an
    item with no deadline, and the only one of an item with one."""
    if item.never_late:
        return None
    if text is None:
        if len(item.deadlines) == 1:
            return item.period_of(item.deadlines[0])
        return None
    wanted = text.strip()
    found = periods_named(item, wanted)
    if len(found) == 1:
        return found[0].key
    if found:
        both = "、".join(f"{p.titled()}（{p.key}）" for p in found)
        raise OfficeError(f"“{wanted}”可指{item.label}的多个报送期次：{both}，请写明其中一个的日期")
    periods = "、".join(p.key for p in item.periods)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", wanted):
        try:
            dt.date.fromisoformat(wanted)
        except ValueError:
            raise OfficeError(f"“{wanted}”不是有效日期") from None
    raise OfficeError(f"{item.label}没有 {wanted} 这个截止日期（可选：{periods}）")


def check_target(
    rules: Rules, unit: str, item_id: str, period: str | None
) -> tuple[str, str, str | None]:
    """A unit, item and period named on the command line, as the ledger names them: the
    canonical unit, the item's id, the deadline's ISO date (implied for one-deadline items)."""
    item = resolve_item(rules, item_id)
    return resolve_unit(rules, unit), item.id, resolve_period(item, period)


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
    none), and apply it; its archived files follow its new reading."""
    pipeline = Pipeline(app)
    result, mail = pipeline.reread(row, booking or _booking_of(app, row["id"]))
    queued = pipeline.apply_reading(row, mail, result)
    settled = app.db["messages"].get(row["id"])
    reading = changes.target_words(app.rules, result.unit, result.item, result.period)
    summary = f"{mail_label(row)} 判读为 {reading or changes.DISPOSITION_WORDS[result.disposition]}"
    if settled["status"]:
        summary += f"，{STATE_WORDS[settled['status']]}，第{settled['version']}版"
    if queued:
        summary += f"，{changes.REPLY_WORDS[result.reply]}待发送"
    elif result.reply != "none":
        summary += f"（{changes.REPLY_WORDS[result.reply]}此前已发出，不再重发）"
    return Done(summary, int(queued))


def assign(
    app: App,
    message_id: str,
    unit: str,
    item: str,
    period: str | None,
    note: str | None,
    by: str,
    preview: bool = False,
) -> Done:
    """Book a mail for a unit and item (and period): the office's reading replaces the machine's."""
    row = find_message(app, message_id)
    unit, item, period = check_target(app.rules, unit, item, period)
    active = _assignments(app, row["id"])
    if active and (active[-1]["unit"], active[-1]["item"], active[-1]["period"]) == (
        unit,
        item,
        period,
    ):
        return _unchanged(f"{mail_label(row)} 已由办公室登记为 {unit} {item} {period or ''}")

    def work() -> Done:
        for previous in active:
            write.undo_decision(app.db, app.tz, previous["id"], by, "改为新的登记")
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

    return _refiled(app, row, _carry_out(app, preview, work))


def unassign(app: App, message_id: str, note: str | None, by: str, preview: bool = False) -> Done:
    """Undo the office's booking: the machine's reading stands again."""
    row = find_message(app, message_id)
    active = _assignments(app, row["id"])
    if not active:
        return _unchanged(f"{mail_label(row)} 没有办公室的登记，系统判读有效")

    def work() -> Done:
        for decision in active:
            write.undo_decision(app.db, app.tz, decision["id"], by, note)
        done = rebook(app, row)
        write.log(app.db, app.tz, row["id"], "unassigned", {"by": by, "note": note})
        return done

    return _refiled(app, row, _carry_out(app, preview, work))


def _refiled(app: App, row: dict, done: Done) -> Done:
    """After a booking is applied, its archived files move to the folder of its new reading."""
    if done.preview:
        return done
    moved = refile(app, row["id"])
    if moved:
        done.changes.append(f"存档原件移至 {moved}")
    return done


def refile(app: App, pk: int) -> str | None:
    """Move a mail's archived original and files to the folder its reading files it under;
    the new folder, or None when they are where they belong. Files are copied, the ledger
    updated, then the old copies removed: a crash between leaves a spare copy, never a
    ledger pointing at nothing."""
    row = app.db["messages"].get(pk)
    archive = app.archive
    folder = archive.folder_for(row["disposition"], row["unit"], row["item"], row["period"])
    old_eml = Path(row["archive_path"])
    if old_eml.parent == folder:
        return None
    moves = {row["archive_path"]: archive.store(folder, old_eml.name, archive.read(old_eml))}
    for attachment in app.db["attachments"].rows_where(
        "message = ? and archive_path is not null", [pk]
    ):
        old = Path(attachment["archive_path"])
        below = old.relative_to(old_eml.parent) if old.is_relative_to(old_eml.parent) else old
        moves[attachment["archive_path"]] = archive.store(
            folder / below.parent, below.name, archive.read(old)
        )
    with app.db.atomic():
        write.refile_message(app.db, pk, moves)
    for old, new in moves.items():
        if old != new:
            archive.remove(Path(old))
    return folder.as_posix()


def excuse(
    app: App,
    unit: str,
    item: str,
    period: str | None,
    note: str | None,
    by: str,
    undo: bool = False,
    preview: bool = False,
) -> Done:
    """The unit owes nothing for this deadline: no reminder, no overdue notice, no penalty."""
    unit, item, period = check_target(app.rules, unit, item, period)
    if period is None:
        raise OfficeError(f"{app.rules.item(item).label}没有截止时间，无需免报")
    target = changes.target_words(app.rules, unit, item, period)
    active = ledger.active_decision(app.db, "excuse", unit, item, period)
    if undo and active is None:
        return _unchanged(f"{target} 没有免报记录")
    if not undo and active is not None:
        return _unchanged(f"{target} 已免报（{active['by']}，{active['at'][:10]}）")

    def work() -> Done:
        if undo:
            write.undo_decision(app.db, app.tz, active["id"], by, note)
            return Done(f"{target} 已撤销免报")
        write.record_decision(
            app.db, app.tz, "excuse", by, note, unit=unit, item=item, period=period
        )
        return Done(f"{target} 已免报")

    return _carry_out(app, preview, work)


def extend(
    app: App,
    unit: str,
    item: str,
    period: str | None,
    until: dt.datetime | None,
    note: str | None,
    by: str,
    undo: bool = False,
    preview: bool = False,
) -> Done:
    """Move one unit's deadline later; its receipts are judged on time or late against the new
    one. An extension never comes before the campaign's deadline: a mistyped date must not
    turn a report sent on time into a late one (docs/decisions.md)."""
    unit, item, period = check_target(app.rules, unit, item, period)
    rules_item = app.rules.item(item)
    if period is None:
        raise OfficeError(f"{rules_item.label}没有截止时间，无法延期")
    target = changes.target_words(app.rules, unit, item, period)
    active = ledger.active_decision(app.db, "extend", unit, item, period)
    original = rules_item.deadline_for(period)
    if undo:
        if active is None:
            return _unchanged(f"{target} 没有延期记录")
    elif until is None:
        raise OfficeError("请用 --until 写明新的截止时间，如 2019-06-14 或 2019-06-14T17:00")
    elif until <= original:
        raise OfficeError(
            f"新的截止时间 {changes.moment_words(until)} 不晚于原截止时间 "
            f"{changes.moment_words(original)}，不能作为延期"
        )
    elif active and dt.datetime.fromisoformat(json.loads(active["value"])["deadline"]) == until:
        return _unchanged(f"{target} 截止时间已延至 {changes.moment_words(until)}")

    def work() -> Done:
        if undo:
            write.undo_decision(app.db, app.tz, active["id"], by, note)
            summary = f"{target} 已撤销延期，截止时间恢复为 {changes.moment_words(original)}"
        else:
            value = {"deadline": until.isoformat()}
            write.record_decision(
                app.db, app.tz, "extend", by, note, unit=unit, item=item, period=period, value=value
            )
            summary = f"{target} 截止时间延至 {changes.moment_words(until)}"
        write.settle(app.db, app.rules, unit, item, period)
        return Done(summary)

    return _carry_out(app, preview, work)


def paper(
    app: App,
    units: str | list[str],
    item: str,
    period: str | None,
    received: dt.date | None,
    waive: bool,
    note: str | None,
    by: str,
    undo: bool = False,
    preview: bool = False,
) -> Done:
    """Record paper copies received (or waived) for a plan or summary: one unit's, or a pile
    of envelopes at once. Every unit is checked before any is recorded, so one mistyped name
    records nothing; a unit already recorded so is left as it is."""
    if waive == (received is not None) and not undo:
        raise OfficeError("请写明 --received 收到日期，或 --waive 免交，二者选一")
    today = dt.datetime.now(app.tz).date()
    if received is not None and received > today:
        raise OfficeError(f"收到日期 {received.isoformat()} 晚于今天（{today.isoformat()}）")
    targets = [check_target(app.rules, unit, item, period) for unit in _listed(units)]
    if not app.rules.item(targets[0][1]).needs_paper:
        raise OfficeError(f"{app.rules.item(targets[0][1]).label}不需要报送纸质文件")
    value = None
    if not undo:
        value = {"state": "waived"} if waive else {"state": "received", "date": str(received)}
    steps = [_paper_step(app, target, value, note, by) for target in dict.fromkeys(targets)]
    pending = [step for step in steps if not isinstance(step, Done)]
    if not pending:
        return Done("；".join(step.summary for step in steps))

    def work() -> Done:
        return Done("；".join(step.summary if isinstance(step, Done) else step() for step in steps))

    return _carry_out(app, preview, work)


def _listed(units: str | list[str]) -> list[str]:
    """One unit, or several, as given; none is a refusal."""
    listed = [units] if isinstance(units, str) else list(units)
    if not listed:
        raise OfficeError("请用 --unit 写明单位（可写多次）")
    return listed


def _paper_step(
    app: App, target: tuple[str, str, str | None], value: dict | None, note: str | None, by: str
) -> Done | Callable[[], str]:
    """One unit's paper record: what to write (called in the action's transaction, it says
    what it did), or, when it already stands so, a Done that records nothing."""
    unit, item, period = target
    words = changes.target_words(app.rules, unit, item, period)
    active = ledger.active_decision(app.db, "paper", unit, item, period)
    if value is None and active is None:
        return _unchanged(f"{words} 没有纸质文件的记录")
    if value is not None and active and json.loads(active["value"]) == value:
        return _unchanged(f"{words} 的纸质文件已记录")

    def step() -> str:
        if value is None:
            write.undo_decision(app.db, app.tz, active["id"], by, note)
            return f"{words} 纸质文件记为未交"
        if active:
            write.undo_decision(app.db, app.tz, active["id"], by, "改为新的记录")
        write.record_decision(
            app.db, app.tz, "paper", by, note, unit=unit, item=item, period=period, value=value
        )
        state = "免交" if value["state"] == "waived" else f"已收（{value['date']}）"
        return f"{words} 纸质文件{state}"

    return step


def confirm(app: App, message_id: str, note: str | None, by: str, preview: bool = False) -> Done:
    """The office has looked at this mail's 代报 or 填报单位 mismatch and lets it stand."""
    row = find_message(app, message_id)
    confirmed = next(
        app.db["decisions"].rows_where(
            "kind = 'confirm' and message = ? and undone_at is null", [row["id"]]
        ),
        None,
    )
    if confirmed:
        return _unchanged(f"{mail_label(row)} 已确认（{confirmed['by']}，{confirmed['at'][:10]}）")

    def work() -> Done:
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
        return Done(f"{mail_label(row)} 已确认")

    return _carry_out(app, preview, work)


def register(
    app: App,
    address: str,
    unit: str,
    note: str | None,
    by: str,
    undo: bool = False,
    preview: bool = False,
) -> Done:
    """An address the office knows to be a unit's (a clerk's own mailbox): from now on its
    mail counts as the unit's, and its 未登记地址 flags leave the inbox."""
    address = address.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
        raise OfficeError(f"“{printable(address)}”不是邮件地址")
    unit = resolve_unit(app.rules, unit)
    owner = app.rules.unit_by_address(address)
    if owner is not None:
        raise OfficeError(f"{address} 已是{owner.name}在 rules/units.toml 中登记的地址")
    active = ledger.registrations(app.db).get(address)
    if undo:
        if active is None or active["unit"] != unit:
            return _unchanged(f"{address} 没有登记为{unit}的地址")
    elif active is not None and active["unit"] == unit:
        return _unchanged(f"{address} 已登记为{unit}的地址")

    def work() -> Done:
        if undo:
            write.undo_decision(app.db, app.tz, active["id"], by, note)
            return Done(f"{address} 不再是{unit}的登记地址")
        if active is not None:
            write.undo_decision(app.db, app.tz, active["id"], by, f"改登记为{unit}的地址")
        write.record_decision(
            app.db, app.tz, "register", by, note, unit=unit, value={"address": address}
        )
        return Done(f"{address} 登记为{unit}的地址")

    return _carry_out(app, preview, work)


def resend(app: App, outbox_id: int, note: str | None, by: str, preview: bool = False) -> Done:
    """Queue a failed message again (after the cause of the failure was fixed)."""
    row = next(app.db["outbox"].rows_where("id = ?", [outbox_id]), None)
    if row is None:
        raise OfficeError(f"发件箱中没有第 {outbox_id} 封邮件")
    if row["status"] in {"queued", "sending"}:
        return _unchanged(f"发件箱第 {outbox_id} 封已在待发送队列")
    if row["status"] != "failed":
        raise OfficeError(f"发件箱第 {outbox_id} 封已发出，不是发送失败的邮件")

    def work() -> Done:
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
        return Done(f"发件箱第 {outbox_id} 封重新排队发送", queued=1)

    return _carry_out(app, preview, work)


def inbox(db: sqlite_utils.Database) -> list[dict]:
    """What needs a person, each with the command that settles it."""
    settled = {
        row["message"]
        for row in db["decisions"].rows_where(
            "kind in ('assign', 'confirm') and undone_at is null and message is not null"
        )
    }
    registered = ledger.registrations(db)
    made_good = _latest_complete_versions(db)
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
        elif guess := ledger.flag_texts(row, "unit_guess"):
            what = guess[0]
            command = (
                f"mailproc confirm '{mid}' --note 说明  或  mailproc assign '{mid}' --unit ..."
            )
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
        elif on_behalf := ledger.flag_texts(row, "on_behalf"):
            what = f"代报待确认（{on_behalf[0].removeprefix('代报：')}）"
            command = (
                f"mailproc confirm '{mid}' --note 说明  或  mailproc assign '{mid}' --unit ..."
            )
        elif correction := ledger.flag_texts(row, "correction"):
            what = correction[0]
            command = f"mailproc confirm '{mid}' --note 说明（已通知单位补发更正后的附件1）"
        elif "unreadable_file" in json.loads(row["problems"] or "[]") and (
            made_good.get((row["unit"], row["item"], row["period"]), 0) <= (row["version"] or 0)
        ):
            what = "文件无法打开（已通知单位重发）"
            command = f"mailproc confirm '{mid}' --note 说明"
        if what:
            entries.append(
                {
                    "id": row["id"],
                    "label": mid,
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
                "label": "—",
                "what": f"发送失败（发件箱第 {row['id']} 封）",
                "received_at": row["created_at"],
                "message_id": row["message_id"],
                "sender": row["to_addrs"],
                "subject": row["subject"],
                "unit": row["unit"],
                "command": f"mailproc resend {row['id']} --note 说明（{row['last_error']}）",
            }
        )
    return entries


def _latest_complete_versions(db: sqlite_utils.Database) -> dict[tuple, int]:
    """(unit, item, period) → the latest version that lacked nothing: a file that could not be
    opened in an earlier version is settled once the unit sent a complete one."""
    rows = db.query(
        "select unit, item, period, max(version) as version from messages "
        "where disposition = 'submission' and version is not null "
        "and coalesce(problems, '[]') = '[]' group by unit, item, period"
    )
    return {(r["unit"], r["item"], r["period"]): r["version"] for r in rows}


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
    machine_text = _reading_text(app.rules, machine) or f"无（{why}）"
    events.append((row["ingested_at"], f"系统判读：{machine_text}"))
    for decision in db["decisions"].rows_where("message = ?", [row["id"]], order_by="id"):
        kind = DECISION_WORDS.get(decision["kind"], "办理")
        target = changes.target_words(
            app.rules, decision["unit"], decision["item"], decision["period"]
        )
        events.append(
            (decision["at"], f"办公室{kind}（{decision['by']}）：{target} {decision['note'] or ''}")
        )
        if decision["undone_at"]:
            events.append(
                (
                    decision["undone_at"],
                    f"撤销{kind}（{decision['undone_by']}）：{decision['undone_note'] or ''}",
                )
            )
    for entry in db["log"].rows_where(
        "message = ? and action in ('ingested', 'quarantined')", [row["id"]], order_by="id"
    ):  # the office's own actions are told by their decisions above
        events.append((entry["at"], _log_text(entry)))
    for sent in db["outbox"].rows_where("message = ?", [row["id"]], order_by="id"):
        kind = KIND_WORDS.get(sent["kind"], sent["kind"])
        state = OUTBOX_WORDS.get(sent["status"], sent["status"])
        events.append(
            (sent["created_at"], f"回复{kind} → {sent['to_addrs']}：{sent['subject']}（{state}）")
        )
    current = {k: row[k] for k in reading_keys()}
    events.append(("", f"当前判读：{_reading_text(app.rules, current)}"))
    return [
        f"{at[:19].replace('T', ' '):<19}  {printable(text)}"  # sender's words: no escapes
        for at, text in sorted(events, key=lambda e: e[0] or "9")
    ]


def reading_keys() -> list[str]:
    return ["disposition", "unit", "item", "period", "status", "version", "reply", "problems"]


def _reading_text(rules: Rules, values: dict) -> str:
    """A reading as the office says it: 报送 东风镇 周报 2019-06-13 按时 第2版 回执."""
    if not values:
        return ""
    item = rules.item(values["item"]) if values.get("item") else None
    problems = values.get("problems") or "[]"
    words = [
        DISPOSITION_WORDS.get(values.get("disposition"), ""),
        values.get("unit") or "",
        item.label if item else "",
        values.get("period") or "",
        STATE_WORDS.get(values.get("status"), ""),
        f"第{values['version']}版" if values.get("version") else "",
        REPLY_WORDS.get(values.get("reply"), ""),
        problem_words(json.loads(problems) if isinstance(problems, str) else problems),
    ]
    return " ".join(word for word in words if word)


LOG_WORDS = {"ingested": "入账", "quarantined": "隔离"}
LOG_DETAIL_WORDS = {"source": "来源", "reason": "原因"}


def _log_text(entry: dict) -> str:
    """One log line of the mail: what happened, and the details a clerk can use."""
    detail = json.loads(entry["detail"] or "{}")
    details = [
        f"{LOG_DETAIL_WORDS[key]} {value}"
        for key, value in detail.items()
        if key in LOG_DETAIL_WORDS and value
    ]
    if "disposition" in detail:
        details.append(DISPOSITION_WORDS.get(detail["disposition"], ""))
    if "reply" in detail:
        details.append(REPLY_WORDS.get(detail["reply"], ""))
    what = LOG_WORDS[entry["action"]]
    return f"{what}：{'，'.join(d for d in details if d)}" if details else what
