"""Jobs: what mailproc does on its own — remind, warn, alert, digest, assess — each exactly once.

The schedule is computed from rules/ (deadlines) and rules/jobs.toml (when each job runs). A
tick at a moment runs every job due by then that has not run, reading the ledger *as of* that
moment: mail received later does not exist yet for it. Each job and each message it queues is
keyed by its cause, so ticking twice, or after a restart, sends nothing twice. After downtime a
missed digest still goes out (saying it is late); a reminder whose deadline has passed is
dropped.
"""

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass
from itertools import groupby
from typing import Literal

import sqlite_utils

from mailproc import ledger
from mailproc.app import App
from mailproc.labels import JOB_OUTCOME_WORDS, KIND_WORDS
from mailproc.ledger import write
from mailproc.outgoing.render import deadline_text, long_time, outbox_message_id, short_time
from mailproc.reports.assess import STATE_TEXT, assess, first_ten, write_assessment
from mailproc.reports.status import decisions_in_force, paper_owed, paper_owed_lines, status_matrix
from mailproc.reports.workbook import write_workbook
from mailproc.rules import CALENDAR_FILE, Item, Rules, Unit

log = logging.getLogger("mailproc.jobs")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Jobs about a deadline run from the first second after it: at the deadline itself mail is
# still on time, and nobody is missing yet.
AFTER = dt.timedelta(seconds=1)


JobKind = Literal["reminder", "overdue", "alert", "digest", "assessment"]


@dataclass(frozen=True)
class Job:
    kind: JobKind
    due: dt.datetime
    item: Item | None = None
    deadline: dt.datetime | None = None
    unit: str | None = None  # a job for one unit only: its notice and alert after an extension
    extended_to: dt.datetime | None = None  # that unit's own deadline

    @property
    def period(self) -> str | None:
        return self.item.period_of(self.deadline) if self.item and self.deadline else None

    @property
    def key(self) -> str:
        key = f"{self.kind}:{self.item.id}:{self.period}" if self.item else self.kind
        return f"{key}:{self.unit}" if self.unit else key


def planned_jobs(rules: Rules) -> list[Job]:
    """Every job of the campaign with the moment it is due, in time order."""
    settings, tz = rules.jobs, rules.timezone
    jobs = []
    for item, deadline in rules.deadlines():
        day = rules.reminder_day(deadline)
        jobs.append(
            Job("reminder", dt.datetime.combine(day, settings.reminder_at, tz), item, deadline)
        )
        after = deadline + AFTER
        jobs.append(Job("overdue", after + settings.overdue_grace, item, deadline))
        jobs.append(Job("alert", after + settings.alert_grace, item, deadline))
        if item.id in settings.digest_items:
            jobs.append(Job("digest", after + settings.digest_grace, item, deadline))
    last = max(deadline for _, deadline in rules.deadlines())
    jobs.append(Job("assessment", last + AFTER + settings.assessment_grace))
    return sorted(jobs, key=lambda job: (job.due, job.kind))


def extension_jobs(db: sqlite_utils.Database, rules: Rules) -> list[Job]:
    """An overdue notice and a supervisors' alert at each extended deadline, for the one unit
    it was extended for (the alert only if that unit is then still missing or late)."""
    jobs = []
    for row in db["decisions"].rows_where("kind = 'extend' and undone_at is null"):
        item = rules.item(row["item"])
        deadline = item.deadline_for(row["period"]) if item else None
        if deadline is None:
            continue
        extended = dt.datetime.fromisoformat(json.loads(row["value"])["deadline"])
        graces = {"overdue": rules.jobs.overdue_grace, "alert": rules.jobs.alert_grace}
        for kind, grace in graces.items():
            jobs.append(Job(kind, extended + AFTER + grace, item, deadline, row["unit"], extended))
    return jobs


def scheduled_jobs(db: sqlite_utils.Database, rules: Rules) -> list[Job]:
    """The campaign's jobs and those of the office's extensions, in time order; the assessment
    waits for the last extended deadline, so no unit is scored before its deadline."""
    extra = extension_jobs(db, rules)
    latest = max((job.extended_to for job in extra if job.extended_to), default=None)
    jobs = []
    for job in planned_jobs(rules):
        waited = latest + AFTER + rules.jobs.assessment_grace if latest else job.due
        if job.kind == "assessment" and waited > job.due:
            job = dataclasses.replace(job, due=waited)
        jobs.append(job)
    return sorted(jobs + extra, key=lambda job: (job.due, job.kind))


