"""催报 now: the office reminds one unit, or every unit that has not sent a deadline's report,
with the same notices the schedule sends (templates reminder and overdue), through the outbox.

Before the deadline a unit gets the reminder, after it the overdue notice, each against its own
deadline when the office extended it. A unit that has sent the report, or is excused, gets
nothing. A 催报 is one per unit, deadline and day: a second click the same day (or two clerks
clicking together) queues nothing more.
"""

import datetime as dt

from mailproc.app import App
from mailproc.jobs import Job, Ticker
from mailproc.ledger import write
from mailproc.office.actions import Done, OfficeError, check_target
from mailproc.reports.status import status_matrix

NOTICE = {"not_due": "reminder", "missing": "overdue"}
NOTICE_TEXT = {"reminder": "报送提醒", "overdue": "逾期催报"}


def remind(
    app: App,
    unit: str | None,
    item_id: str,
    period: str | None,
    note: str | None,
    by: str,
    preview: bool = False,
    now: dt.datetime | None = None,
) -> Done:
    """Queue the 催报 to `unit`, or (None) to every unit still owing the deadline."""
    rules = app.rules
    now = now or dt.datetime.now(app.tz)
    first, item_id, period = check_target(rules, unit or rules.units[0].name, item_id, period)
    names = [first] if unit else [u.name for u in rules.units]
    unit = first if unit else None
    item = rules.item(item_id)
    deadline = item.deadline_for(period) if period else None
    if deadline is None:
        raise OfficeError(f"{item.label}没有截止时间，无需催报")
    matrix = status_matrix(app.db, rules, now)
    owing = {
        name: NOTICE[state]
        for name in names
        if (state := matrix.cell(name, item_id, period).state) in NOTICE
    }
    if unit and not owing:
        state = matrix.cell(unit, item_id, period).state
        done_text = "已免报" if state == "excused" else "已报送"
        raise OfficeError(f"{unit} {item.label}（{period}）{done_text}，无需催报")
    cause = f"remind:{item_id}:{period}:{now.date().isoformat()}"
    already = {row["unit"] for row in app.db["outbox"].rows_where("cause like ?", [f"{cause}:%"])}
    units = {u.name: u for u in rules.units}
    changes = [
        f"向 {name}（{'、'.join(units[name].addresses) or '无登记地址，无法发送'}）发送"
        f"{NOTICE_TEXT[kind]}：{item.label}（{period}）"
        + ("——今天已催报过，不再重复" if name in already else "")
        for name, kind in owing.items()
    ] or [f"{item.label}（{period}）没有未报的单位，无需催报"]
    if preview:
        return Done(f"{len(owing)} 个单位待催报", changes=changes)
    job = Job(kind="reminder", due=now, item=item, deadline=deadline)
    ticker = Ticker(app)
    sent: list[str] = []
    with app.db.atomic():
        for kind in NOTICE.values():
            chosen = [units[name] for name, k in owing.items() if k == kind]
            if chosen:
                sent += ticker.notify(job, now, kind, chosen, cause)
        write.record_decision(
            app.db,
            app.tz,
            "remind",
            by,
            note,
            unit=unit,
            item=item_id,
            period=period,
            value={"units": sent},
        )
    summary = (
        f"已向 {len(sent)} 个单位发出催报：{'、'.join(sent)}"
        if sent
        else "没有新的催报：今天已催报过，或单位没有登记地址"
    )
    return Done(summary, queued=len(sent))
