"""The whole decision for one mail: the gate, then unit, files, item, period, status and
problems, into one frozen `Classification`."""

import datetime as dt
from dataclasses import dataclass

from mailproc.classify.files import Files, OpenFile, open_here
from mailproc.classify.gate import Gate
from mailproc.classify.history import History
from mailproc.classify.periods import Periods
from mailproc.classify.problems import Problems
from mailproc.classify.units import Guess, UnitNames
from mailproc.labels import GATE_WORDS
from mailproc.read.text import own_words
from mailproc.rules import Item, Rules, Unit
from mailproc.values import Booking, Classification, FileCheck, Flag, GateReason, ParsedMail


@dataclass(frozen=True)
class Evidence:
    """What a mail offers to read its unit, item and week from: the subjects (tags and reply
    prefixes taken off), the bodies and the file names, its own and those of the mail it
    forwards; the unit its address is registered to; and the mail it answers, if any."""

    mail: ParsedMail
    subjects: list[str]
    bodies: list[str]
    names: str
    sender: Unit | None
    answered: dict | None


@dataclass(frozen=True)
class Timing:
    """A submission against its deadline: the period, the deadline (the unit's own, when the
    office extended it), the version and whether it decides on time or late."""

    deadline: dt.datetime
    unit_deadline: dt.datetime
    period: str
    version: int
    on_time: bool
    status: str
    earlier: list[dict]
    why: str | None