def period_label(item: Item, deadline: dt.datetime) -> str:
    """第3周，6月20日 or 6月20日: the period by its own name and date (rules' period_name)."""
    return item.period_at(deadline).titled()


class Ticker:
    """Runs due jobs on one ledger, with its rules, renderer and recipients."""

    def __init__(self, app: App):
        self.db, self.rules, self.tz = app.db, app.rules, app.tz
        self.renderer, self.from_address = app.renderer, app.from_address
        self.config = app.config
        self.office = list(self.config.office) or [self.rules.office["address"]]

    def tick(self, now: dt.datetime) -> list[dict]:
        """Run every job due at `now` that has not run; returns what each did."""
        done = []
        jobs = scheduled_jobs(self.db, self.rules)
        for job in jobs:
            if job.due > now:
                break
            if self.db["jobs_run"].count_where("key = ?", [job.key]):
                continue
            with self.db.atomic():
                outcome = self._run(job, now)
                write.record_job_run(
                    self.db,
                    {
                        "key": job.key,
                        "kind": job.kind,
                        "item": job.item.id if job.item else None,
                        "period": job.period,
                        "due_at": job.due.isoformat(),
                        "ran_at": now.isoformat(),
                        "outcome": outcome["outcome"],
                        "detail": ledger.dumps(outcome),
                    },
                )
            word = JOB_OUTCOME_WORDS.get(outcome["outcome"], outcome["outcome"])
            log.info("定时任务 %s：%s", job.key, word)
            done.append(
                {
                    "job": job.key,
                    "kind": job.kind,
                    "item": job.item.id if job.item else None,
                    "period": job.period,
                    **outcome,
                }
            )
        return done

    # -- the ledger as of a moment ----------------------------------------------------------

    def received_units(self, job: Job, now: dt.datetime) -> dict[str, dict]:
        """Each unit's first receipt for the job's deadline, among mail received by `now`."""
        rows = self.db.query(
            "select * from receipts where item = ? and period = ? order by version",
            [job.item.id, job.period],
        )
        first: dict[str, dict] = {}
        for row in rows:
            if ledger.received_by(row, now):
                first.setdefault(row["unit"], row)
        return first

    def _owing(self, job: Job, now: dt.datetime, state: str) -> list[Unit]:
        """Units whose cell for the job's deadline is in `state` at `now`: `not_due` before the
        deadline (nothing received yet), `missing` after it. Excused units are in neither, and an
        extended deadline counts."""
        matrix = status_matrix(self.db, self.rules, now)
        return [
            unit
            for unit in self.rules.units
            if matrix.cell(unit.name, job.item.id, job.period).state == state
        ]

    # -- sending -------------------------------------------------------------------------

    def _queue(
        self,
        kind: str,
        cause: str,
        to: list[str],
        context: dict,
        now: dt.datetime,
        unit: str | None = None,
        html: str | None = None,
        attachments: tuple = (),
        job: Job | None = None,
    ) -> bool:
        """Queue one message; `job` when it is a notice to a unit about the job's deadline."""
        subject, body = self.renderer.render(kind, context)
        message = self.renderer.message(
            kind=kind,
            subject=subject,
            body=body,
            to=to,
            cc=[],
            message_id=outbox_message_id(cause, self.from_address),
            in_reply_to=None,
            references=[],
            now=now,
            html=html,
            attachments=attachments,
        )
        return (
            write.queue(
                self.db,
                kind=kind,
                cause=cause,
                message=message,
                message_pk=None,
                unit=unit,
                tz=self.tz,
                item=job.item.id if job else None,
                period=job.period if job else None,
            )
            is not None
        )

    def _base(self, job: Job, now: dt.datetime) -> dict:
        deadline = job.extended_to or job.deadline
        return {
            "item": job.item,
            "deadline_long": deadline_text(deadline) if deadline else "",
            "campaign_deadline_long": deadline_text(job.deadline) if job.deadline else "",
            "extended_unit": job.unit if job.extended_to else None,
            "period_label": period_label(job.item, job.deadline) if job.item else "",
            "period_name": job.item.period_at(job.deadline).name
            if job.item and job.deadline
            else "",
            "now_long": long_time(now),
        }

    # -- the jobs --------------------------------------------------------------------------

    def _run(self, job: Job, now: dt.datetime) -> dict:
        if job.kind == "reminder" and now > job.deadline:
            return {"outcome": "dropped", "reason": "提醒未及在截止时间前发出"}
        if now - job.due > self.rules.jobs.drop_after:
            hours = (now - job.due) // dt.timedelta(hours=1)
            return {"outcome": "dropped", "reason": f"已过应发时间 {hours} 小时，发出已无意义"}
        return getattr(self, f"_{job.kind}")(job, now)

    def _reminder(self, job: Job, now: dt.datetime) -> dict:
        return self._to_units(job, now, "reminder", self._owing(job, now, "not_due"))

    def _overdue(self, job: Job, now: dt.datetime) -> dict:
        return self._to_units(
            job, now, "overdue", self._for_job(job, self._owing(job, now, "missing"))
        )

    def _for_job(self, job: Job, units: list[Unit]) -> list[Unit]:
        """The job's unit alone for an extension's job; else all but the extended units."""
        if job.unit:
            return [unit for unit in units if unit.name == job.unit]
        decided = ledger.deadline_decisions(self.db)
        return [u for u in units if ("extend", u.name, job.item.id, job.period) not in decided]

    def notify(
        self, job: Job, now: dt.datetime, kind: str, units: list[Unit], cause: str
    ) -> list[str]:
        """Queue `kind` (reminder or overdue) to `units` now, outside the schedule; the units
        queued (a unit already sent this cause today is not)."""
        return self._to_units(job, now, kind, units, cause)["units"]

    def _to_units(
        self, job: Job, now: dt.datetime, kind: str, units: list[Unit], cause: str | None = None
    ) -> dict:
        """A notice of `kind` to each unit about the job's deadline; `cause` (the office's
        催报 names its day) joins the unit's name in the message's cause instead of the job."""
        sent = []
        for unit in units:
            if not unit.addresses:
                log.warning("%s 没有登记邮箱，未能发送%s", unit.name, KIND_WORDS.get(kind, kind))
                continue
            own = ledger.unit_deadline(self.db, unit.name, job.item.id, job.period, job.deadline)
            context = {
                **self._base(job, now),
                "unit": unit.name,
                "deadline_long": deadline_text(own),
            }
            if self._queue(
                kind,
                f"{cause or f'{job.kind}:{job.item.id}:{job.period}'}:{unit.name}",
                list(unit.addresses),
                context,
                now,
                unit.name,
                job=job,
            ):
                sent.append(unit.name)
        return {"outcome": "sent", "units": sent}

    def _late_and_missing(self, job: Job, now: dt.datetime) -> tuple[list, list]:
        received = self.received_units(job, now)
        late = [
            (unit, dt.datetime.fromisoformat(received[unit.name]["received_at"]))
            for unit in self.rules.units
            if unit.name in received and received[unit.name]["status"] == "late"
        ]
        return late, self._owing(job, now, "missing")

    def _grouped(self, units: list[Unit]) -> list[tuple[str, list[Unit]]]:
        labels = dict(self.rules.categories)
        return [
            (labels.get(category, category), list(members))
            for category, members in groupby(units, key=lambda u: u.category)
        ]

    def _alert(self, job: Job, now: dt.datetime) -> dict:
        late, missing = self._late_and_missing(job, now)
        keep = {unit.name for unit in self._for_job(job, [u for u, _ in late] + missing)}
        late = [(unit, when) for unit, when in late if unit.name in keep]
        missing = [unit for unit in missing if unit.name in keep]
        if job.unit and not late and not missing:
            return {"outcome": "nothing to report", "unit": job.unit}
        if not self.config.supervisors:
            return {"outcome": "no supervisors configured", "missing": [u.name for u in missing]}
        late_by_unit = dict(late)
        context = {
            **self._base(job, now),
            "missing_groups": self._grouped(missing),
            "late_groups": [
                (label, [(u, long_time(late_by_unit[u])) for u in members])
                for label, members in self._grouped([u for u, _ in late])
            ],
            "missing_count": len(missing),
            "late_count": len(late),
            "total": len(self.rules.units),
        }
        self._queue("alert", job.key, list(self.config.supervisors), context, now)
        return {
            "outcome": "sent",
            "missing": [u.name for u in missing],
            "late": [u.name for u, _ in late],
        }

    def _problems_waiting(self, now: dt.datetime) -> dict[str, list[dict]]:
        """Mail and sends that need a person, as of `now`."""
        settled = {
            row["message"]
            for row in self.db["decisions"].rows_where(
                "kind in ('assign', 'confirm') and undone_at is null and message is not null"
            )
        }
        messages = [
            row
            for row in self.db.query("select * from messages order by received_at, id")
            if ledger.received_by(row, now) and row["id"] not in settled
        ]
        return {
            "on_behalf": [
                {**m, "why": on_behalf[0]}
                for m in messages
                if (on_behalf := ledger.flag_texts(m, "on_behalf"))
            ],
            "unrecognized": [
                m for m in messages if m["disposition"] in {"unrecognized", "quarantined"}
            ],
            "mismatches": [
                {**m, "why": mismatches[0]}
                for m in messages
                if (mismatches := ledger.flag_texts(m, "reporter_mismatch"))
            ],
            "spoofed": [
                {**m, "why": spoofed[0]}
                for m in messages
                if (spoofed := ledger.flag_texts(m, "spoofed"))
            ],
            "clashes": [
                {**m, "why": clash[0]}
                for m in messages
                if (clash := ledger.flag_texts(m, "message_id_clash"))
            ],
            "failed": list(self.db["outbox"].rows_where("status = 'failed'", order_by="id")),
        }

    def _digest(self, job: Job, now: dt.datetime) -> dict:
        late, missing = self._late_and_missing(job, now)
        matrix = status_matrix(self.db, self.rules, now)
        owed = paper_owed(self.db, self.rules, now)
        path, stats = write_workbook(
            self.db, self.rules, job.period, self.config.reports, job.item.id, now
        )
        delay = now - job.due
        late_note = (
            f"本汇总应于 {long_time(job.due)} 发出，因系统停机延迟到 {long_time(now)}。"
            if delay > self.rules.jobs.digest_late_after
            else ""
        )
        context = {
            **self._base(job, now),
            "matrix": matrix,
            "symbols": STATE_TEXT,
            "late": [(unit.name, short_time(when)) for unit, when in late],
            "missing": [unit.name for unit in missing],
            "counted": len(stats["units"]),
            "counts": matrix.counts(job.item.id, job.period),
            "total": len(matrix.units),
            "problems": self._problems_waiting(now),
            "late_note": late_note,
            "workbook_name": path.name,
            "decisions": [d["text"] for d in decisions_in_force(self.db, self.rules)],
            "paper_owed": paper_owed_lines(owed, self.rules),
            "paper_owed_count": len(owed),
            "calendar_gaps": self.rules.calendar_gaps(),
            "calendar_file": str(self.rules.folder / CALENDAR_FILE),
        }
        html = self.renderer.render_html("digest.html.j2", context)
        attachment = ((path.name, path.read_bytes(), XLSX),)
        self._queue("digest", job.key, self.office, context, now, html=html, attachments=attachment)
        return {
            "outcome": "sent late" if late_note else "sent",
            "workbook": str(path),
            "totals": stats["totals"],
            "missing": [unit.name for unit in missing],
        }

    def _assessment(self, job: Job, now: dt.datetime) -> dict:
        result = assess(self.db, self.rules, now)
        path = write_assessment(result, self.rules, self.config.reports)
        context = {
            **self._base(job, now),
            "units": first_ten(result["units"]),
            "count": len(result["units"]),
            "state_text": STATE_TEXT,
            "workbook_name": path.name,
        }
        attachment = ((path.name, path.read_bytes(), XLSX),)
        self._queue("assessment", job.key, self.office, context, now, attachments=attachment)
        return {"outcome": "sent", "workbook": str(path)}
