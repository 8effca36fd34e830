"""Hostile mail, built at test time: each named case of issue 11 as the bytes of a whole .eml.

Every builder is a pure function of its arguments returning bytes; none writes a file, and
the large ones are crafted rather than inflated (a deflate stream of repeated content is
compressed once per chunk and repeated, see `repeated_deflate`), so building a mail that
expands to gigabytes takes seconds and a few megabytes of memory. Each builder's docstring
says what it attacks. `HOSTILE` lists them all with the outcome the test reads back.
"""

import dataclasses
import datetime as dt
import functools
import hashlib
import io
import os
import random
import re
import resource
import struct
import subprocess
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from email.utils import format_datetime, formataddr
from pathlib import Path

import msoffcrypto.format.ooxml
import openpyxl
from mails import DOCX, TZ, XLSX, docx_bytes, make_mail, stats_xlsx

CSV = "text/csv"
PDF = "application/pdf"
ZIP = "application/zip"
MB = 1024 * 1024
# Every hostile mail arrives after the last corpus deadline, so it cannot change how a corpus
# mail is read (versions and weeks look only at earlier mail).
LATE_DECEMBER = dt.datetime(2019, 12, 27, 9, 0, tzinfo=TZ)
BEFORE_LAST_WEEK = dt.datetime(2019, 6, 26, 10, 0, tzinfo=TZ)
PASSWORD = "dw2019"


# -- crafted zips -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Deflated:
    """A raw deflate stream with what a zip header says about it."""

    data: bytes
    crc: int
    size: int  # the real size once inflated


@functools.lru_cache(maxsize=16)
def repeated_deflate(chunk: bytes, times: int, head: bytes = b"", tail: bytes = b"") -> Deflated:
    """head + chunk * times + tail as one raw deflate stream, built in O(len(chunk)) memory.

    A full flush resets the compressor, so each repetition of `chunk` compresses to the same
    bytes: they are computed once and repeated. Only the CRC walks the whole content."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)]
    once = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    parts.append(once * times)
    parts.append(compressor.compress(tail) + compressor.flush(zlib.Z_FINISH))
    crc = zlib.crc32(head)
    for _ in range(times):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    return Deflated(b"".join(parts), crc, len(head) + len(chunk) * times + len(tail))


def deflated(data: bytes) -> Deflated:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Deflated(compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data))


def craft_zip(members: list[tuple[str, Deflated | bytes, int | None]]) -> bytes:
    """A zip written byte by byte: (name, content, declared size or None for the truth).

    `bytes` content is deflated here; a `Deflated` is used as it is. A declared size other
    than the real one is written in both the local header and the central directory, as an
    attacker's tool would."""
    body, central = io.BytesIO(), io.BytesIO()
    dos_time, dos_date = 0x4800, 0x4ECC  # 2019-06-12 09:00
    for name, content, declared in members:
        packed = content if isinstance(content, Deflated) else deflated(content)
        size = packed.size if declared is None else declared
        encoded = name.encode("utf-8")
        fields = (20, 0x800, 8, dos_time, dos_date, packed.crc, len(packed.data), size)
        offset = body.tell()
        body.write(struct.pack("<IHHHHHIII", 0x04034B50, *fields))
        body.write(struct.pack("<HH", len(encoded), 0) + encoded + packed.data)
        central.write(struct.pack("<IH", 0x02014B50, 20) + struct.pack("<HHHHHIII", *fields))
        central.write(struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    directory = central.getvalue()
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), body.tell(), 0
    )
    return body.getvalue() + directory + end


_SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _xlsx_parts(shared_strings: bool) -> list[tuple[str, bytes, None]]:
    """The parts every workbook needs besides its sheet: content types, relations, workbook."""
    overrides = f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
    overrides += (
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
    )
    rels = f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
    if shared_strings:
        overrides += (
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
        )
        rels += (
            f'<Relationship Id="rId2" Type="{_REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
        )
    xml = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    return [
        (
            "[Content_Types].xml",
            (
                f'{xml}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                f"{overrides}</Types>"
            ).encode(),
            None,
        ),
        (
            "_rels/.rels",
            (
                f'{xml}<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
                f'Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
            ).encode(),
            None,
        ),
        (
            "xl/workbook.xml",
            (
                f'{xml}<workbook xmlns="{_SHEET_NS}" xmlns:r="{_REL_NS}"><sheets>'
                '<sheet name="附件1" sheetId="1" r:id="rId1"/></sheets></workbook>'
            ).encode(),
            None,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            f'{xml}<Relationships xmlns="{_PKG_REL}">{rels}</Relationships>'.encode(),
            None,
        ),
    ]


# -- the files ----------------------------------------------------------------------------------


def sparse_sheet_xlsx() -> bytes:
    """A few KB whose sheet has cells at A1 and XFD1048576: a reader that allocates the
    sheet's whole rectangle asks for 2^34 cells (python-calamine aborts asking for 512 GB)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "附件1"
    sheet["A1"] = "附件1 活动情况统计表"
    sheet["XFD1048576"] = "末"
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


@functools.lru_cache(maxsize=1)
def nested_zip_bomb(count: int = 8, megabytes: int = 190) -> bytes:
    """A zip (a few KB) of `count` zips, each holding `megabytes` MB of zeros: every zip is
    under a per-zip limit (200 MB), so limits applied per zip, not per mail, let the mail
    unpack to count x megabytes (1.5 GB, 1.8 GB RSS) and write all of it to the archive."""
    zeros = repeated_deflate(bytes(MB), megabytes)
    inner = [
        (f"第{n}部分.zip", craft_zip([(f"第{n}部分数据.bin", zeros, None)]), None)
        for n in range(1, count + 1)
    ]
    return craft_zip(inner)


def _paragraphs(count: int) -> bytes:
    return ("<w:p><w:r><w:t>安全生产月活动开展情况，详见附件。</w:t></w:r></w:p>" * count).encode()


@functools.lru_cache(maxsize=1)
def docx_bomb(gigabytes: float = 1.0) -> bytes:
    """A ~4 MB docx whose word/document.xml really inflates to `gigabytes` GB of paragraphs
    while its zip headers declare 64 KB: a reader trusting ZipInfo.file_size lets it in,
    and parsing it took 2 GB of memory."""
    real = docx_bytes()
    with zipfile.ZipFile(io.BytesIO(real)) as zf:
        parts = [(n, zf.read(n), None) for n in zf.namelist() if n != "word/document.xml"]
    chunk = _paragraphs(1000)
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w='
        b'"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    )
    document = repeated_deflate(
        chunk, int(gigabytes * 1024 * MB) // len(chunk), head, b"</w:body></w:document>"
    )
    return craft_zip([*parts, ("word/document.xml", document, 64 * 1024)])


@functools.lru_cache(maxsize=1)
def shared_strings_bomb(gigabytes: float = 1.0) -> bytes:
    """An xlsx (~1 MB) whose xl/sharedStrings.xml inflates to `gigabytes` GB while its
    headers declare 4 KB: the shared strings are read whole before any cell (1.07 GB RSS)."""
    sheet = (
        f'<worksheet xmlns="{_SHEET_NS}"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c>'
        "</row></sheetData></worksheet>"
    ).encode()
    chunk = b"<si><t>" + "安全生产月".encode() * 20 + b"</t></si>"
    chunk *= 1000
    strings = repeated_deflate(
        chunk,
        int(gigabytes * 1024 * MB) // len(chunk),
        f'<sst xmlns="{_SHEET_NS}">'.encode(),
        b"</sst>",
    )
    return craft_zip(
        [
            *_xlsx_parts(shared_strings=True),
            ("xl/worksheets/sheet1.xml", sheet, None),
            ("xl/sharedStrings.xml", strings, 4096),
        ]
    )


@functools.lru_cache(maxsize=1)
def big_sheet_xlsx(megabytes: int = 60) -> bytes:
    """A small xlsx (~150 KB, a few KB once zipped again) whose one sheet really is
    `megabytes` MB of rows, its dimension declaring them all."""
    row = b'<row><c t="n"><v>1</v></c></row>'
    rows = megabytes * MB // len(row)
    chunk_rows = 32 * 1024
    head = (f'<worksheet xmlns="{_SHEET_NS}"><dimension ref="A1:A{rows}"/><sheetData>').encode()
    sheet = repeated_deflate(
        row * chunk_rows, rows // chunk_rows, head, b"</sheetData></worksheet>"
    )
    return craft_zip(
        [*_xlsx_parts(shared_strings=False), ("xl/worksheets/sheet1.xml", sheet, None)]
    )


@functools.lru_cache(maxsize=1)
def many_big_sheets_zip(count: int = 100) -> bytes:
    """A ~290 KB zip of `count` small xlsx, each holding a 60 MB sheet: no size limit is
    crossed by any one file, yet reading them all took 183 s of CPU under the ledger lock."""
    book = big_sheet_xlsx()
    return craft_zip([(f"附件1-{n:03d}.xlsx", book, None) for n in range(1, count + 1)])


@functools.lru_cache(maxsize=1)
def big_xlsx(megabytes: int = 50) -> bytes:
    """A real, readable 附件1 (a two-level header, one data row: 宣讲 3 场) that weighs
    `megabytes` MB (decimal: 47.7 MiB, under the 50 MiB a reader accepts): a picture of
    random bytes is stored (not deflated) inside it, as when a photo is pasted into the
    sheet. The mail holding such a file peaked at 733 MB RSS."""
    data = io.BytesIO(stats_xlsx("区商务局"))
    picture = random.Random(11).randbytes(megabytes * 1000 * 1000)
    with zipfile.ZipFile(data, "a") as zf:
        info = zipfile.ZipInfo("xl/media/image1.png", date_time=(2019, 6, 12, 9, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        zf.writestr(info, picture)
    return data.getvalue()


def encrypted_office(plain: bytes, password: str = PASSWORD) -> bytes:
    """An xlsx or docx encrypted with a password (ECMA-376 agile encryption, as Office and
    WPS write it): an OLE2 compound file holding EncryptionInfo and EncryptedPackage."""
    out = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(io.BytesIO(plain)).encrypt(password, out)
    return out.getvalue()


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


_PDF_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def encrypted_pdf(password: str = PASSWORD) -> bytes:
    """A one-page PDF protected with a user password (standard security handler, revision 2,
    RC4 40-bit): its page text is ciphertext; opening it needs the password."""
    padded = (password.encode("latin-1") + _PDF_PAD)[:32]
    owner = _rc4(hashlib.md5(padded).digest()[:5], padded)
    file_id = hashlib.md5(b"mailproc hostile pdf").digest()
    permissions = -44
    key = hashlib.md5(padded + owner + struct.pack("<i", permissions) + file_id).digest()[:5]
    user = _rc4(key, _PDF_PAD)

    def object_key(number: int) -> bytes:
        return hashlib.md5(key + struct.pack("<I", number)[:3] + b"\x00\x00").digest()[:10]

    stream = _rc4(object_key(4), b"BT /F1 12 Tf 72 720 Td (Anquan shengchan yue fang'an) Tj ET")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /O <"
        + owner.hex().encode()
        + b"> /U <"
        + user.hex().encode()
        + b"> /P %d >>" % permissions,
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 5 0 R /ID [<%s> <%s>] >>\n"
        % (len(objects) + 1, file_id.hex().encode(), file_id.hex().encode())
    )
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def utf16_csv(unit: str = "区教育局") -> bytes:
    """附件1 exported as "Unicode text" from Excel: UTF-16 with a BOM, which a reader trying
    UTF-8 and GBK only sees as binary."""
    lines = [
        "活动情况统计表",
        f"填报单位：{unit},,填报日期：2019年6月26日",
        "单位,宣讲活动场次,宣讲活动参加人次,应急演练场次,应急演练参演人次",
        f"{unit},4,150,2,60",
    ]
    return "\r\n".join(lines).encode("utf-16")


# -- the mails ----------------------------------------------------------------------------------


def _at(minutes: int) -> dt.datetime:
    return LATE_DECEMBER + dt.timedelta(minutes=minutes)


def _weekly(unit: str, sender: str, minutes: int, files: list, **kwargs) -> bytes:
    return make_mail(
        f"{unit}第四周安全生产月活动周报",
        sender=sender,
        received=_at(minutes),
        body=kwargs.pop("body", "本周活动情况见附件1。"),
        files=files,
        **kwargs,
    )


def sparse_sheet_mail(minutes: int = 0) -> bytes:
    """东风镇's weekly report whose 附件1 is `sparse_sheet_xlsx`: it killed every run with
    SIGABRT, and under `poll` every run after it."""
    return _weekly(
        "东风镇", "dongfeng_aj@163.com", minutes, [("附件1.xlsx", sparse_sheet_xlsx(), XLSX)]
    )


def date_9999_mail(minutes: int = 1) -> bytes:
    """新兴镇's report with `Date: Fri, 31 Dec 9999 23:59:59 -1200` and no Received line (a
    mail saved from a client): converting that Date to Asia/Shanghai overflows past year
    9999. Ignored as absent, the receipt time is the next source: when it was ingested."""
    raw = _weekly(
        "新兴镇", "xinxing_aj@163.com", minutes, [("附件1.xlsx", stats_xlsx("新兴镇"), XLSX)]
    )
    raw = raw[raw.index(b"\n") + 1 :]  # make_mail's Received line is the first
    return _replace_header(raw, b"Date", b"Fri, 31 Dec 9999 23:59:59 -1200")


def received_9999_mail(minutes: int = 2) -> bytes:
    """新立镇's report whose only Received line is dated year 9999 (its Date is sound): the
    receipt time must come from Date, the next source, not overflow."""
    raw = _weekly(
        "新立镇", "xinli_aj@126.com", minutes, [("附件1.xlsx", stats_xlsx("新立镇"), XLSX)]
    )
    return _replace_received(raw, "Fri, 31 Dec 9999 23:59:59 -1200")


def year_0001_mail(minutes: int = 3) -> bytes:
    """平安镇's report whose only Received line is dated year 0001 (its Date is sound):
    email.utils reads a year below 100 as 19xx/20xx, so it came out as 2001."""
    raw = _weekly(
        "平安镇", "pingan_aj@163.com", minutes, [("附件1.xlsx", stats_xlsx("平安镇"), XLSX)]
    )
    return _replace_received(raw, "Mon, 01 Jan 0001 10:00:00 +0800")


def nested_zips_mail(minutes: int = 4) -> bytes:
    """西安镇's weekly report, a mail of a few KB, carrying `nested_zip_bomb`."""
    return _weekly(
        "西安镇", "xian_zhen_aj@163.com", minutes, [("周报材料.zip", nested_zip_bomb(), ZIP)]
    )


