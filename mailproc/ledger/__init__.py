"""The ledger: one SQLite file that is the single source of truth.

Every mail handled, every receipt against a deadline, every figure read from 附件1, every
outgoing message (the outbox), every decision of the office and every action lives here.
`schema` builds the tables, `read` answers the questions the other stages ask, and `write` is
the only code in mailproc that changes a row: a test checks that no other module does.
"""

from mailproc.ledger.read import (
    active_decision,
    console_session,
    console_user,
    deadline_decisions,
    dumps,
    find_message,
    flag_texts,
    message_by_message_id,
    now_iso,
    outbox_row_by_message_id,
    receipts_for,
    received_by,
    registered_unit,
    registrations,
    replies_for_day,
    unit_deadline,
)
from mailproc.ledger.schema import open_ledger

__all__ = [
    "active_decision",
    "console_session",
    "console_user",
    "deadline_decisions",
    "dumps",
    "find_message",
    "flag_texts",
    "message_by_message_id",
    "now_iso",
    "open_ledger",
    "outbox_row_by_message_id",
    "receipts_for",
    "received_by",
    "registered_unit",
    "registrations",
    "replies_for_day",
    "unit_deadline",
]
