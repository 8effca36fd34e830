"""Builders for small test mails, so each test states only what matters to it."""

import datetime as dt
import email
import email.policy
import hashlib
import io
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime

import docx
import openpyxl

TZ = dt.timezone(dt.timedelta(hours=8))

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def stats_xlsx(unit: str = "东风镇", lectures: object = 3) -> bytes:
    """A small but real 附件1 with a two-level header and one data row."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "附件1"
    sheet.append(["活动情况统计表"])
    sheet.append([f"填报单位：{unit}", None, "填报日期：2019年6月12日"])
    sheet.append(["单位", "宣讲活动", None, "应急演练", None, "隐患排查治理", None])
    sheet.append([None, "场次", "参加人次", "场次", "参演人次", "排查隐患", "整改隐患"])
    sheet.append([unit, lectures, 120, 2, 80, 5, 4])
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def table_xlsx(rows: list[list[object]], reporter: str) -> bytes:
    """附件1 with a single-level header, the given data rows and a 填报单位 line."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([f"填报单位：{reporter}"])
    sheet.append(["单位", "宣讲场次", "演练场次", "媒体报道篇数"])
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def sheet_per_week_xlsx() -> bytes:
    """东风镇's 附件1 kept with a sheet per week (第一周 … 第三周), 宣讲 1, 2, 3 场."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for week, lectures in (("第一周", 1), ("第二周", 2), ("第三周", 3)):
        sheet = book.create_sheet(week)
        sheet.append(["单位", "宣讲场次", "演练场次", "媒体报道篇数"])
        sheet.append(["东风镇", lectures, 0, 0])
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def docx_bytes() -> bytes:
    document = docx.Document()
    document.add_paragraph("活动方案正文")
    data = io.BytesIO()
    document.save(data)
    return data.getvalue()


def make_mail(
    subject: str,
    sender: str = "dongfeng_aj@163.com",
    received: dt.datetime | None = None,
    date: dt.datetime | None = None,
    body: str = "附件请查收。",
    files: list[tuple[str, bytes, str]] = (),
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
    html: str | None = None,
) -> bytes:
    """A mail as the office mailbox holds it: a Received line carries the server's time; with
    `html`, the body is a multipart/alternative of `body` (plain) and that HTML."""
    received = received or dt.datetime(2019, 6, 12, 9, 30, tzinfo=TZ)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "dwajj6780436@163.com"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or received)
    digest = hashlib.sha1(repr((subject, sender, received, body)).encode()).hexdigest()[:16]
    msg["Message-ID"] = message_id or f"<{digest}@test>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, data, mime in files:
        maintype, subtype = mime.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    received_line = f"from mx.163.com by mx-dw.163.com; {format_datetime(received)}"
    return f"Received: {received_line}\r\n".encode() + msg.as_bytes()


class GbkZipInfo(zipfile.ZipInfo):
    """Writes the member name as raw GBK without the UTF-8 flag, as Chinese Windows does."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gbk"), self.flag_bits


def zip_with(names: list[tuple[str, bytes, bool]]) -> bytes:
    """A deflated zip; members with utf8=True get the 0x800 flag (zipfile's default)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, utf8 in names:
            info = zipfile.ZipInfo(name) if utf8 else GbkZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def forwarded(inner: bytes, text: str = "转发新兴镇的周报") -> EmailMessage:
    """A clerk's forward of `inner`, attached whole (message/rfc822) from a personal mailbox."""
    outer = EmailMessage()
    outer["From"] = "lina@qq.com"
    outer["To"] = "dwajj6780436@163.com"
    outer["Subject"] = "Fw: 周报"
    outer["Message-ID"] = "<fw-1@qq.com>"
    outer.set_content(text)
    outer.add_attachment(email.message_from_bytes(inner, policy=email.policy.default))
    return outer