def docx_bomb_mail(minutes: int = 5) -> bytes:
    """区住建局's plan as `docx_bomb` (document.xml inflating to 1 GB behind a 64 KB label)."""
    return make_mail(
        "区住房和城乡建设局安全生产月活动方案",
        sender="dwzjj_aq@163.com",
        received=_at(minutes),
        body="活动方案见附件。",
        files=[("活动方案.docx", docx_bomb(), DOCX)],
    )


def shared_strings_mail(minutes: int = 6) -> bytes:
    """区交通局's weekly report whose 附件1 is `shared_strings_bomb`."""
    return _weekly(
        "区交通运输局", "dwjtj@163.com", minutes, [("附件1.xlsx", shared_strings_bomb(), XLSX)]
    )


def many_sheets_mail(minutes: int = 7) -> bytes:
    """区市场监管局's weekly report with `many_big_sheets_zip`: 100 x 60 MB of sheet XML."""
    return _weekly(
        "区市场监督管理局",
        "dwscjg@163.com",
        minutes,
        [("附件1汇总.zip", many_big_sheets_zip(), ZIP)],
    )


def big_attachment_mail(minutes: int = 8) -> bytes:
    """区商务局's weekly report with `big_xlsx`, a readable 50 MB 附件1 (a 68 MB mail)."""
    return _weekly("区商务局", "dwswj@163.com", minutes, [("附件1.xlsx", big_xlsx(), XLSX)])


