"""Files locked with a password are named as such (domain.md, "Password-protected files"): the
unit is asked to send them again without the password, never told they are damaged."""

import datetime as dt
import email
import email.policy
import io
import struct
import zipfile

import pytest
import xlwt
from mails import DOCX, TZ, XLSX, docx_bytes, make_mail, stats_xlsx
from msoffcrypto.format.ooxml import OOXMLFile
from xlwt import CompoundDoc

from mailproc.read.kinds import PROTECTED_MEMBER, Container, password_protected
from mailproc.read.mail import parse_message, sniff_kind
from mailproc.read.tables import PASSWORD_PROTECTED, UnreadableFile, read_stats
from mailproc.rules import load_rules

RULES = load_rules("rules")
PDF = "application/pdf"
XLS = "application/vnd.ms-excel"


def encrypted_ooxml(plain: bytes) -> bytes:
    """An xlsx or docx saved with a password, as Office saves it (ECMA-376 agile encryption)."""
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt("1234", out)
    return out.getvalue()


def plain_xls() -> bytes:
    book = xlwt.Workbook()
    book.add_sheet("附件1").write(0, 0, "填报单位")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xls_with_filepass() -> bytes:
    """A BIFF8 workbook announcing RC4 encryption: a FILEPASS record (type 1, RC4 header 1.1)
    right after the globals' BOF, as Excel writes one. Nothing here writes real RC4 xls, so
    the cells themselves stay plain: the record is what every reader (and the check) goes by."""
    book = xlwt.Workbook()
    book.add_sheet("附件1").write(0, 0, "填报单位")
    stream = book.get_biff_data()
    bof = 4 + struct.unpack_from("<H", stream, 2)[0]
    filepass = struct.pack("<HHHHH", 0x002F, 54, 1, 1, 1) + bytes(48)
    out = io.BytesIO()
    CompoundDoc.XlsDoc().save(out, stream[:bof] + filepass + stream[bof:])
    return out.getvalue()


def xls_with_xor_filepass() -> bytes:
    """A BIFF8 workbook obfuscated with Excel 95's XOR method: FILEPASS of type 0, key and
    verifier."""
    book = xlwt.Workbook()
    book.add_sheet("附件1").write(0, 0, "填报单位")
    stream = book.get_biff_data()
    bof = 4 + struct.unpack_from("<H", stream, 2)[0]
    filepass = struct.pack("<HHHHH", 0x002F, 6, 0, 0x1234, 0x5678)
    out = io.BytesIO()
    CompoundDoc.XlsDoc().save(out, stream[:bof] + filepass + stream[bof:])
    return out.getvalue()


def word_97(encrypted: bool) -> bytes:
    """A compound file whose one stream is a Word 97 WordDocument: the FIB's magic, version,
    language, next page, and its flags word (at 0x0A) with fEncrypted (bit 8) set when saved
    with a password. xlwt writes the compound file; its one stream is renamed in the
    directory entry."""
    fib = bytearray(2048)
    struct.pack_into("<6H", fib, 0, 0xA5EC, 0x00C1, 0, 0, 0, 0x0100 if encrypted else 0)
    out = io.BytesIO()
    CompoundDoc.XlsDoc().save(out, bytes(fib))
    raw = bytearray(out.getvalue())
    entry = raw.index("Workbook".encode("utf-16-le"))
    name = "WordDocument\0".encode("utf-16-le")
    raw[entry : entry + 64] = name.ljust(64, b"\0")
    struct.pack_into("<H", raw, entry + 64, len(name))
    return bytes(raw)


def pdf(encrypted: bool) -> bytes:
    """A one-object PDF; with a password its trailer names the standard security handler's
    dictionary (/Encrypt), as every encrypted PDF's does."""
    encrypt = b"3 0 obj\n<< /Filter /Standard /V 1 /R 2 /P -4 /O <00> /U <00> >>\nendobj\n"
    trailer = b"/Root 1 0 R" + (b" /Encrypt 3 0 R" if encrypted else b"")
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        + (encrypt if encrypted else b"")
        + b"trailer\n<< "
        + trailer
        + b" >>\n%%EOF\n"
    )


