"""The values passed between the stages: a mail as read and its files, the 附件1 figures read
from one of them, what classification decided, what the office booked, what ingesting one mail
did. Plain data, importable by every stage without pulling in another stage's libraries; the
kinds are `Literal`s so a misspelt one is a type error, and every fact a later stage acts on is
a field, never a phrase to search for in a note.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mailproc.read.kinds import Container

GateReason = Literal["own", "bounce", "auto_reply", "bulk", "spoofed"]
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
# Why a file that may carry 附件1 gave no table: a picture of it (a photo, a scan), or an old
# binary Word file whose tables could not be read here
TableUnread = Literal["picture", "old_word"]
FlagKind = Literal[
    "on_behalf",  # 代报: one unit's mailbox reporting for another
    "reporter_mismatch",  # 填报单位不符: 附件1 filled in by another unit
    "message_id_clash",  # another mail came first with this Message-ID
    "spoofed",  # a unit's address failing SPF and DMARC at our server
    "unregistered",  # 未登记地址: a unit's report from an address not registered to it
    "reply_held",  # the address had its day's automatic replies: the office sends this one
    "correction",  # 文字更正: a further version correcting figures in words, without 附件1
    "unit_guess",  # a unit name written with one character wrong or missing, read as that unit
]
IngestState = Literal["new", "known", "quarantined"]

# Problems in the order the reply names them (docs/campaign.md#problems-and-replies)
PROBLEM_ORDER: tuple[Problem, ...] = (
    "cloud_link",
    "no_attachment",
    "no_stats",
    "unreadable_file",
    "bad_cells",
)


# -- read: a mail and its files ------------------------------------------------------------


@dataclass
class Attachment:
    filename: str
    content_type: str
    kind: str
    data: bytes
    sha256: str
    raw_filename: bytes | None = None
    from_archive: str | None = None
    problems: list[str] = field(default_factory=list)

    @functools.cached_property
    def container(self) -> Container:
        """The bytes with their zip opened at most once, for every stage that looks inside."""
        return Container(self.data)

    def __getstate__(self) -> dict:
        """Sent between processes without the opened zip: it is opened again where needed."""
        state = self.__dict__.copy()
        state.pop("container", None)
        return state


@dataclass
class ParsedMail:
    raw: bytes
    message_id: str | None
    subject: str
    from_name: str
    from_address: str
    to: list[str]
    cc: list[str]
    reply_to: str | None
    date: dt.datetime | None
    received_at: dt.datetime | None
    in_reply_to: str | None
    references: list[str]
    headers: dict[str, list[str]]
    content_type: str
    body_text: str
    body_html: str
    attachments: list[Attachment]
    forwarded: ParsedMail | None = None
    problems: list[str] = field(default_factory=list)

    @functools.cached_property
    def sha256(self) -> str:
        """The mail's identity in the ledger; computed when first asked (a forwarded mail inside
        another never is), and handed over by the pipeline when it already has it."""
        return hashlib.sha256(self.raw).hexdigest()

    def chain(self) -> list[ParsedMail]:
        """The mail and the messages forwarded inside it, innermost first."""
        chain = [self]
        while chain[-1].forwarded is not None and len(chain) < 5:
            chain.append(chain[-1].forwarded)
        return chain[::-1]


@dataclass
class BadCell:
    sheet: str
    cell: str
    column: str
    header: str
    text: str


@dataclass
class StatsTable:
    filename: str
    sheet: str
    reporter: str | None
    values: dict[str, int | float] = field(default_factory=dict)  # a decimal column: float
    columns_found: list[str] = field(default_factory=list)
    bad_cells: list[BadCell] = field(default_factory=list)
    approximations: list[BadCell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    row_label: str = ""  # the label cells of the row read
    data_rows: int = 0  # filled rows under the header that could be the unit's (vertical: 1)


# -- classify: what a mail is ---------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """Something the office should look at in a mail that was still booked: a unit's mailbox
    reporting for another (代报), a 附件1 filled in by another unit (填报单位不符), or a unit's
    address that failed SPF and DMARC at our receiving server (可能被冒用)."""

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
    unread_table: TableUnread | None = None
    # picks from every table the file holds, read once (`read.tables.pick` on them): the
    # unit's own row and the week's sheet are chosen without reading the file again
    pick: Callable[..., StatsTable | None] | None = field(default=None, repr=False, compare=False)


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