CLASH_ID = "<201912270910.clash@163.com>"


def clash_impostor_mail(minutes: int = 9) -> bytes:
    """A stranger's mail arriving first under 赵圈河镇's Message-ID, with other content: the
    genuine report after it must not be dropped as a duplicate."""
    return make_mail(
        "会议通知",
        sender="notice@example.net",
        received=_at(minutes),
        body="请于下周一参加会议。",
        message_id=CLASH_ID,
    )


def clash_genuine_mail(minutes: int = 10) -> bytes:
    """赵圈河镇's genuine weekly report under the Message-ID the impostor used first."""
    return _weekly(
        "赵圈河镇",
        "zhaoquanhe_aj@163.com",
        minutes,
        [("附件1.xlsx", stats_xlsx("赵圈河镇"), XLSX)],
        message_id=CLASH_ID,
    )


def trace_original_mail(minutes: int = 11) -> bytes:
    """区卫健局's weekly report as it first arrived."""
    return _trace_original(minutes)


@functools.cache
def _trace_original(minutes: int) -> bytes:
    """Made once for each time of arrival: a mail's MIME boundary is random, and the copy
    below must be this very mail."""
    return _weekly(
        "区卫生健康局", "dwwjj@163.com", minutes, [("附件1.xlsx", stats_xlsx("区卫生健康局"), XLSX)]
    )


