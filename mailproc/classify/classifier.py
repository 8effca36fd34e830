"""The whole decision for one mail: the gate, then unit, files, item, period, status and
problems, into one frozen `Classification`."""

import datetime as dt

from mailproc.classify.files import Files
from mailproc.classify.gate import Gate
from mailproc.classify.history import History
from mailproc.classify.periods import Periods
from mailproc.classify.problems import Problems
from mailproc.classify.units import UnitNames
from mailproc.rules import Rules
from mailproc.values import Booking, Classification, Flag, ParsedMail


class Classifier:
    """Applies one set of rules; built once per run, since matching tables are precomputed."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.gate = Gate(rules)
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
    ) -> Classification:
        """The mail's reading; with a `booking`, the office's unit, item (and period) stand."""
        chain = mail.chain()
        sender = self.units.sender_unit(chain)
        sender_name = sender.name if sender else None
        gate = self.gate.reason(mail, history)
        if gate in {"own", "bounce"}:
            return Classification(disposition=gate)
        if gate == "bulk" and sender is None:
            return Classification(disposition="bulk")

        subjects = [self.gate.strip_tags(m.subject) for m in chain]
        bodies = [m.body_text or m.body_html for m in chain]
        names = " ".join(a.filename for a in mail.attachments)
        answered = self.gate.answers_us(mail, history)
        if booking is None and (
            gate == "auto_reply" or (answered is not None and not mail.attachments)
        ):
            unit = self.units.unit_in(" ".join(subjects)) or sender
            return Classification(
                disposition="auto_reply" if gate == "auto_reply" else "answer_to_us",
                sender_unit=sender_name,
                unit=unit.name if unit else None,
                unit_source="subject" if unit and unit is not sender else "address",
            )

        files = self.files.check_files(mail.attachments)
        notes: list[str] = []
        flags: list[Flag] = []
        unit, source = self.units.find(subjects, mail.attachments, files, sender, bodies)
        if booking is not None:
            unit, source = self.rules.unit(booking.unit), "office"
        if unit is None and answered:
            unit, source = self.rules.unit(answered.get("unit") or ""), "answered"
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

        item = self.periods.find_item(subjects, names, bodies, files, received)
        if booking is not None:
            item = self.rules.item(booking.item)
        if item is None and answered:
            item = self.rules.item(answered.get("item") or "")
        if unit is None or item is None:
            looks_like_submission = self.problems.looks_like_submission(
                subjects, names, bodies, files
            )
            if looks_like_submission:
                notes.append("无法确定报送单位" if unit is None else "无法确定报送内容")
            reply = "unrecognized" if looks_like_submission and gate is None else "none"
            if answered is not None and unit is None and reply != "none":
                # someone answering our notice (a supervisor on a 逾期通报) is no unit to correct
                reply = "none"
                notes.append("不回复：回复本系统邮件，单位不明，请办公室查看")
            return Classification(
                disposition="unrecognized" if looks_like_submission else "unrelated",
                unit=unit.name if unit else None,
                unit_source=source if unit else None,
                sender_unit=sender_name,
                reply=reply,
                notes=tuple(notes),
                flags=tuple(flags),
                files=tuple(files),
            )

        earlier: list[dict] = []
        deadline = unit_deadline = period = version = on_time = status = None
        if not item.never_late:
            booked = booking and booking.period and item.deadline_for(booking.period)
            if booked:
                deadline, why = booked, "办公室指定"
            else:
                deadline, why = self.periods.deadline(
                    item, unit, subjects, names, bodies, received, history, answered
                )
            period = item.period_of(deadline)
            if why:
                notes.append(f"周次：{why}")
            if item.weekly:
                self.files.read_week_sheets(files, item.deadlines.index(deadline) + 1, unit)
            earlier = history.receipts(unit.name, item.id, period)
            version = len(earlier) + 1
            unit_deadline = history.deadline(unit.name, item.id, period, deadline)
            on_time = received <= unit_deadline
            # the first version decides: a later one keeps its status
            status = earlier[0]["status"] if earlier else "on_time" if on_time else "late"

        problems = self.problems.lacking(item, mail, files, bodies, earlier)
        if gate is not None:
            notes.append(f"不回复：{gate}")
        return Classification(
            disposition="submission",
            unit=unit.name,
            unit_source=source,
            sender_unit=sender_name,
            item=item.id,
            period=period,
            status=status,
            version=version,
            on_time=on_time,
            reply="none" if gate is not None else "missing" if problems else "ack",
            problems=tuple(problems),
            notes=tuple(notes),
            flags=tuple(flags),
            files=tuple(files),
            table=self.files.own_table(files, unit),
            deadline=deadline,
            unit_deadline=unit_deadline,
        )
