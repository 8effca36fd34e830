"""A form posted to /actions/<name> turned into the office function the command line calls,
with the same option names (`message`, `unit`, `item`, `period`, `until`, `note`, ...).

Each action first runs as a preview (nothing changes; `Done.changes` says what would), and
applies only when the form comes back with `confirm=1`.
"""

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from mailproc.app import App
from mailproc.office import actions, remind
from mailproc.office.actions import Done, OfficeError

TITLES = {
    "assign": "改判：记入单位和项目",
    "unassign": "撤销改判",
    "excuse": "免报",
    "extend": "延期",
    "paper": "纸质文件",
    "confirm": "确认",
    "register": "登记发件地址",
    "resend": "重新发送",
    "remind": "催报",
}


class Form:
    """The posted fields: one value, several values (paper's units), a flag."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = [(k, v.strip()) for k, v in pairs]

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.pairs if k == key and v), None)

    def need(self, key: str, label: str) -> str:
        value = self.get(key)
        if value is None:
            raise OfficeError(f"请填写{label}")
        return value

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k == key and v]

    def flag(self, key: str) -> bool:
        return self.get(key) in {"1", "on", "true", "yes"}


def until_of(text: str | None, tz: dt.tzinfo) -> dt.datetime | None:
    """`until` as the command line reads it: ISO 8601, a day alone meaning its end."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise OfficeError(
            f"新的截止时间“{text}”不是 2019-06-20 或 2019-06-20T17:00 这样的时间"
        ) from None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        value = value.replace(hour=23, minute=59, second=59)
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise OfficeError(f"日期“{text}”应写成 2019-06-20") from None


Runner = Callable[[App, Form, str, bool], list[Done]]


def _assign(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    return [
        actions.assign(
            app,
            form.need("message", "邮件"),
            form.need("unit", "单位"),
            form.need("item", "项目"),
            form.get("period"),
            form.get("note"),
            by,
            preview=preview,
        )
    ]


def _unassign(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    message = form.need("message", "邮件")
    return [actions.unassign(app, message, form.get("note"), by, preview=preview)]


def _excuse(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    return [
        actions.excuse(
            app,
            form.need("unit", "单位"),
            form.need("item", "项目"),
            form.get("period"),
            form.get("note"),
            by,
            form.flag("undo"),
            preview=preview,
        )
    ]


def _extend(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    return [
        actions.extend(
            app,
            form.need("unit", "单位"),
            form.need("item", "项目"),
            form.get("period"),
            until_of(form.get("until"), app.tz),
            form.get("note"),
            by,
            form.flag("undo"),
            preview=preview,
        )
    ]


def _paper(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    units = form.all("unit")
    if not units:
        raise OfficeError("请至少选择一个单位")
    item = form.need("item", "项目")
    received = _date(form.get("received"))
    # all the units in one action: one wrong name records none of them
    return [
        actions.paper(
            app,
            units,
            item,
            form.get("period"),
            received,
            form.flag("waive"),
            form.get("note"),
            by,
            form.flag("undo"),
            preview=preview,
        )
    ]


def _confirm(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    message = form.need("message", "邮件")
    return [actions.confirm(app, message, form.get("note"), by, preview=preview)]


def _register(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    return [
        actions.register(
            app,
            form.need("address", "发件地址"),
            form.need("unit", "单位"),
            form.get("note"),
            by,
            form.flag("undo"),
            preview=preview,
        )
    ]


def _resend(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    text = form.need("outbox", "发件编号")
    if not text.isdigit():
        raise OfficeError(f"发件编号“{text}”应是数字")
    return [actions.resend(app, int(text), form.get("note"), by, preview=preview)]


def _remind(app: App, form: Form, by: str, preview: bool) -> list[Done]:
    return [
        remind.remind(
            app,
            form.get("unit"),
            form.need("item", "项目"),
            form.get("period"),
            form.get("note"),
            by,
            preview=preview,
        )
    ]


RUNNERS: dict[str, Runner] = {
    "assign": _assign,
    "unassign": _unassign,
    "excuse": _excuse,
    "extend": _extend,
    "paper": _paper,
    "confirm": _confirm,
    "register": _register,
    "resend": _resend,
    "remind": _remind,
}


@dataclass
class Result:
    """What the page shows after a form: the changes (preview) or what was done."""

    lines: list[str]
    queued: int


def run(app: App, name: str, form: Form, by: str, preview: bool) -> Result:
    """Preview or apply one action; OfficeError when it cannot be done as asked."""
    done = RUNNERS[name](app, form, by, preview)
    lines = [line for d in done for line in ([] if preview else [d.summary]) + d.changes]
    return Result(lines, sum(d.queued for d in done))