def trace_copy_mail(minutes: int = 11) -> bytes:
    """The same mail through a second route: only Received, Delivered-To and Return-Path
    differ. A duplicate: recorded, never answered twice."""
    original = trace_original_mail(minutes)
    second_route = (
        f"Received: from relay.126.com by mx-dw.163.com; "
        f"{format_datetime(_at(minutes + 3))}\r\n"
        "Delivered-To: dwajj6780436@163.com\r\n"
        "Return-Path: <bounce+dwwjj@relay.126.com>\r\n"
    ).encode()
    return second_route + original


def reserved_names_mail(minutes: int = 12) -> bytes:
    """区教育局's files named CON.xlsx, NUL, COM1.docx and a 300-character name: archived as
    they are, they cannot be opened or copied on Windows, and the long one cannot even be
    written on Linux (a name is at most 255 bytes)."""
    long_name = "大洼区教育系统安全生产月活动" * 21 + "附件.docx"
    assert len(long_name) >= 300
    return make_mail(
        "区教育局安全生产月活动方案",
        sender="dwjyj_aq@163.com",
        received=_at(minutes),
        body="方案及附件见附件。",
        files=[
            ("CON.xlsx", stats_xlsx("区教育局"), XLSX),
            ("NUL", b"empty", "application/octet-stream"),
            ("COM1.docx", docx_bytes(), DOCX),
            (long_name, docx_bytes(), DOCX),
        ],
    )


FORMULA_SUBJECT = '=HYPERLINK("http://evil.example/x","新开镇第四周周报")'
FORMULA_UNIT = '=HYPERLINK("http://evil.example/u","新开镇")'


def formula_unit_xlsx() -> bytes:
    """新开镇's 附件1 whose 填报单位 cell holds the text FORMULA_UNIT (a string, not a formula)."""
    book = openpyxl.load_workbook(io.BytesIO(stats_xlsx("新开镇")))
    cell = book.active["B2"]
    cell.value, cell.data_type = FORMULA_UNIT, "s"
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def formula_mail(minutes: int = 13) -> bytes:
    """新开镇's weekly report whose subject and 填报单位 begin with "=": a workbook cell
    holding them would run as a formula (a link out, or worse, in Excel and WPS)."""
    return make_mail(
        FORMULA_SUBJECT,
        sender=formataddr((FORMULA_UNIT, "xinkai_aj@qq.com")),
        received=_at(minutes),
        body="新开镇第四周周报，附件1请查收。",
        files=[("新开镇附件1.xlsx", formula_unit_xlsx(), XLSX)],
    )