class Classifier:
    """Applies one set of rules; built once per run, since matching tables are precomputed."""

    def __init__(self, rules: Rules, authserv_id: str | None = None):
        """`authserv_id` names our receiving server in Authentication-Results (deployment
        config, not campaign rules); without it no such header is trusted."""
        self.rules = rules
        self.gate = Gate(rules, authserv_id)
        self.units = UnitNames(rules)
        self.periods = Periods(rules)
        self.files = Files(rules, self.units)
        self.problems = Problems(rules)

    def classify(
        self,
        mail: ParsedMail,
        received: dt.datetime,
        history: History,
        booking: Booking | None = None,
        open_file: OpenFile = open_here,
    ) -> Classification:
        """The mail's reading; with a `booking`, the office's unit, item (and period) stand.
        Files are opened with `open_file` (the pipeline's sandbox; by default, here)."""
        chain = mail.chain()
        sender = self.units.sender_unit(chain, history)
        gate = self.gate.reason(mail, history)
        if gate in {"own", "bounce"} or (gate == "bulk" and sender is None):
            return Classification(disposition=gate)
        seen = Evidence(
            mail=mail,
            subjects=[self.gate.strip_tags(m.subject) for m in chain],
            bodies=[m.body_text or m.body_html for m in chain],
            names=" ".join(a.filename for a in mail.attachments),
            sender=sender,
            answered=self.gate.answers_us(mail, history),
        )
        if booking is None and (
            gate == "auto_reply" or (seen.answered is not None and not mail.attachments)
        ):
            return self._nothing_to_book(seen, gate)

        files = self.files.check_files(mail.attachments, open_file)
        unit, source, guess = self._unit(seen, files, booking)
        notes, flags = self._unit_notes(seen, files, unit, booking)
        if guess:
            flags.append(guess.flag)
            notes.append(guess.flag.text)
        if gate is None and booking is None and any(flag.kind == "spoofed" for flag in flags):
            gate = "spoofed"  # a forged unit address gets no automatic reply: the office decides
        item = self._item(seen, files, received, booking)
        if unit is None or item is None:
            return self._unrecognized(seen, files, gate, unit, source, notes, flags)

        timing = None
        if not item.never_late:
            timing = self._timing(seen, item, unit, received, history, booking)
            if timing.why:
                notes.append(f"期次：{timing.why}")
            if item.periodic:
                number = item.period_at(timing.deadline).number
                self.files.read_period_sheets(files, item, number, unit)
        earlier = timing.earlier if timing else []
        correction = self.problems.correction(item, seen.subjects, seen.bodies, files, earlier)
        if correction:
            flags.append(correction)
            notes.append(correction.text)
        problems = self.problems.lacking(
            item, mail, files, seen.bodies, earlier, corrected=correction is not None
        )
        if gate is not None:
            notes.append(f"不回复：{GATE_WORDS[gate]}")
        return Classification(
            disposition="submission",
            unit=unit.name,
            unit_source=source,
            sender_unit=sender.name if sender else None,
            item=item.id,
            period=timing.period if timing else None,
            status=timing.status if timing else None,
            version=timing.version if timing else None,
            on_time=timing.on_time if timing else None,
            reply="none" if gate is not None else "missing" if problems else "ack",
            problems=tuple(problems),
            notes=tuple(notes),
            flags=tuple(flags),
            files=tuple(files),
            table=self.files.own_table(files, unit),
            deadline=timing.deadline if timing else None,
            unit_deadline=timing.unit_deadline if timing else None,
        )

    def _nothing_to_book(self, seen: Evidence, gate: GateReason | None) -> Classification:
        """An auto-reply, or an answer to one of our messages that brings no file: logged for
        the unit it names, never booked."""
        unit = self.units.unit_in(" ".join(seen.subjects)) or seen.sender
        spoofed = self.gate.spoofed(seen.mail)
        return Classification(
            disposition="auto_reply" if gate == "auto_reply" else "answer_to_us",
            sender_unit=seen.sender.name if seen.sender else None,
            unit=unit.name if unit else None,
            unit_source="subject" if unit and unit is not seen.sender else "address",
            notes=(spoofed.text,) if spoofed else (),
            flags=(spoofed,) if spoofed else (),
        )

    def _unit(
        self, seen: Evidence, files: list[FileCheck], booking: Booking | None
    ) -> tuple[Unit | None, str | None, Guess | None]:
        """The unit and where it was named: the office's booking, the mail itself, the notice
        it answers, or — last — a name written with one character wrong (a guess to confirm)."""
        if booking is not None:
            return self.rules.unit(booking.unit), "office", None
        unit, source = self.units.find(
            seen.subjects, seen.mail.attachments, files, seen.sender, seen.bodies
        )
        if unit is None and seen.answered:
            return self.rules.unit(seen.answered.get("unit") or ""), "answered", None
        if unit is None:
            reporters = [c.table.reporter for c in files if c.table and c.table.reporter]
            names = [att.filename for att in seen.mail.attachments]
            bodies = [own_words(body) for body in seen.bodies]
            guess = self.units.guess([*seen.subjects, *names, *reporters, *bodies])
            if guess:
                return guess.unit, "guess", guess
        return unit, source, None

    def _unit_notes(
        self, seen: Evidence, files: list[FileCheck], unit: Unit | None, booking: Booking | None
    ) -> tuple[list[str], list[Flag]]:
        """What the office should know about the unit: a unit address that may be forged, 代报,
        the unit's own row among others in 附件1, a 附件1 filled in by another unit
        (填报单位不符)."""
        notes: list[str] = []
        flags: list[Flag] = []
        spoofed = self.gate.spoofed(seen.mail)
        if spoofed:
            flags.append(spoofed)
            notes.append(spoofed.text)
        sender, address = seen.sender, seen.mail.from_address
        if unit and sender is None and address and booking is None:
            flags.append(
                Flag(
                    "unregistered",
                    f"未登记地址：{address} 不是任何单位的登记邮箱，已记入{unit.name}",
                )
            )
            notes.append(flags[-1].text)
        if unit and sender and unit is not sender:
            flags.append(Flag("on_behalf", f"代报：{sender.name} 的邮箱为 {unit.name} 报送"))
            notes.append(flags[-1].text)
        if unit:
            notes.extend(self.files.read_own_rows(files, unit))
        for check in files:
            reporter = check.table.reporter if check.table else None
            reporter_unit = self.units.unit_in(reporter) if reporter else None
            if unit and reporter_unit and reporter_unit is not unit:
                text = f"填报单位不符：{check.attachment.filename} 写的是 {reporter}"
                flags.append(Flag("reporter_mismatch", text))
                notes.append(text)
        return notes, flags

    def _item(
        self,
        seen: Evidence,
        files: list[FileCheck],
        received: dt.datetime,
        booking: Booking | None,
    ) -> Item | None:
        if booking is not None:
            return self.rules.item(booking.item)
        item = self.periods.find_item(seen.subjects, seen.names, seen.bodies, files, received)
        if item is None and seen.answered:
            return self.rules.item(seen.answered.get("item") or "")
        return item

    def _unrecognized(
        self,
        seen: Evidence,
        files: list[FileCheck],
        gate: GateReason | None,
        unit: Unit | None,
        source: str | None,
        notes: list[str],
        flags: list[Flag],
    ) -> Classification:
        """A mail whose unit or item is unknown: 无法识别 when it looks like a submission (and
        may be answered), else unrelated."""
        looks = self.problems.looks_like_submission(seen.subjects, seen.names, seen.bodies, files)
        if looks:
            notes.append("无法确定报送单位" if unit is None else "无法确定报送内容")
        reply = "unrecognized" if looks and gate is None else "none"
        if seen.answered is not None and unit is None and reply != "none":
            # someone answering our notice (a supervisor on a 逾期通报) is no unit to correct
            reply = "none"
            notes.append("不回复：回复本系统邮件，单位不明，请办公室查看")
        return Classification(
            disposition="unrecognized" if looks else "unrelated",
            unit=unit.name if unit else None,
            unit_source=source if unit else None,
            sender_unit=seen.sender.name if seen.sender else None,
            reply=reply,
            notes=tuple(notes),
            flags=tuple(flags),
            files=tuple(files),
        )

    def _timing(
        self,
        seen: Evidence,
        item: Item,
        unit: Unit,
        received: dt.datetime,
        history: History,
        booking: Booking | None,
    ) -> Timing:
        """The deadline the mail counts against (the office's, a named week, or by timing),
        its version, and on time or late: the first version decides, later ones keep it."""
        booked = booking and booking.period and item.deadline_for(booking.period)
        if booked:
            deadline, why = booked, "办公室指定"
        else:
            deadline, why = self.periods.deadline(
                item,
                unit,
                seen.subjects,
                seen.names,
                seen.bodies,
                received,
                history,
                seen.answered,
            )
        period = item.period_of(deadline)
        earlier = history.receipts(unit.name, item.id, period)
        unit_deadline = history.deadline(unit.name, item.id, period, deadline)
        on_time = received <= unit_deadline
        return Timing(
            deadline=deadline,
            unit_deadline=unit_deadline,
            period=period,
            version=len(earlier) + 1,
            on_time=on_time,
            status=earlier[0]["status"] if earlier else "on_time" if on_time else "late",
            earlier=earlier,
            why=why,
        )
