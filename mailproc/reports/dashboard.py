"""The dashboard: the campaign's state as one static HTML page, `reports/index.html`.

The office opens it from disk in any browser, copies it to a USB stick or prints it: it needs no
server, no network and no JavaScript. Like `mailproc status` it is computed from the ledger as
of a moment, and mail received after that moment does not count.
"""

import datetime as dt
import json
import os
import posixpath
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2
import sqlite_utils

from mailproc import ledger
from mailproc.display import without_controls
from mailproc.labels import PROBLEM_LABELS, STATE_WORDS
from mailproc.private import write_private
from mailproc.reports.status import (
    SYMBOLS,
    StatusMatrix,
    decisions_in_force,
    paper_owed,
    paper_owed_lines,
    status_matrix,
)
from mailproc.rules import CALENDAR_FILE, Rules

CHART_BAR_WIDTH = 680  # px of the chart's bars: every unit gets the same share of it


def _time(text: str | None, rules: Rules) -> str:
    if not text:
        return ""
    return f"{dt.datetime.fromisoformat(text).astimezone(rules.timezone):%Y-%m-%d %H:%M}"


def _counted(text: str | None, as_of: dt.datetime) -> bool:
    """Whether a row received at `text` had arrived by `as_of` (no time: it always counts)."""
    return text is None or dt.datetime.fromisoformat(text) <= as_of


class _Links:
    """Hrefs from the reports folder to archived files, relative so the page works from disk."""

    def __init__(self, reports: Path, archive: Path):
        self.reports, self.archive = reports.resolve(), archive.resolve()
        # the way from the reports folder to the archive, found once: a page links every file
        # ever received, and os.path.relpath on each cost seconds at 50,000 mails
        self.prefix = Path(os.path.relpath(self.archive, self.reports)).as_posix()

    def __call__(self, archive_path: str | None) -> str | None:
        if not archive_path:
            return None
        if Path(archive_path).is_absolute():
            target = Path(os.path.relpath(self.archive / archive_path, self.reports)).as_posix()
        else:
            target = posixpath.normpath(f"{self.prefix}/{archive_path}")
        return urllib.parse.quote(target)


def units_in_order(matrix: StatusMatrix, rules: Rules) -> dict[str, str]:
    """Each unit's page anchor, units in rules order grouped by category (every table's order)."""
    order = [c for c, _ in rules.categories]
    units = sorted(matrix.units, key=lambda u: order.index(u[1]))
    return {unit: f"unit-{n}" for n, (unit, _) in enumerate(units, 1)}


def matrix_context(matrix: StatusMatrix, rules: Rules, anchors: dict[str, str]) -> dict[str, Any]:
    """Columns, category groups of unit rows, and the chart's bars."""
    columns = []
    for (item, period, deadline), label in zip(matrix.deadlines, matrix.labels, strict=True):
        counts = matrix.counts(item, period)
        x, segments = 0.0, []
        for state in SYMBOLS:
            width = CHART_BAR_WIDTH * counts[state] / max(1, len(matrix.units))
            if counts[state]:
                segments.append({"state": state, "x": x, "width": width, "count": counts[state]})
            x += width
        columns.append(
            {
                "label": label,
                "date": period[5:],
                "deadline": f"{deadline:%Y-%m-%d %H:%M}",
                "counts": counts,
                "segments": segments,
            }
        )
    category_of = dict(matrix.units)
    groups = []
    for category, label in rules.categories:
        rows = []
        for unit in (u for u in anchors if category_of[u] == category):
            cells = []
            for item, period, deadline in matrix.deadlines:
                cell = matrix.cell(unit, item, period)
                if cell.received_at:
                    title = f"首次收到 {_time(cell.received_at, rules)}"
                    if cell.versions > 1:
                        title += f"，共 {cell.versions} 个版本"
                    if not cell.complete:
                        title += "，缺项未补齐"
                else:
                    title = f"截止 {deadline:%Y-%m-%d %H:%M}，未收到"
                cells.append(
                    {
                        "state": cell.state,
                        "text": STATE_WORDS[cell.state],
                        "versions": cell.versions,
                        "incomplete": not cell.complete,
                        "title": title,
                    }
                )
            rows.append({"name": unit, "anchor": anchors[unit], "cells": cells})
        if rows:
            groups.append({"label": label, "rows": rows})
    return {"columns": columns, "groups": groups}