def password_xlsx_mail(minutes: int = 14) -> bytes:
    """区工信局's weekly report whose 附件1 has a password: `unreadable_file`, and the reply
    says 密码 (it was told 已损坏, which sent the unit looking for a broken file)."""
    return _weekly(
        "区工业和信息化局",
        "dwgxj@163.com",
        minutes,
        [("附件1.xlsx", encrypted_office(stats_xlsx("区工业和信息化局")), XLSX)],
    )


def password_docx_mail(minutes: int = 15) -> bytes:
    """区自然资源局's plan as a password-protected docx."""
    return make_mail(
        "区自然资源局安全生产月活动方案",
        sender="dwzrzy@163.com",
        received=_at(minutes),
        body="活动方案见附件，请查收。",
        files=[("活动方案.docx", encrypted_office(docx_bytes()), DOCX)],
    )


def encrypted_pdf_mail(minutes: int = 16) -> bytes:
    """区生态环境分局's plan as a PDF that needs a password to open."""
    return make_mail(
        "区生态环境分局安全生产月活动方案",
        sender="dwsthj@163.com",
        received=_at(minutes),
        body="活动方案见附件，请查收。",
        files=[("活动方案.pdf", encrypted_pdf(), PDF)],
    )


def utf16_csv_mail(minutes: int = 17) -> bytes:
    """区教育局's weekly report with 附件1 as a UTF-16 CSV (Excel's "Unicode text")."""
    return make_mail(
        "区教育局第四周安全生产月活动周报",
        sender="dwjyj_aq@163.com",
        received=_at(minutes),
        body="本周活动情况见附件1。",
        files=[("附件1.csv", utf16_csv("区教育局"), CSV)],
    )


AUTHSERV_ID = "mx-dw.163.com"  # the receiving server named in make_mail's Received line


def spoofed_mail(minutes: int = 18) -> bytes:
    """区消防大队's weekly report, asking to be excused from now on, that 163.com's own check
    failed (spf=fail, dmarc=fail): anyone can write that From. Per domain.md it gets no
    automatic reply and waits in the office's inbox."""
    return _weekly(
        "区消防救援大队",
        "dwxfdd@163.com",
        minutes,
        [("附件1.xlsx", stats_xlsx("区消防救援大队"), XLSX)],
        body="本周情况见附件1。因执行任务，下周起申请免报，请予批准。",
        headers={
            "Authentication-Results": (
                f"{AUTHSERV_ID}; spf=fail smtp.mailfrom=dwxfdd@163.com; "
                "dkim=none; dmarc=fail header.from=163.com"
            )
        },
    )


SCRIPT_SUBJECT = "<script>alert(1)</script>安全生产月周报"


def markup_mail(minutes: int = 19) -> bytes:
    """A stranger's 周报 whose subject is a script tag, arriving the day before the 6月27日
    deadline (a stranger's mail changes no unit's record): shown in the dashboard and in
    that deadline's digest, it must be text, never markup."""
    return make_mail(
        SCRIPT_SUBJECT,
        sender="someone@example.org",
        received=BEFORE_LAST_WEEK + dt.timedelta(minutes=minutes),
        body="<b>周报</b>见附件。",
        files=[("附件1.xlsx", stats_xlsx("某单位"), XLSX)],
    )


NOT_A_MAIL = ("说明.txt", "这是一份说明，不是邮件。\n".encode())  # beside the .eml files


# -- helpers --------------------------------------------------------------------------------


def _replace_header(raw: bytes, name: bytes, value: bytes) -> bytes:
    """`raw` with the first `name:` header's value replaced (the header is one line)."""
    end = re.search(rb"\r?\n\r?\n", raw)
    head, sep, body = raw[: end.start()], end.group(), raw[end.end() :]
    lines = head.split(b"\n")
    for index, line in enumerate(lines):
        if line.lower().startswith(name.lower() + b":"):
            ending = b"\r" if line.endswith(b"\r") else b""
            lines[index] = name + b": " + value + ending
            break
    else:
        raise ValueError(f"no {name!r} header")
    return b"\n".join(lines) + sep + body


