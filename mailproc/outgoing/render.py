"""Outgoing messages rendered: every mail mailproc sends, from the jinja2 templates of
`templates/` (one file per kind, with a `subject` and a `body` block) into a complete, threaded
message. The ledger queues it (`ledger.write.queue`) in the same transaction as what caused it,
so a crash can neither lose it nor produce it twice.
"""

import base64
import datetime as dt
import email.policy
import hashlib
import re
from email.contentmanager import raw_data_manager
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

import jinja2

from mailproc.display import without_controls
from mailproc.labels import PROBLEM_LABELS
from mailproc.rules import Column, Rules
from mailproc.values import Classification, TableUnread

WEEKDAYS = "一二三四五六日"


_CJK_SPACE = re.compile(r"(?<=[^\x00-\x7f]) (?=[^\x00-\x7f])")
_LINE = 78  # RFC 5322's line length, as the email package folds


_WORD_BYTES = 39  # of text per encoded word: "Subject: " and the first word fit in a line


def _encoded(text: str) -> str:
    """Text as RFC 2047 encoded words, cut between characters, never at a space (a reader
    drops the white space between two encoded words)."""
    words, chunk, size = [], [], 0
    for char in text:
        length = len(char.encode())
        if size + length > _WORD_BYTES:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += length
    words.append("".join(chunk))
    encoded = (base64.b64encode(word.encode()).decode("ascii") for word in words)
    return "\n ".join(f"=?utf-8?b?{word}?=" for word in encoded)


def _header(name: str, value: str) -> str:
    """A header's value written out once, as it goes on the wire. A short ASCII value stays
    as it is; anything else is folded and encoded by the email package, as before."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} may not contain a line break")
    if value.isascii() and len(name) + len(value) + 2 <= _LINE:
        return value
    return email.policy.SMTP.fold(name, value)[len(name) + 2 :].rstrip("\r\n")


def long_time(moment: dt.datetime) -> str:
    """With seconds when there are any: 11:00:01 is late for an 11:00 deadline, and the unit
    should see why."""
    weekday = WEEKDAYS[moment.weekday()]
    clock = f"{moment:%H:%M:%S}" if moment.second else f"{moment:%H:%M}"
    return f"{moment.year}年{moment.month}月{moment.day}日（周{weekday}）{clock}"


def short_time(moment: dt.datetime) -> str:
    return f"{moment.month}月{moment.day}日 {moment:%H:%M}"


def deadline_text(deadline: dt.datetime) -> str:
    """A deadline as the notice writes it: a day's end is "5月31日24时", an instant
    "6月13日（周四）11时" (with its minutes when it has any)."""
    if deadline.time() == dt.time(23, 59, 59):
        return f"{deadline.month}月{deadline.day}日24时"
    minutes = f"{deadline.minute}分" if deadline.minute else ""
    weekday = WEEKDAYS[deadline.weekday()]
    return f"{deadline.month}月{deadline.day}日（周{weekday}）{deadline.hour}时{minutes}"


def version_times(first: dt.datetime, this: dt.datetime) -> tuple[str, str]:
    """The first version's receipt and this one's, to the minute; this one's day only when it
    differs: "6月6日10:37" and "13:47"."""
    first_text = f"{first.month}月{first.day}日{first:%H:%M}"
    if first.date() == this.date():
        return first_text, f"{this:%H:%M}"
    return first_text, f"{this.month}月{this.day}日{this:%H:%M}"


class Renderer:
    """Turns a template and its context into a complete, threaded EmailMessage."""

    def __init__(self, templates: Path, rules: Rules, from_address: str, from_name: str):
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=jinja2.select_autoescape(["html.j2"]),
            finalize=without_controls,
        )
        self.env.globals["problem_labels"] = PROBLEM_LABELS
        self.rules = rules
        self.from_address = from_address
        self.from_name = from_name

    def base_context(self) -> dict[str, Any]:
        return {
            "office": self.rules.office,
            "campaign": self.rules.campaign,
            "tags": self.rules.tags,
            "table": self.rules.table,  # name (附件1) and title (活动情况统计表) of the table
            "subject_examples": self.rules.subject_examples(),
            # the periodic items that bring the table: what the 无法识别 reply reminds of
            "table_items": [i for i in self.rules.items if i.periodic and i.needs_stats],
        }

    def render(self, kind: str, context: dict[str, Any]) -> tuple[str, str]:
        template = self.env.get_template(f"{kind}.txt.j2")
        full = {**self.base_context(), **context}
        ctx = template.new_context(full)
        subject = "".join(template.blocks["subject"](ctx)).strip()
        body = "".join(template.blocks["body"](ctx)).strip() + "\n"
        return " ".join(subject.split()), body

    def message(
        self,
        *,
        kind: str,
        subject: str,
        body: str,
        to: list[str],
        cc: list[str],
        message_id: str,
        in_reply_to: str | None,
        references: list[str],
        now: dt.datetime,
        html: str | None = None,
        attachments: tuple[tuple[str, bytes, str], ...] = (),
    ) -> EmailMessage:
        """A complete message: plain text (and HTML), attachments, every mailproc header."""
        # Built under compat32 with every header written out here, once: under the default
        # policy each header is parsed into an object when set and folded again when the
        # outbox stores the message, which cost a reply more than its template.
        msg = EmailMessage(policy=email.policy.compat32)
        msg["From"] = formataddr((self.from_name, self.from_address), "utf-8")
        msg["To"] = _header("To", ", ".join(to))
        if cc:
            msg["Cc"] = _header("Cc", ", ".join(cc))
        # A space between two Chinese words becomes an ideographic one: readers drop a space
        # between encoded words.
        subject = _CJK_SPACE.sub("\u3000", subject)
        msg["Subject"] = _header("Subject", subject) if subject.isascii() else _encoded(subject)
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = _header("Message-ID", message_id)
        if in_reply_to:
            msg["In-Reply-To"] = _header("In-Reply-To", in_reply_to)
            msg["References"] = _header("References", " ".join([*references, in_reply_to][-10:]))
        msg["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        msg["X-Mailproc-Kind"] = kind
        build = {"content_manager": raw_data_manager}
        msg.set_content(body, charset="utf-8", **build)
        if html is not None:
            msg.add_alternative(html, subtype="html", charset="utf-8", **build)
        for filename, data, mime in attachments:
            maintype, subtype = mime.split("/", 1)
            msg.add_attachment(data, maintype, subtype, filename=filename, **build)
        return msg

    def render_html(self, name: str, context: dict[str, Any]) -> str:
        """A whole HTML template (a digest, the dashboard) with the base context."""
        return self.env.get_template(name).render({**self.base_context(), **context})


def shown_figure(column: Column, value: float) -> int | float | str:
    """A figure as a reply writes it: a decimal column's to its places (2.80), else as read."""
    return f"{value:.{column.places}f}" if column.type == "decimal" else value


