"""The pipeline: fetch → parse → classify → ledger → reply, for one mail at a time.

`Pipeline.ingest` takes the raw bytes of one mail and leaves the ledger, the archive and the
outbox consistent, whatever the mail holds: a mail it cannot read is quarantined with its
reason, never dropped, and never stops the run. Sources (files here, IMAP later) only hand
it bytes and, when they know it, the server's receipt time.
"""

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator

import sqlite_utils

from mailproc import ledger
from mailproc.app import App
from mailproc.classify import Classifier, History
from mailproc.classify.files import OpenFile
from mailproc.labels import DISPOSITION_WORDS, REPLY_WORDS, STATE_WORDS, in_chinese
from mailproc.ledger import write
from mailproc.outgoing.render import outbox_message_id, reply_context
from mailproc.read.mail import ParseError, unparsed, without_trace
from mailproc.values import Booking, Classification, Flag, Outcome, ParsedMail

log = logging.getLogger("mailproc")

# A mail taken in hand this many times without being recorded (the process died reading it) is
# not read again: it is set aside for the office.
POISON_AFTER = 2
# Automatic replies one address gets for the mail of one day, at most (domain.md)
REPLIES_PER_DAY = 3
POISONED = "处理时进程异常退出（已两次），不再读取，请办公室查看原邮件"


def _stamp(mail: ParsedMail, received: dt.datetime) -> str:
    return f"{received:%Y%m%d-%H%M%S}-{mail.sha256[:12]}"


