"""What an office action changes, in the lines a clerk reads before and after applying it.

The standing of the record is taken before the action and again after it, inside the action's
transaction; the lines are the difference. A preview takes the same two pictures and rolls the
transaction back, so what a preview shows is what the action does, by construction.
"""

import datetime as dt
import json
from dataclasses import dataclass

from mailproc.app import App
from mailproc.display import printable
from mailproc.labels import DISPOSITION_WORDS, KIND_WORDS, OUTBOX_WORDS, REPLY_WORDS, STATE_WORDS
from mailproc.reports.status import deadline_words, status_matrix
from mailproc.rules import Rules


@dataclass(frozen=True)
class Line:
    """One fact of the record: what it is about, and how it stands."""

    order: int  # decisions, then mails, then deadlines, then paper copies, then messages
    subject: str
    state: str


def target_words(rules: Rules, unit: str | None, item_id: str | None, period: str | None) -> str:
    """东风镇 周报 第3周（6月20日）: a unit's deadline as a clerk names it."""
    item = rules.item(item_id) if item_id else None
    if item is None:
        return " ".join(part for part in (unit, item_id, period) if part)
    deadline = item.deadline_for(period) if period else None
    return f"{unit or ''} {deadline_words(item, deadline) if deadline else item.label}".strip()


def moment_words(value: str | dt.datetime) -> str:
    """6月14日 17:00: a moment as the office writes it (seconds only when they are not 0)."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    seconds = f":{moment.second:02d}" if moment.second else ""
    return f"{moment.month}月{moment.day}日 {moment.hour:02d}:{moment.minute:02d}{seconds}"


def mail_words(row: dict) -> str:
    """#12（6月13日 16:31，user@qq.com）: a mail by its number, when it came and from whom."""
    sender = printable(row["sender"]) or "发件人不明"
    return f"#{row['id']}（{moment_words(row['received_at'])}，{sender}）"


def standing(app: App) -> dict[tuple, Line]:
    """Every fact an office action can change, keyed by what it is about."""
    db, rules = app.db, app.rules
    facts: dict[tuple, Line] = {}
    for row in db.query("select * from decisions where undone_at is null order by id"):
        key, line = _decision_line(rules, row)
        facts[key] = line
    for row in db.query(
        "select id, received_at, sender, disposition, unit, item, period, status, version, reply "
        "from messages"
    ):
        facts[("mail", row["id"])] = Line(1, mail_words(row), _reading_words(rules, row))
    matrix = status_matrix(db, rules, dt.datetime.now(app.tz))
    for (unit, item, period), cell in matrix.cells.items():
        state = STATE_WORDS[cell.state]
        if cell.state in {"on_time", "late"}:
            state += "" if cell.complete else "，缺项未补齐"
            state += f"，共{cell.versions}版" if cell.versions > 1 else ""
        subject = target_words(rules, unit, item, period)
        facts[("cell", unit, item, period)] = Line(2, subject, state)
    for row in db.query(
        "select id, kind, to_addrs, subject, status from outbox "
        "where status in ('queued', 'sending', 'failed')"
    ):
        subject = f"{KIND_WORDS.get(row['kind'], '邮件')} → {printable(row['to_addrs'])}"
        facts[("outbox", row["id"])] = Line(
            4, f"{subject}：{printable(row['subject'])}", OUTBOX_WORDS[row["status"]]
        )
    return facts


def difference(before: dict[tuple, Line], after: dict[tuple, Line]) -> list[str]:
    """The lines that changed, old → new, in the order a clerk checks them."""
    lines = []
    for key in sorted(before.keys() | after.keys(), key=lambda k: _order(k, before, after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None:
            lines.append(f"{new.subject}：{new.state}")
        elif new is None:
            lines.append(f"{old.subject}：{old.state} → 撤销" if key[0] == "decision" else "")
        else:
            lines.append(f"{new.subject}：{old.state} → {new.state}")
    return [line for line in lines if line]


def _order(key: tuple, before: dict, after: dict) -> tuple:
    line = after.get(key) or before[key]
    return (line.order, str(key[1:]))


def _reading_words(rules: Rules, row: dict) -> str:
    if row["disposition"] != "submission" or not row["unit"]:
        return DISPOSITION_WORDS.get(row["disposition"], row["disposition"])
    words = target_words(rules, row["unit"], row["item"], row["period"])
    if row["status"]:
        words += f" {STATE_WORDS[row['status']]} 第{row['version']}版"
    return f"{words}，{REPLY_WORDS[row['reply']]}"


def _decision_line(rules: Rules, row: dict) -> tuple[tuple, Line]:
    value = json.loads(row["value"]) if row["value"] else {}
    target = target_words(rules, row["unit"], row["item"], row["period"])
    kind = row["kind"]
    if kind == "excuse":
        words = "免报"
    elif kind == "extend":
        words = f"截止时间延至 {moment_words(value['deadline'])}"
    elif kind == "paper":
        received = value.get("date")
        words = "纸质文件免交" if value["state"] == "waived" else f"纸质文件已收（{received}）"
    elif kind == "register":
        target, words = value["address"], f"登记为{row['unit']}的地址"
    elif kind == "assign":
        target, words = f"#{row['message']}", f"办公室登记为 {target}"
    elif kind == "confirm":
        target, words = f"#{row['message']}", "办公室已确认"
    else:  # resend: the outbox line says it
        target, words = f"#{row['id']}", "重新发送"
    key = ("decision", kind, row["message"], row["unit"], row["item"], row["period"])
    if kind == "register":
        key = ("decision", kind, value["address"])
    elif kind == "resend":
        key = ("decision", kind, row["id"])
    return key, Line(0, f"{target}", words)