def outbox_message_id(cause: str, from_address: str) -> str:
    """A Message-ID fixed by the cause, so a re-rendered message keeps its identity."""
    digest = hashlib.sha256(cause.encode("utf-8")).hexdigest()[:24]
    domain = from_address.rpartition("@")[2] or "mailproc.invalid"
    return f"<mailproc.{digest}@{domain}>"


def reply_context(
    rules: Rules,
    result: Classification,
    *,
    received: dt.datetime,
    paper_settled: bool = False,
    first_received: dt.datetime | None = None,
) -> dict[str, Any]:
    """Everything a reply template may show about one classified mail; `first_received`, for a
    further version, is when the version that decides the record came."""
    item = rules.item(result.item) if result.item else None
    period = item.period_at(result.deadline) if item and result.deadline else None
    period_label = period.titled() if period and item.periodic else ""
    files = [
        {
            "name": check.attachment.filename,
            "role": check.role,
            "error": check.error,
        }
        for check in result.files
    ]
    table = result.table
    figures = []
    if table and not table.bad_cells:  # every column, 0 too: the unit checks all were read
        figures = [
            {
                "group": c.group,
                "header": c.header,
                "unit": c.unit,
                "value": table.values.get(c.id),
                "found": c.id in table.columns_found,
                "shown": shown_figure(c, table.values[c.id]) if c.id in table.values else None,
            }
            for c in rules.columns
        ]
    return {
        "unit": result.unit,
        "item": item,
        "period": result.period,
        "period_label": period_label,
        "period_name": period.name if period else "",
        "status": result.status,
        "version": result.version,
        "received_long": long_time(received),
        "received_short": short_time(received),
        "deadline_long": deadline_text(result.unit_deadline or result.deadline)
        if result.deadline
        else "",
        "first_time": version_times(first_received, received)[0] if first_received else "",
        "this_time": version_times(first_received, received)[1] if first_received else "",
        "files": files,
        "unreadable": [f for f in files if f["error"]],
        # why no 附件1 could be read: it came as a picture, or in an old .doc/.wps
        "pictures": _unread(result, "picture"),
        "old_word": _unread(result, "old_word"),
        "problem": result.problem,
        "bad_cells": table.bad_cells if table else [],
        "approximations": table.approximations if table else [],
        "figures": figures,
        "needs_stats": bool(item and item.needs_stats),
        "paper": bool(item and item.needs_paper) and not paper_settled,
        "notes": [f.text for f in result.flags if f.kind == "reporter_mismatch"],
        "correction": any(f.kind == "correction" for f in result.flags),
    }


def _unread(result: Classification, why: TableUnread) -> list[str]:
    """The files that may carry 附件1 but gave no table, for this reason."""
    return [c.attachment.filename for c in result.files if c.unread_table == why]
