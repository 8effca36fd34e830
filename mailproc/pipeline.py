"""The pipeline: fetch → parse → classify → ledger → reply, for one mail at a time.

`Pipeline.ingest` takes the raw bytes of one mail and leaves the ledger, the archive and the
outbox consistent, whatever the mail holds: a mail it cannot read is quarantined with its
reason, never dropped, and never stops the run. Sources (files here, IMAP later) only hand
it bytes and, when they know it, the server's receipt time.
"""

import datetime as dt
import email.parser
import email.policy
import email.utils
import hashlib
import json
import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailproc import ledger
from mailproc.archive import Archive
from mailproc.classify import Booking, Classification, Classifier, History
from mailproc.config import Config
from mailproc.delivery import Delivered, DirTransport, Transport, deliver
from mailproc.outbox import Renderer, outbox_message_id, queue, reply_context
from mailproc.parse import ParsedMail, ParseError, parse_message, unparsed
from mailproc.rules import Rules, load_rules
from mailproc.smtp import SmtpTransport

log = logging.getLogger("mailproc")


@dataclass
class Outcome:
    """What ingesting one mail did."""

    state: str  # new | known | quarantined
    message_pk: int | None
    disposition: str
    reply: str
    reason: str | None = None


def _stamp(mail: ParsedMail, received: dt.datetime) -> str:
    return f"{received:%Y%m%d-%H%M%S}-{mail.sha256[:12]}"


def reading(result: Classification) -> dict:
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
        "problems": ledger.dumps(result.problems),
    }


class LedgerHistory:
    """The classifier's view of the ledger (see classify.History), optionally as it stood just
    before a moment (when a mail is read again, later mail must not count as earlier)."""

    def __init__(self, db, before: dt.datetime | None = None, exclude: int | None = None):
        self.db, self.before, self.exclude = db, before, exclude

    def receipts(self, unit: str, item: str, period: str) -> list[dict]:
        rows = ledger.receipts_for(self.db, unit, item, period)
        return [
            row
            for row in rows
            if row["message"] != self.exclude
            and (self.before is None or dt.datetime.fromisoformat(row["received_at"]) < self.before)
        ]

    def deadline(self, unit: str, item: str, period: str, deadline: dt.datetime) -> dt.datetime:
        extended = ledger.active_decision(self.db, "extend", unit, item, period)
        if extended is None:
            return deadline
        return dt.datetime.fromisoformat(json.loads(extended["value"])["deadline"])

    def answered_by_us(self, message_ids: Iterable[str]) -> dict | None:
        """The mail our message answered; for a 催报提醒 or 逾期通知 (which answered no mail),
        the unit, item and period it was about."""
        for message_id in message_ids:
            row = ledger.outbox_row_by_message_id(self.db, message_id)
            if row and row["message"]:
                return self.db["messages"].get(row["message"])
            if row and row["kind"] in {"reminder", "overdue"}:
                _, item, period, unit = row["cause"].split(":", 3)
                return {"unit": unit, "item": item, "period": period}
        return None

    def is_ours(self, message_ids: Iterable[str]) -> bool:
        return any(ledger.outbox_row_by_message_id(self.db, m) for m in message_ids)


def reply_cause(sha256: str, result: Classification) -> str:
    """One reply per mail and reading: the same reading never answers twice, a new reading
    (the office's booking, a replay under new rules) may owe a new reply."""
    return f"reply:{sha256}:{result.reply}:{result.unit}:{result.item}:{result.period}"


def header_receipt_time(raw: bytes) -> dt.datetime | None:
    """The topmost Received: date, read from the headers alone (for ordering a batch)."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        for value in (headers.get("Received"), headers.get("Date")):
            if value:
                moment = email.utils.parsedate_to_datetime(
                    str(value).rpartition(";")[2].strip() or str(value)
                )
                if moment.tzinfo is not None:
                    return moment
    except (TypeError, ValueError, IndexError):
        return None
    return None


def mail_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Each mail file named: a file as given, `*.eml` in folders, every file of a Maildir."""
    for path in map(Path, paths):
        if path.is_file():
            yield path
        elif (path / "cur").is_dir() or (path / "new").is_dir():
            for sub in ("new", "cur"):
                if (path / sub).is_dir():
                    yield from sorted(p for p in (path / sub).iterdir() if p.is_file())
        elif path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_dir():
                    yield from mail_files([child])
                elif child.suffix.lower() == ".eml":
                    yield child
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")