def _replace_received(raw: bytes, moment: str) -> bytes:
    return _replace_header(raw, b"Received", f"from mx.163.com by mx-dw.163.com; {moment}".encode())


@dataclasses.dataclass(frozen=True)
class Case:
    """One named case: the file name it is ingested under and its builder."""

    name: str
    build: Callable[[], bytes]


HOSTILE = (
    Case("sparse_sheet", sparse_sheet_mail),
    Case("date_9999", date_9999_mail),
    Case("received_9999", received_9999_mail),
    Case("year_0001", year_0001_mail),
    Case("nested_zips", nested_zips_mail),
    Case("docx_bomb", docx_bomb_mail),
    Case("shared_strings", shared_strings_mail),
    Case("many_sheets", many_sheets_mail),
    Case("big_attachment", big_attachment_mail),
    Case("clash_impostor", clash_impostor_mail),
    Case("clash_genuine", clash_genuine_mail),
    Case("trace_original", trace_original_mail),
    Case("trace_copy", trace_copy_mail),
    Case("reserved_names", reserved_names_mail),
    Case("formula", formula_mail),
    Case("password_xlsx", password_xlsx_mail),
    Case("password_docx", password_docx_mail),
    Case("encrypted_pdf", encrypted_pdf_mail),
    Case("utf16_csv", utf16_csv_mail),
    Case("spoofed", spoofed_mail),
    Case("markup", markup_mail),
)


def written(stdout: str) -> str:
    """The file a report command names on its last line (已写出：PATH)."""
    return stdout.strip().splitlines()[-1].removeprefix("已写出：")


# -- a run, measured ------------------------------------------------------------------------------

# Address space a measured run may take before the kernel refuses it: a guard for this shared
# machine against a runaway, well above the 1 GB the runs are held to (a reader the run
# sandboxes itself may set lower limits in its workers).
GUARD_ADDRESS_SPACE = 6 * 1024 * MB
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True)
class Run:
    """What a measured command did: its exit code (negative: killed by that signal), wall
    seconds, the peak memory of it and its descendants together and of the largest one of
    them alone, and its output."""

    returncode: int
    seconds: float
    peak_rss: int  # bytes, all processes together
    peak_process: int  # bytes, the largest process at its largest
    stdout: str
    stderr: str
    timed_out: bool


def _tree_rss(root: int) -> tuple[int, int]:
    """Memory of `root` and every process below it: the sum of their proportional set sizes
    right now (/proc/PID/smaps_rollup), so pages they share (the reader is forked from a
    server that has the same libraries loaded) count once, not once per process; and the
    largest peak resident size of any one of them so far (VmHWM, which a high-water mark keeps
    between samples)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    sizes, peaks = [], []
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
            sizes.append(int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1)) * 1024)
            peaks.append(int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) * 1024)
        except (OSError, ValueError, AttributeError):
            continue
    return sum(sizes), max(peaks, default=0)


def _guard() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (GUARD_ADDRESS_SPACE, GUARD_ADDRESS_SPACE))


def run_measured(args: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float) -> Run:
    """Run `args`, sampling its process tree's memory twenty times a second: the peak of the
    sum, and each process's own high-water mark, so a short spike between samples is still
    seen. Not the kernel's maximum that os.wait4 reports: it starts from the size of the
    process that forked the command (this test run, holding every earlier test's memory), and
    once counted pytest's 350 MB as the command's. Killed after `timeout` seconds."""
    out, err = cwd / ".run-stdout", cwd / ".run-stderr"
    start = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=stdout, stderr=stderr, preexec_fn=_guard
        )
    sampled, largest, timed_out = 0, 0, False
    while True:
        pid, status = os.waitpid(child.pid, os.WNOHANG)
        if pid:
            break
        together, alone = _tree_rss(child.pid)
        sampled, largest = max(sampled, together), max(largest, alone)
        if time.monotonic() - start > timeout and not timed_out:
            timed_out = True
            child.kill()
        time.sleep(0.05)
    seconds = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    texts = [path.read_text(errors="replace") for path in (out, err)]
    out.unlink()
    err.unlink()
    return Run(child.returncode, seconds, sampled, largest, *texts, timed_out)