class LedgerHistory:
    """The classifier's view of the ledger (see classify.History), optionally as it stood just
    before a moment (when a mail is read again, later mail must not count as earlier)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        before: dt.datetime | None = None,
        exclude: int | None = None,
    ):
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
        return ledger.unit_deadline(self.db, unit, item, period, deadline)

    def answered_by_us(self, message_ids: Iterable[str]) -> dict | None:
        """The mail our message answered; for a 催报提醒 or 逾期通知 (which answered no mail),
        the unit, item and period it was about."""
        for message_id in message_ids:
            row = ledger.outbox_row_by_message_id(self.db, message_id)
            if row and row["message"]:
                return self.db["messages"].get(row["message"])
            if row and row["kind"] in {"reminder", "overdue"}:
                return {"unit": row["unit"], "item": row["item"], "period": row["period"]}
        return None

    def is_ours(self, message_ids: Iterable[str]) -> bool:
        return any(ledger.outbox_row_by_message_id(self.db, m) for m in message_ids)

    def registered_unit(self, address: str) -> str | None:
        return ledger.registered_unit(self.db, address)


def reply_cause(sha256: str, result: Classification) -> str:
    """One reply per mail and reading: the same reading never answers twice, a new reading
    (the office's booking, a replay under new rules) may owe a new reply."""
    return f"reply:{sha256}:{result.reply}:{result.unit}:{result.item}:{result.period}"


class Pipeline:
    """Reads mail into the ledger: one mail as it arrives (`ingest`), or a stored mail again
    (`reread` and `apply_reading`, for the office's booking and a replay)."""

    def __init__(self, app: App):
        self.app = app
        self.db, self.rules, self.tz = app.db, app.rules, app.tz
        mailbox = app.config.mailbox
        self.classifier = Classifier(app.rules, mailbox.authserv_id if mailbox else None)
        self.sandbox = app.sandbox

    # -- one mail --------------------------------------------------------------------

    def ingest(self, raw: bytes, source: str, received_at: dt.datetime | None = None) -> Outcome:
        """Handle one mail completely; the same bytes a second time change nothing."""
        sha256 = hashlib.sha256(raw).hexdigest()
        known = ledger.find_message(self.db, sha256)
        if known:
            return Outcome("known", known["id"], known["disposition"], known["reply"])
        if write.take_in_hand(self.db, self.tz, sha256, source) > POISON_AFTER:
            return self._quarantine(raw, sha256, source, received_at, POISONED)
        reading = self.sandbox.mail()
        try:
            mail = reading.parse(raw)
        except ParseError as exc:
            why = in_chinese(str(exc), "内容不是可以读取的邮件")
            return self._quarantine(raw, sha256, source, received_at, f"无法解析：{why}")
        mail.sha256 = sha256  # hashed once: the cached property is given the digest above
        try:
            return self._handle(mail, source, received_at, reading.open_file)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # a bug (or a library's panic) costs one mail, not the run
            log.exception("处理 %s 时出现内部错误", source)
            why = "处理时出现内部错误（详情见日志），请办公室查看原邮件"
            return self._quarantine(raw, sha256, source, received_at, why, mail)

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
        archive = self.app.archive
        path = archive.store(
            archive.folder_for("quarantined", None, None, None),
            f"{received:%Y%m%d-%H%M%S}-{sha256[:12]}.eml",
            raw,
        )
        with self.db.atomic():
            pk = write.record_message(
                self.db,
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
                },
            )
            write.log(self.db, self.tz, pk, "quarantined", {"reason": reason, "source": source})
            write.out_of_hand(self.db, sha256)
        log.warning("%s 已隔离：%s", source, reason)
        return Outcome("quarantined", pk, "quarantined", "none", reason)

    def _handle(
        self, mail: ParsedMail, source: str, given: dt.datetime | None, open_file: OpenFile
    ) -> Outcome:
        received, received_from, notes = self._receipt_time(mail, given)
        history = LedgerHistory(self.db)
        same_id = mail.message_id and ledger.message_by_message_id(self.db, mail.message_id)
        if same_id and self._same_content(same_id, mail.raw):
            result = Classification(disposition="duplicate")
            notes.append(f"与第 {same_id['id']} 封邮件相同（仅传递路径不同），只登记不处理")
        elif mail.from_address == self.app.from_address.lower() and mail.forwarded is None:
            result = Classification(disposition="own")
        else:
            result = self.classifier.classify(mail, received, history, open_file=open_file)
            if same_id:
                clash = Flag(
                    "message_id_clash",
                    f"Message-ID 与第 {same_id['id']} 封邮件相同，内容不同：请核对哪一封是真实报送",
                )
                result = dataclasses.replace(
                    result, flags=(*result.flags, clash), notes=(*result.notes, clash.text)
                )
            result = self._hold_past_the_days_replies(mail, result, received)
        notes.extend(mail.problems)

        archive = self.app.archive
        folder = archive.folder_for(result.disposition, result.unit, result.item, result.period)
        eml_path = archive.store(folder, f"{_stamp(mail, received)}.eml", mail.raw)
        stored = self._store_files(mail, result, received)

        with self.db.atomic():
            pk = write.record_message(
                self.db,
                {
                    "message_id": mail.message_id,
                    "sha256": mail.sha256,
                    "received_at": received.isoformat(),
                    "received_from": received_from,
                    "sender": mail.from_address,
                    "sender_name": mail.from_name,
                    "subject": mail.subject,
                    **write.reading(result),
                    "machine_reading": ledger.dumps(write.reading(result)),
                    "notes": ledger.dumps([*notes, *result.notes]),
                    "in_reply_to": mail.in_reply_to,
                    "archive_path": eml_path,
                    "source": source,
                    "ingested_at": ledger.now_iso(self.tz),
                },
            )
            write.record_attachments(self.db, _attachment_rows(pk, mail, result, stored))
            if result.unit and result.item and result.period:
                write.record_receipt(self.db, pk, received, result)
            if result.reply != "none":
                self.queue_reply(pk, mail, result, received)
            write.out_of_hand(self.db, mail.sha256)
            write.log(
                self.db,
                self.tz,
                pk,
                "ingested",
                {"source": source, "disposition": result.disposition, "reply": result.reply},
            )
        log.info(
            "%s：%s，单位 %s，事项 %s，期次 %s，状态 %s，回复 %s",
            source,
            DISPOSITION_WORDS[result.disposition],
            result.unit or "—",
            result.item or "—",
            result.period or "—",
            STATE_WORDS.get(result.status or "", "—"),
            REPLY_WORDS[result.reply],
        )
        return Outcome("new", pk, result.disposition, result.reply)

    def _same_content(self, earlier: dict, raw: bytes) -> bool:
        """Whether a mail with an earlier mail's Message-ID is that mail again, come by another
        route: the same bytes but for the trace headers the route adds."""
        try:
            before = (self.app.config.archive / earlier["archive_path"]).read_bytes()
        except (OSError, TypeError):
            return False
        return without_trace(before) == without_trace(raw)

    def _store_files(
        self, mail: ParsedMail, result: Classification, received: dt.datetime
    ) -> list[str | None]:
        """Archive each attachment beside the mail's folder, while the mail's archive budget
        lasts (the original .eml, which holds every file, is always kept); their archive
        paths in order, None for a file left inside the original only."""
        archive = self.app.archive
        folder = archive.folder_for(result.disposition, result.unit, result.item, result.period)
        stamp = _stamp(mail, received)
        left = self.app.config.limits.archive_bytes - len(mail.raw)
        paths: list[str | None] = []
        for index, att in enumerate(mail.attachments, 1):
            left -= len(att.data)
            if left < 0:
                paths.append(None)
                continue
            paths.append(archive.store(folder / stamp, f"{index:02d}-{att.filename}", att.data))
        return paths

    # -- reading a stored mail again (the office's booking, a replay) -----------------------

    def reread(
        self, row: dict, booking: Booking | None = None, history: History | None = None
    ) -> tuple[Classification, ParsedMail]:
        """A stored mail read again: current rules, the ledger as it stood before it, and the
        office's booking when there is one. A mail that still cannot be parsed raises
        ParseError, unless the office booked it: then the booking is all there is to read."""
        raw = (self.app.config.archive / row["archive_path"]).read_bytes()
        reading = self.sandbox.mail()
        try:
            mail, readable = reading.parse(raw), True
        except ParseError:
            if booking is None:
                raise
            mail, readable = unparsed(raw), False
        received = dt.datetime.fromisoformat(row["received_at"])
        history = history or LedgerHistory(self.db, before=received, exclude=row["id"])
        result = self.classifier.classify(mail, received, history, booking, reading.open_file)
        if not readable:
            result = dataclasses.replace(
                result,
                reply="none",
                notes=(*result.notes, "原邮件无法解析：按办公室的登记入账，不回复"),
            )
        return result, mail

    def _recover(self, row: dict, mail: ParsedMail, result: Classification) -> None:
        """A quarantined mail that reads now (a later mailproc, or the office's booking): its
        headers and files join the ledger as they would have on arrival."""
        if row["disposition"] != "quarantined":
            return
        fields = {
            "message_id": mail.message_id or row["message_id"],
            "sender": mail.from_address or row["sender"],
            "sender_name": mail.from_name or row["sender_name"],
            "subject": mail.subject or row["subject"],
            "in_reply_to": mail.in_reply_to,
            "notes": ledger.dumps([*json.loads(row["notes"] or "[]"), *result.notes]),
        }
        if result.unit_source != "office":
            fields["machine_reading"] = ledger.dumps(write.reading(result))
        write.recover_message(self.db, row["id"], fields)
        if not self.db["attachments"].count_where("message = ?", [row["id"]]):
            received = dt.datetime.fromisoformat(row["received_at"])
            stored = self._store_files(mail, result, received)
            write.record_attachments(self.db, _attachment_rows(row["id"], mail, result, stored))

    def apply_reading(self, row: dict, mail: ParsedMail, result: Classification) -> bool:
        """Put a new reading of a stored mail in the ledger (call inside a transaction): a
        quarantined mail's headers and files are recovered, its receipt and figures follow,
        its group is settled, and the reply the new reading owes is queued. True when one was
        queued."""
        self._recover(row, mail, result)
        received = dt.datetime.fromisoformat(row["received_at"])
        version, status = write.apply_reading(self.db, self.rules, row["id"], received, result)
        settled = dataclasses.replace(result, version=version, status=status)
        return settled.reply != "none" and self.queue_reply(row["id"], mail, settled, received)

    def reply_address(self, mail: ParsedMail) -> str | None:
        """Where a reply goes: `From`. A `Reply-To` only when it is a unit's address (in the
        rules or registered by the office) or in `From`'s domain: anything else would let a
        stranger send the office's replies to whomever they name."""
        reply_to, sender = mail.reply_to, mail.from_address
        if reply_to and reply_to != sender:
            same_domain = sender and reply_to.rpartition("@")[2] == sender.rpartition("@")[2]
            known = self.rules.unit_by_address(reply_to) or ledger.registered_unit(
                self.db, reply_to
            )
            if same_domain or known:
                return reply_to
        return sender or None

    def _hold_past_the_days_replies(
        self, mail: ParsedMail, result: Classification, received: dt.datetime
    ) -> Classification:
        """No address gets more than REPLIES_PER_DAY automatic replies for the mail of one
        day: the rest wait for the office (`mailproc confirm` sends one)."""
        to = self.reply_address(mail) if result.reply != "none" else None
        if not to or ledger.replies_for_day(self.db, to, received) < REPLIES_PER_DAY:
            return result
        held = Flag(
            "reply_held",
            f"今天已向 {to} 自动回复 {REPLIES_PER_DAY} 封，本封邮件的回复留待办公室处理",
        )
        return dataclasses.replace(
            result, reply="none", flags=(*result.flags, held), notes=(*result.notes, held.text)
        )

    def queue_reply(
        self, pk: int, mail: ParsedMail, result: Classification, received: dt.datetime
    ) -> bool:
        to = self.reply_address(mail)
        if not to:
            return False
        paper = (
            result.unit
            and result.item
            and ledger.active_decision(self.db, "paper", result.unit, result.item, result.period)
        )
        first = (
            ledger.receipts_for(self.db, result.unit, result.item, result.period)
            if result.version and result.version > 1
            else []
        )
        context = reply_context(
            self.rules,
            result,
            received=received,
            paper_settled=bool(paper),
            first_received=dt.datetime.fromisoformat(first[0]["received_at"]) if first else None,
        )
        renderer, from_address = self.app.renderer, self.app.from_address
        subject, body = renderer.render(result.reply, context)
        cause = reply_cause(mail.sha256, result)
        cc = (
            [from_address] if result.reply == "unrecognized" and self.app.config.office_copy else []
        )
        message = renderer.message(
            kind=result.reply,
            subject=subject,
            body=body,
            to=[to],
            cc=cc,
            message_id=outbox_message_id(cause, from_address),
            in_reply_to=mail.message_id,
            references=mail.references,
            now=dt.datetime.now(self.tz),
        )
        queued = write.queue(
            self.db,
            kind=result.reply,
            cause=cause,
            message=message,
            message_pk=pk,
            unit=result.unit,
            tz=self.tz,
        )
        return queued is not None


NOT_STORED = "文件较大，未单独存档（原邮件中有此文件）"


def _attachment_rows(
    pk: int, mail: ParsedMail, result: Classification, stored: list[str | None]
) -> Iterator[dict]:
    """The ledger rows of a mail's files: what parsing and checking found in each."""
    checks = {id(c.attachment): c for c in result.files}
    for att, path in zip(mail.attachments, stored, strict=True):
        check = checks.get(id(att))
        problems = list(att.problems)
        for finding in (check.error, check.note) if check else ():
            if finding and finding not in problems:
                problems.append(finding)
        if path is None:
            problems.append(NOT_STORED)
        yield {
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