def unit_records(
    db: sqlite_utils.Database,
    rules: Rules,
    matrix: StatusMatrix,
    anchors: dict[str, str],
    links: _Links,
) -> list[dict[str, Any]]:
    """Per unit of `anchors` (every unit for the dashboard, one for its console page), every
    receipt and event report it sent by `as_of`, with links to the files."""
    units = list(anchors)
    among = f"({', '.join('?' * len(units))})"
    sent = f"""
        select r.unit, r.item, r.period, r.version, r.received_at, r.on_time, r.status,
               r.complete, r.problems, m.id as message, m.archive_path
        from receipts r join messages m on m.id = r.message where r.unit in {among}
        union all
        select unit, item, null, null, received_at, 1, null, 1, problems, id, archive_path
        from messages where disposition = 'submission' and item is not null and period is null
            and unit in {among}
    """
    files: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in db.query(
        f"select * from attachments where message in (select message from ({sent})) order by id",
        [*units, *units],
    ):
        files[row["message"]].append({"name": row["filename"], "href": links(row["archive_path"])})
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in db.query(f"{sent} order by received_at", [*units, *units]):
        if not _counted(row["received_at"], matrix.as_of):
            continue
        item = rules.item(row["item"])
        rows[row["unit"]].append(
            {
                "item": item.label if item else row["item"],
                "period": row["period"] or "",
                "version": row["version"],
                "received": _time(row["received_at"], rules),
                "state": row["status"],
                "status": STATE_WORDS.get(row["status"], "随时报送"),
                "on_time": bool(row["on_time"]),
                "complete": bool(row["complete"]),
                "problems": json.loads(row["problems"] or "[]"),
                "mail": links(row["archive_path"]),
                "files": files[row["message"]],
            }
        )
    records = []
    for unit, anchor in anchors.items():
        counts = {state: 0 for state in SYMBOLS}
        for item, period, _ in matrix.deadlines:
            counts[matrix.cell(unit, item, period).state] += 1
        records.append({"name": unit, "anchor": anchor, "counts": counts, "rows": rows[unit]})
    return records


def _attention(
    db: sqlite_utils.Database, rules: Rules, as_of: dt.datetime, links: _Links
) -> dict[str, list[dict[str, Any]]]:
    """What the office must look at by hand: unknown mail, unit addresses that may be forged,
    代报 and mismatches, failed sends."""
    unknown, spoofed, flagged = [], [], []
    received: dict[int, str | None] = {}
    registered = ledger.registrations(db)
    for row in db.query("select * from messages order by received_at, id"):
        received[row["id"]] = row["received_at"]
        if not _counted(row["received_at"], as_of):
            continue
        notes = json.loads(row["notes"] or "[]")
        entry = {
            "received": _time(row["received_at"], rules),
            "sender": row["sender"] or "",
            "sender_name": row["sender_name"] or "",
            "subject": row["subject"] or "",
            "unit": row["unit"] or "",
            "disposition": row["disposition"],
            "mail": links(row["archive_path"]),
        }
        if row["disposition"] in ("unrecognized", "quarantined"):
            unknown.append({**entry, "notes": notes})
        if forged := ledger.flag_texts(row, "spoofed"):
            spoofed.append({**entry, "notes": forged})
        kinds = ["reporter_mismatch", "on_behalf", "message_id_clash", "reply_held"]
        kinds += ["correction", "unit_guess"]
        if row["sender"] not in registered:
            kinds.append("unregistered")
        flagged_notes = ledger.flag_texts(row, *kinds)
        if flagged_notes and row["disposition"] == "submission":
            flagged.append({**entry, "notes": flagged_notes})
    failed = [
        {**row, "created": _time(row["created_at"], rules)}
        for row in db.query("select * from outbox where status = 'failed' order by id")
        if row["message"] is None or _counted(received.get(row["message"]), as_of)
    ]
    return {"unknown": unknown, "spoofed": spoofed, "flagged": flagged, "failed": failed}


def write_dashboard(
    db: sqlite_utils.Database,
    rules: Rules,
    reports: Path,
    archive: Path,
    templates: Path,
    as_of: dt.datetime | None = None,
) -> Path:
    """Render `templates/dashboard.html.j2` from the ledger into `reports/index.html`.

    Links to archived mail and files are relative, so the reports and archive folders can be
    copied elsewhere together and the page still opens them.
    """
    matrix = status_matrix(db, rules, as_of)
    owed = paper_owed(db, rules, matrix.as_of)
    anchors = units_in_order(matrix, rules)
    links = _Links(reports, archive)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=without_controls,
    )
    env.globals["problem_labels"] = PROBLEM_LABELS
    html = env.get_template("dashboard.html.j2").render(
        campaign=rules.campaign,
        office=rules.office,
        table=rules.table,
        as_of=f"{matrix.as_of:%Y-%m-%d %H:%M}",
        units=len(matrix.units),
        state_text=STATE_WORDS,
        chart_bar_width=CHART_BAR_WIDTH,
        records=unit_records(db, rules, matrix, anchors, links),
        **matrix_context(matrix, rules, anchors),
        **_attention(db, rules, matrix.as_of, links),
        paper_owed=paper_owed_lines(owed, rules),
        paper_owed_count=len(owed),
        decisions=[d["text"] for d in decisions_in_force(db, rules)],
        calendar_gaps=rules.calendar_gaps(),
        calendar_file=str(rules.folder / CALENDAR_FILE),
    )
    path = reports / "index.html"
    write_private(path, html.encode("utf-8"))  # a browser reloading mid-write sees no half page
    return path
