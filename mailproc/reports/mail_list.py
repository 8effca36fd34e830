"""Every mail handled, as the `messages` command lists it and the console shows, filters and
exports it (CSV for any tool, xlsx for the office): one reading of the ledger for all three."""

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

import openpyxl
import sqlite_utils

from mailproc.display import printable
from mailproc.labels import DISPOSITION_WORDS, REPLY_WORDS, STATE_WORDS, problem_words
from mailproc.reports.workbook import FORMULA_STARTS, write

FIELDS = (
    "message_id", "received_at", "sender", "unit", "item", "period", "status", "version",
    "reply", "problems",
)  # fmt: skip
FILTERS = ("unit", "item", "period", "status", "reply", "q")
# The columns of an export: (record key, heading)
COLUMNS = (
    ("id", "编号"), ("received_at", "收到时间"), ("sender_name", "发件人姓名"),
    ("sender", "发件地址"), ("subject", "主题"), ("disposition", "处理结果"), ("unit", "单位"),
    ("item", "项目"), ("period", "期次"), ("status", "状态"), ("version", "版本"),
    ("reply", "回复"), ("problems", "问题"), ("message_id", "Message-ID"),
)  # fmt: skip


def message_records(
    db: sqlite_utils.Database,
    limit: int = -1,
    offset: int = 0,
    where: str = "1",
    params: Iterable[Any] = (),
) -> list[dict]:
    """Every mail in receipt order (or a page of them, or those `where` picks), its lists
    decoded."""
    records = []
    query = f"select * from messages where {where} order by received_at, id limit ? offset ?"
    for row in db.query(query, [*params, limit, offset]):
        record = {key: row[key] for key in FIELDS}
        record["problems"] = json.loads(row["problems"] or "[]")
        record.update(
            id=row["id"],
            disposition=row["disposition"],
            subject=row["subject"],
            sender_name=row["sender_name"],
            source=row["source"],
            notes=json.loads(row["notes"] or "[]"),
            flags=json.loads(row["flags"] or "[]"),
        )
        records.append(record)
    return records


def matching(records: Iterable[dict], wanted: dict[str, str]) -> list[dict]:
    """The records that every given filter allows; `q` is text in the subject, sender or
    Message-ID, the others equal a field."""
    chosen = []
    text = (wanted.get("q") or "").strip().lower()
    for record in records:
        if any(
            wanted.get(key) and (record[key] or "") != wanted[key]
            for key in ("unit", "item", "period", "status", "reply")
        ):
            continue
        haystack = " ".join(
            str(record[key] or "") for key in ("subject", "sender", "sender_name", "message_id")
        )
        if text and text not in haystack.lower():
            continue
        chosen.append(record)
    return chosen


def row_values(record: dict, item_labels: dict[str, str]) -> list:
    """One record as the office reads it: Chinese words, the sender's text without controls."""
    words = {
        "disposition": DISPOSITION_WORDS.get(record["disposition"], record["disposition"]),
        "status": STATE_WORDS.get(record["status"] or "", ""),
        "reply": REPLY_WORDS.get(record["reply"], record["reply"]),
        "item": item_labels.get(record["item"] or "", record["item"] or ""),
        "received_at": (record["received_at"] or "")[:19].replace("T", " "),
        "problems": problem_words(record["problems"]),
    }
    values = []
    for key, _ in COLUMNS:
        value = words.get(key, record[key])
        values.append(printable(value) if isinstance(value, str) else value)
    return values


def as_csv(records: list[dict], item_labels: dict[str, str]) -> bytes:
    """UTF-8 with a BOM, which Excel and WPS need to read Chinese; a text that a spreadsheet
    would run as a formula gets a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([heading for _, heading in COLUMNS])
    for record in records:
        writer.writerow(
            [
                f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v
                for v in row_values(record, item_labels)
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def as_xlsx(records: list[dict], item_labels: dict[str, str], title: str) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "邮件"
    write(sheet, 1, 1, title)
    for column, (_, heading) in enumerate(COLUMNS, 1):
        write(sheet, 2, column, heading)
    for row, record in enumerate(records, 3):
        for column, value in enumerate(row_values(record, item_labels), 1):
            write(sheet, row, column, value)
    sheet.freeze_panes = "A3"
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()