class Pipeline:
    """One ledger, one set of rules, one archive and one outbox."""

    def __init__(self, config: Config, rules: Rules | None = None):
        self.config = config
        self.rules = rules or load_rules(config.rules)
        self.tz = self.rules.timezone
        self.db = ledger.open_ledger(config.db)
        self.classifier = Classifier(self.rules)
        self.archive = Archive(config.archive)
        self.from_address = config.from_address or self.rules.office["address"]
        self.renderer = Renderer(
            config.templates,
            self.rules,
            self.from_address,
            config.from_name or self.rules.office["name"],
        )
        self.transport = self._transport()

    def _transport(self) -> Transport:
        if self.config.transport == "smtp" and self.config.smtp is not None:
            mailbox = self.config.mailbox.server if self.config.mailbox else None
            return SmtpTransport(self.config.smtp, self.from_address, mailbox)
        return DirTransport(self.config.outbox)

    def close(self) -> None:
        self.transport.close()
        self.db.close()

    # -- one mail --------------------------------------------------------------------

    def ingest(self, raw: bytes, source: str, received_at: dt.datetime | None = None) -> Outcome:
        """Handle one mail completely; the same bytes a second time change nothing."""
        sha256 = hashlib.sha256(raw).hexdigest()
        known = ledger.find_message(self.db, sha256)
        if known:
            return Outcome("known", known["id"], known["disposition"], known["reply"])
        try:
            mail = parse_message(raw)
        except ParseError as exc:
            return self._quarantine(raw, sha256, source, received_at, f"无法解析: {exc}")
        try:
            return self._handle(mail, source, received_at)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a bug (or a library's panic) costs one mail, not the run
            log.exception("internal error on %s", source)
            detail = "".join(traceback.format_exception_only(exc)).strip()
            return self._quarantine(raw, sha256, source, received_at, f"内部错误: {detail}", mail)

    def _receipt_time(
        self, mail: ParsedMail | None, given: dt.datetime | None
    ) -> tuple[dt.datetime, str, list[str]]:
        if given is not None:
            return given.astimezone(self.tz), "imap", []
        if mail is not None and mail.received_at is not None:
            return mail.received_at.astimezone(self.tz), "received", []
        if mail is not None and mail.date is not None:
            return (
                mail.date.astimezone(self.tz),
                "date",
                ["没有 Received 头，接收时间取自发件人的 Date 头"],
            )
        return (
            dt.datetime.now(self.tz).replace(microsecond=0),
            "ingest",
            ["没有可用的时间头，接收时间取自登记时间"],
        )

    def _quarantine(
        self,
        raw: bytes,
        sha256: str,
        source: str,
        received_at: dt.datetime | None,
        reason: str,
        mail: ParsedMail | None = None,
    ) -> Outcome:
        received, received_from, notes = self._receipt_time(mail, received_at)
        path = self.archive.store(
            self.archive.folder_for("quarantined", None, None, None),
            f"{received:%Y%m%d-%H%M%S}-{sha256[:12]}.eml",
            raw,
        )
        with self.db.atomic():
            pk = (
                self.db["messages"]
                .insert(
                    {
                        "message_id": mail.message_id if mail else None,
                        "sha256": sha256,
                        "received_at": received.isoformat(),
                        "received_from": received_from,
                        "sender": mail.from_address if mail else None,
                        "sender_name": mail.from_name if mail else None,
                        "subject": mail.subject if mail else None,
                        "disposition": "quarantined",
                        "reply": "none",
                        "problems": "[]",
                        "notes": ledger.dumps([reason, *notes]),
                        "archive_path": path,
                        "source": source,
                        "ingested_at": ledger.now_iso(self.tz),
                    }
                )
                .last_pk
            )
            ledger.log(self.db, self.tz, pk, "quarantined", {"reason": reason, "source": source})
        log.warning("quarantined %s: %s", source, reason)
        return Outcome("quarantined", pk, "quarantined", "none", reason)

    def _handle(self, mail: ParsedMail, source: str, given: dt.datetime | None) -> Outcome:
        received, received_from, notes = self._receipt_time(mail, given)
        history = LedgerHistory(self.db)
        duplicate = mail.message_id and ledger.message_by_message_id(self.db, mail.message_id)
        if duplicate:
            result = Classification(disposition="duplicate")
            notes.append(f"与第 {duplicate['id']} 封邮件的 Message-ID 相同，内容不同，只登记不处理")
        elif mail.from_address == self.from_address.lower() and mail.forwarded is None:
            result = Classification(disposition="own")
        else:
            result = self.classifier.classify(mail, received, history)
        notes.extend(mail.problems)

        folder = self.archive.folder_for(
            result.disposition, result.unit, result.item, result.period
        )
        eml_path = self.archive.store(folder, f"{_stamp(mail, received)}.eml", mail.raw)
        stored = self._store_files(mail, result, received)

        with self.db.atomic():
            pk = (
                self.db["messages"]
                .insert(
                    {
                        "message_id": mail.message_id,
                        "sha256": mail.sha256,
                        "received_at": received.isoformat(),
                        "received_from": received_from,
                        "sender": mail.from_address,
                        "sender_name": mail.from_name,
                        "subject": mail.subject,
                        **reading(result),
                        "machine_reading": ledger.dumps(reading(result)),
                        "notes": ledger.dumps(notes + result.notes),
                        "in_reply_to": mail.in_reply_to,
                        "archive_path": eml_path,
                        "source": source,
                        "ingested_at": ledger.now_iso(self.tz),
                    }
                )
                .last_pk
            )
            self._record_files(pk, mail, result, stored)
            if result.unit and result.item and result.period:
                self.record_receipt(pk, received, result)
            if result.reply != "none":
                self.queue_reply(pk, mail, result, received)
            ledger.log(
                self.db,
                self.tz,
                pk,
                "ingested",
                {"source": source, "disposition": result.disposition, "reply": result.reply},
            )
        log.info(
            "%s %s unit=%s item=%s period=%s status=%s reply=%s",
            source,
            result.disposition,
            result.unit,
            result.item,
            result.period,
            result.status,
            result.reply,
        )
        return Outcome("new", pk, result.disposition, result.reply)

    def _store_files(
        self, mail: ParsedMail, result: Classification, received: dt.datetime
    ) -> list[str]:
        """Archive each attachment beside the mail's folder; their archive paths, in order."""
        folder = self.archive.folder_for(
            result.disposition, result.unit, result.item, result.period
        )
        stamp = _stamp(mail, received)
        return [
            self.archive.store(folder / stamp, f"{index:02d}-{att.filename}", att.data)
            for index, att in enumerate(mail.attachments, 1)
        ]

    def _record_files(
        self, pk: int, mail: ParsedMail, result: Classification, stored: list[str]
    ) -> None:
        checks = {id(c.attachment): c for c in result.files}
        for att, path in zip(mail.attachments, stored, strict=True):
            check = checks.get(id(att))
            problems = list(att.problems)
            for finding in (check.error, check.note) if check else ():
                if finding and finding not in problems:
                    problems.append(finding)
            self.db["attachments"].insert(
                {
                    "message": pk,
                    "filename": att.filename,
                    "raw_filename": att.raw_filename.hex() if att.raw_filename else None,
                    "kind": att.kind,
                    "role": check.role if check else None,
                    "size": len(att.data),
                    "sha256": att.sha256,
                    "from_archive": att.from_archive,
                    "archive_path": path,
                    "problems": ledger.dumps(problems),
                }
            )

    def record_receipt(self, pk: int, received: dt.datetime, result: Classification) -> None:
        self.db["receipts"].insert(
            {
                "message": pk,
                "unit": result.unit,
                "item": result.item,
                "period": result.period,
                "version": result.version,
                "received_at": received.isoformat(),
                "on_time": int(bool(result.on_time)),
                "status": result.status,
                "complete": int(not result.problems),
                "problems": ledger.dumps(result.problems),
            }
        )
        table = result.table
        if table is not None and not table.bad_cells:
            approximate = {cell.column for cell in table.approximations}
            self.db["figures"].insert_all(
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
            )

    # -- reading a stored mail again (the office's booking, a replay) -----------------------

    def reread(
        self, row: dict, booking: Booking | None = None, history: History | None = None
    ) -> tuple[Classification, ParsedMail]:
        """A stored mail read again: current rules, the ledger as it stood before it, and the
        office's booking when there is one. A mail that still cannot be parsed raises
        ParseError, unless the office booked it: then the booking is all there is to read."""
        raw = (self.config.archive / row["archive_path"]).read_bytes()
        try:
            mail, readable = parse_message(raw), True
        except ParseError:
            if booking is None:
                raise
            mail, readable = unparsed(raw), False
        received = dt.datetime.fromisoformat(row["received_at"])
        history = history or LedgerHistory(self.db, before=received, exclude=row["id"])
        result = self.classifier.classify(mail, received, history, booking)
        if not readable:
            result.reply = "none"
            result.notes.append("原邮件无法解析：按办公室的登记入账，不回复")
        return result, mail

    def recover(self, row: dict, mail: ParsedMail, result: Classification) -> None:
        """A quarantined mail that reads now (a later mailproc, or the office's booking): its
        headers and files join the ledger as they would have on arrival (call in a
        transaction, before the new reading is written)."""
        if row["disposition"] != "quarantined":
            return
        fields = {
            "message_id": mail.message_id or row["message_id"],
            "sender": mail.from_address or row["sender"],
            "sender_name": mail.from_name or row["sender_name"],
            "subject": mail.subject or row["subject"],
            "in_reply_to": mail.in_reply_to,
            "notes": ledger.dumps(json.loads(row["notes"] or "[]") + result.notes),
        }
        if result.unit_source != "office":
            fields["machine_reading"] = ledger.dumps(reading(result))
        self.db["messages"].update(row["id"], fields)
        if not self.db["attachments"].count_where("message = ?", [row["id"]]):
            received = dt.datetime.fromisoformat(row["received_at"])
            self._record_files(row["id"], mail, result, self._store_files(mail, result, received))

    def apply_reading(self, row: dict, mail: ParsedMail, result: Classification) -> bool:
        """Put a new reading of a stored mail in the ledger (call inside a transaction):
        its receipt and figures follow, versions of the groups it leaves and joins are
        renumbered, and the reply the new reading owes is queued. True when one was queued."""
        pk = row["id"]
        self.recover(row, mail, result)
        groups = {
            (r["unit"], r["item"], r["period"])
            for r in self.db["receipts"].rows_where("message = ?", [pk])
        }
        self.db["receipts"].delete_where("message = ?", [pk])
        self.db["figures"].delete_where("message = ?", [pk])
        self.db["messages"].update(pk, reading(result))
        received = dt.datetime.fromisoformat(row["received_at"])
        if result.unit and result.item and result.period:
            result.version = -pk  # a place holder: settle() numbers the group by receipt time
            self.record_receipt(pk, received, result)
            groups.add((result.unit, result.item, result.period))
        for group in groups:
            self.settle(*group)
        settled = self.db["messages"].get(pk)
        result.version, result.status = settled["version"], settled["status"]
        return result.reply != "none" and self.queue_reply(pk, mail, result, received)

    def settle(self, unit: str, item_id: str, period: str) -> None:
        """Number a group's receipts by receipt time; the first decides on time or late,
        against the unit's deadline (an extension counts)."""
        item = self.rules.item(item_id)
        deadline = item.deadline_for(period) if item else None
        if deadline is None:
            return
        deadline = LedgerHistory(self.db).deadline(unit, item_id, period, deadline)
        rows = list(
            self.db.query(
                "select * from receipts where unit = ? and item = ? and period = ? "
                "order by received_at, id",
                [unit, item_id, period],
            )
        )
        for row in rows:  # step aside first: (unit, item, period, version) is unique
            self.db["receipts"].update(row["id"], {"version": -row["id"]})
            self.db.execute(
                "update figures set version = ? where message = ?", [-row["id"], row["message"]]
            )
        status = None
        for version, row in enumerate(rows, 1):
            on_time = dt.datetime.fromisoformat(row["received_at"]) <= deadline
            status = status or ("on_time" if on_time else "late")
            self.db["receipts"].update(
                row["id"], {"version": version, "on_time": int(on_time), "status": status}
            )
            self.db["messages"].update(row["message"], {"version": version, "status": status})
            self.db.execute(
                "update figures set version = ? where message = ?", [version, row["message"]]
            )

    def queue_reply(
        self, pk: int, mail: ParsedMail, result: Classification, received: dt.datetime
    ) -> bool:
        to = mail.reply_to or mail.from_address
        if not to:
            return False
        paper = (
            result.unit
            and result.item
            and ledger.active_decision(self.db, "paper", result.unit, result.item, result.period)
        )
        context = reply_context(
            self.rules,
            result,
            received=received,
            original_subject=mail.subject,
            paper_settled=bool(paper),
        )
        subject, body = self.renderer.render(result.reply, context)
        cause = reply_cause(mail.sha256, result)
        cc = (
            [self.from_address]
            if result.reply == "unrecognized" and self.config.office_copy
            else []
        )
        message = self.renderer.message(
            kind=result.reply,
            subject=subject,
            body=body,
            to=[to],
            cc=cc,
            message_id=outbox_message_id(cause, self.from_address),
            in_reply_to=mail.message_id,
            references=mail.references,
            now=dt.datetime.now(self.tz),
        )
        queued = queue(
            self.db,
            kind=result.reply,
            cause=cause,
            message=message,
            message_pk=pk,
            unit=result.unit,
            tz=self.tz,
        )
        return queued is not None

    # -- batches -------------------------------------------------------------------------

    def deliver(self, should_stop: Callable[[], bool] = lambda: False) -> Delivered:
        """Send what the outbox holds and is due."""
        retry = self.config.smtp.retry_minutes if self.config.smtp else 2
        return deliver(self.db, self.transport, self.tz, retry, should_stop)
