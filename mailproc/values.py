"""The values passed between the stages: what classification decided, what the office booked,
what ingesting one mail did. Plain data, importable by every stage without pulling in another
stage's libraries; the kinds are `Literal`s so a misspelt one is a type error, and every fact a
later stage acts on is a field, never a phrase to search for in a note.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from mailproc.read.mail import Attachment
from mailproc.read.tables import StatsTable, Tables

GateReason = Literal["own", "bounce", "auto_reply", "bulk"]
Disposition = Literal[
    "submission",  # a unit's report, booked against a deadline (or an event report)
    "unrecognized",  # looks like a report, but the unit or the item is unknown: 无法识别
    "unrelated",  # not about the campaign
    "answer_to_us",  # a reply to one of mailproc's messages, bringing nothing new
    "auto_reply",
    "bounce",
    "bulk",
    "own",  # mailproc's own mail, or the office's
    "duplicate",  # a Message-ID already recorded, with other content
    "quarantined",  # could not be read (or tripped a bug): kept for the office
]
Reply = Literal["ack", "missing", "unrecognized", "none"]
Problem = Literal["cloud_link", "no_attachment", "no_stats", "unreadable_file", "bad_cells"]
FileRole = Literal["stats", "stats_candidate", "document", "image", "other"]
FlagKind = Literal["on_behalf", "reporter_mismatch"]
IngestState = Literal["new", "known", "quarantined"]

# Problems in the order domain.md gives them: the first that applies is the one reported.
PROBLEM_ORDER: tuple[Problem, ...] = (
    "cloud_link",
    "no_attachment",
    "no_stats",
    "unreadable_file",
    "bad_cells",
)


@dataclass(frozen=True)
class Flag:
    """Something the office should look at in a mail that was still booked: a unit's mailbox
    reporting for another (代报), or a 附件1 filled in by another unit (填报单位不符)."""

    kind: FlagKind
    text: str


@dataclass(frozen=True)
class Booking:
    """The office's reading of a mail (`mailproc assign`), which replaces the machine's."""

    unit: str
    item: str
    period: str | None = None


@dataclass
class FileCheck:
    """What one attachment turned out to be."""

    attachment: Attachment
    role: FileRole
    table: StatsTable | None = None
    error: str | None = None
    note: str | None = None
    # every table the file holds, read once: the unit's own row and the week's sheet are
    # picked from these
    tables: Tables | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Classification:
    """What one mail is, for whom, about what, against which deadline, and the reply it owes.
    Made whole by the classifier; a later stage that learns more (the version a group settles
    into) makes a new one with `dataclasses.replace`."""

    disposition: Disposition
    unit: str | None = None
    unit_source: str | None = None
    sender_unit: str | None = None
    item: str | None = None
    period: str | None = None
    status: str | None = None
    version: int | None = None
    on_time: bool | None = None
    reply: Reply = "none"
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()
    flags: tuple[Flag, ...] = ()
    files: tuple[FileCheck, ...] = ()
    table: StatsTable | None = None
    deadline: dt.datetime | None = None
    unit_deadline: dt.datetime | None = None  # the deadline that holds for the unit (extended)

    @property
    def problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


@dataclass(frozen=True)
class Outcome:
    """What ingesting one mail did."""

    state: IngestState
    message_pk: int | None
    disposition: Disposition
    reply: Reply
    reason: str | None = None