def zip_of(name: str, data: bytes, encrypted: bool) -> bytes:
    """A zip of one member; an encrypted one carries flag bit 0 in its local and central
    headers as a password-protected zip does (its bytes are not really enciphered: the flag
    is what readers go by)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, data)
    raw = bytearray(out.getvalue())
    if encrypted:
        raw[6] |= 0x1  # the local header comes first, the central one after the data
        raw[raw.rindex(b"PK\x01\x02") + 8] |= 0x1
    return bytes(raw)


XLSX_LOCKED = encrypted_ooxml(stats_xlsx())
DOCX_LOCKED = encrypted_ooxml(docx_bytes())


@pytest.mark.parametrize(
    ("name", "data", "protected"),
    [
        ("附件1.xlsx", XLSX_LOCKED, True),
        ("方案.docx", DOCX_LOCKED, True),
        ("附件1.xls", xls_with_filepass(), True),
        ("附件1.xls", xls_with_xor_filepass(), True),
        ("方案.doc", word_97(encrypted=True), True),
        ("方案.doc", word_97(encrypted=False), False),
        ("方案.pdf", pdf(encrypted=True), True),
        ("材料.zip", zip_of("附件1.xlsx", stats_xlsx(), encrypted=True), True),
        ("附件1.xlsx", stats_xlsx(), False),
        ("方案.docx", docx_bytes(), False),
        ("附件1.xls", plain_xls(), False),
        ("方案.pdf", pdf(encrypted=False), False),
        ("材料.zip", zip_of("附件1.xlsx", stats_xlsx(), encrypted=False), False),
        ("附件1.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000), False),  # damaged
        ("附件1.xlsx", XLSX_LOCKED[:3000], False),  # cut off: damaged, not judged
        ("附件1.xlsx", b"", False),
        ("附件1.csv", "单位,场次\n东风镇,3\n".encode(), False),
    ],
)
def test_password_protected_is_read_from_the_bytes(name, data, protected):
    assert password_protected(Container(data), sniff_kind(data, name)) is protected


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("附件1.xlsx", XLSX_LOCKED),
        ("附件1.docx", DOCX_LOCKED),
        ("附件1.xls", xls_with_filepass()),
        ("附件1.xls", xls_with_xor_filepass()),
        ("附件1.doc", word_97(encrypted=True)),
    ],
)
def test_a_protected_table_is_unreadable_as_protected(name, data):
    with pytest.raises(UnreadableFile) as raised:
        read_stats(data, name, sniff_kind(data, name), RULES)
    assert str(raised.value) == PASSWORD_PROTECTED


def reply_to(pipeline, raw: bytes) -> tuple[dict, str]:
    outcome = pipeline.ingest(raw, source="test")
    row = pipeline.db["messages"].get(outcome.message_pk)
    notice = next(pipeline.db["outbox"].rows_where("message = ?", [outcome.message_pk]))
    body = email.message_from_string(notice["eml"], policy=email.policy.default)
    return row, body.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("subject", "files", "named"),
    [
        ("东风镇第2周周报", [("附件1.xlsx", XLSX_LOCKED, XLSX)], "附件1.xlsx"),
        ("东风镇活动方案", [("方案.docx", DOCX_LOCKED, DOCX)], "方案.docx"),
        ("东风镇活动方案", [("方案.pdf", pdf(encrypted=True), PDF)], "方案.pdf"),
        (
            "东风镇活动方案",
            [("方案.doc", word_97(encrypted=True), "application/msword")],
            "方案.doc",
        ),
        ("东风镇第2周周报", [("附件1.xls", xls_with_xor_filepass(), XLS)], "附件1.xls"),
        (
            "东风镇第2周周报",
            [("材料.zip", zip_of("附件1.xlsx", stats_xlsx(), True), "application/zip")],
            "附件1.xlsx",
        ),
    ],
)
def test_the_unit_is_asked_for_the_file_without_its_password(pipeline, subject, files, named):
    received = dt.datetime(2019, 6, 12, 9, tzinfo=TZ)
    row, text = reply_to(pipeline, make_mail(subject, received=received, files=files))
    assert (row["reply"], row["problems"]) == ("missing", '["unreadable_file"]')
    assert f"  · {named}：{PASSWORD_PROTECTED}\n" in text
    assert "损坏" not in text


def test_an_encrypted_zip_member_is_marked_when_the_zip_is_unpacked():
    raw = make_mail(
        "东风镇第2周周报",
        files=[("材料.zip", zip_of("附件1.xlsx", stats_xlsx(), True), "application/zip")],
    )
    (member,) = parse_message(raw).attachments
    assert (member.filename, member.from_archive) == ("附件1.xlsx", "材料.zip")
    assert PROTECTED_MEMBER in member.problems
