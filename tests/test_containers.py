"""Files that hold files — Outlook's winmail.dat, 7z, rar, zip — count as the mail's
attachments; one that cannot be opened is an unreadable file, worded by its format (domain.md,
"Containers"). OFD is a document, never unpacked; a HEIC photo is a photo.

Every container here is built in the test: 7z by py7zr, winmail.dat and RAR 5 byte by byte
from their published layouts ([MS-OXTNEF]; RARLAB's "RAR 5.0 archive format"), since nothing
free writes RAR.
"""

import dataclasses
import datetime as dt
import email
import email.policy
import io
import json
import random
import shutil
import struct
import zipfile
import zlib

import py7zr
import pytest
import rarfile
from mails import TZ, docx_bytes, make_mail, stats_xlsx, zip_with

from mailproc.classify import Classifier
from mailproc.read.budget import Budget, Limits
from mailproc.read.containers import FORMAT_NAMES, Unopened, members, why_unopened
from mailproc.read.kinds import PROTECTED_MEMBER, Container
from mailproc.read.mail import _decode_bytes as decode
from mailproc.read.mail import parse_message, sniff_kind
from mailproc.read.tables import PASSWORD_PROTECTED
from mailproc.rules import load_rules

TNEF_TYPE = "application/ms-tnef"
SEVEN_ZIP = "application/x-7z-compressed"
RAR = "application/vnd.rar"
OFD = "application/ofd"
FILES = Classifier(load_rules("rules")).files


# --- builders ------------------------------------------------------------------------------


def tnef_attribute(level: int, attr_id: int, attr_type: int, data: bytes) -> bytes:
    """One TNEF attribute: level, id, type, length, the data, and its checksum (the sum of
    the data's bytes, modulo 65536)."""
    head = bytes([level]) + struct.pack("<HHI", attr_id, attr_type, len(data))
    return head + data + struct.pack("<H", sum(data) & 0xFFFF)


def mapi_name(name: str | bytes) -> bytes:
    """The attachment's MAPI properties holding only its long file name (PidTagAttach-
    LongFilename, 0x3707): UTF-16 as a unicode property, or bytes in the codepage."""
    unicode = isinstance(name, str)
    value = (name + "\0").encode("utf-16-le") if unicode else name + b"\0"
    prop = struct.pack("<HHII", 0x001F if unicode else 0x001E, 0x3707, 1, len(value))
    return struct.pack("<I", 1) + prop + value + bytes(-len(value) % 4)


def winmail_dat(files: list[tuple[bytes, bytes, str | bytes | None]], codepage: int = 936) -> bytes:
    """A TNEF stream as Outlook's rich-text mode writes it: version, OEM codepage, message
    class, then per file its rendering, title (8.3 bytes in the codepage), data and, when
    given, its MAPI long file name. `files` holds (title, data, long name)."""
    out = struct.pack("<IH", 0x223E9F78, 0x0101)
    out += tnef_attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))
    out += tnef_attribute(1, 0x9007, 0x0006, struct.pack("<II", codepage, 0))
    out += tnef_attribute(1, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\0")
    for title, data, long_name in files:
        rendering = struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0, 0, 0)
        out += tnef_attribute(2, 0x9002, 0x0006, rendering)
        out += tnef_attribute(2, 0x8010, 0x0001, title + b"\0")
        out += tnef_attribute(2, 0x800F, 0x0006, data)
        if long_name is not None:
            out += tnef_attribute(2, 0x9005, 0x0006, mapi_name(long_name))
    return out


def vint(number: int) -> bytes:
    """RAR 5's variable-length integer: 7 bits a byte, lowest first, high bit = more."""
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def rar_block(kind: int, fields: bytes, extra: bytes = b"", data: bytes | None = None) -> bytes:
    """One RAR 5 header: CRC32, size, type, flags (0x1 extra area, 0x2 data area), the sizes
    of those areas, the type's fields, the extra area; then the data."""
    flags = (0x1 if extra else 0) | (0x2 if data is not None else 0)
    body = vint(kind) + vint(flags)
    body += vint(len(extra)) if extra else b""
    body += vint(len(data)) if data is not None else b""
    body += fields + extra
    sized = vint(len(body)) + body
    return struct.pack("<I", zlib.crc32(sized)) + sized + (data or b"")


RAR5_SIGNATURE = b"Rar!\x1a\x07\x01\x00"
RAR_STORE, RAR_NORMAL = 0, 3  # compression methods: 0 stores, 1–5 compress


def rar5(files: list[tuple[str, bytes, int, bool]], locked_names: bool = False) -> bytes:
    """A RAR 5 archive of (name, data, method, encrypted) files. An encrypted file carries
    the file-encryption extra record (AES-256, KDF count, salt, IV); `locked_names` writes
    the archive-encryption header, after which every header is enciphered."""
    out = RAR5_SIGNATURE
    if locked_names:
        return out + rar_block(4, vint(0) + vint(0) + bytes([15]) + bytes(16)) + bytes(64)
    out += rar_block(1, vint(0))  # main archive header, no flags
    for name, data, method, encrypted in files:
        encoded = name.encode()
        extra = b""
        if encrypted:
            record = vint(0x01) + vint(0) + vint(0) + bytes([15]) + bytes(16) + bytes(16)
            extra = vint(len(record)) + record
        fields = vint(0x4) + vint(len(data)) + vint(0x20) + struct.pack("<I", zlib.crc32(data))
        fields += vint(method << 7) + vint(0) + vint(len(encoded)) + encoded
        out += rar_block(2, fields, extra, data)
    return out + rar_block(5, vint(0))  # end of archive


def seven_zip(files: dict[str, bytes], password: str | None = None, names: bool = False) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password, header_encryption=names) as archive:
        for name, data in files.items():
            archive.writestr(data, name)
    return out.getvalue()


def ofd() -> bytes:
    """An OFD package: OFD.xml at the root, the document's XML parts beneath."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr("OFD.xml", '<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"/>')
        package.writestr("Doc_0/Document.xml", "<ofd:Document/>")
        package.writestr("Doc_0/Pages/Page_0/Content.xml", "<ofd:Page/>")
    return out.getvalue()


def heic() -> bytes:
    """The start of an iPhone photo: an ftyp box of brand heic, then a meta box."""
    return struct.pack(">I", 24) + b"ftypheic" + struct.pack(">I", 0) + b"mif1heic" + bytes(64)


def attachments(files: list[tuple[str, bytes, str]], budget: Budget | None = None) -> list:
    return parse_message(make_mail("东风镇第2周周报", files=files), budget).attachments


def listed(atts: list) -> list[tuple[str, str, str | None]]:
    return [(a.filename, a.kind, a.from_archive) for a in atts]


STATS = stats_xlsx()
DOCUMENT = docx_bytes()
BOTH = {"附件1.xlsx": STATS, "活动方案.docx": DOCUMENT}


# --- winmail.dat ---------------------------------------------------------------------------


def test_winmail_dat_files_are_the_mails_with_their_gbk_names():
    dat = winmail_dat(
        [
            ("附件1~1.XLS".encode("gbk"), STATS, "附件1（东风镇）.xlsx".encode("gbk")),
            ("方案~1.DOC".encode("gbk"), DOCUMENT, "活动方案.docx"),
            ("说明.txt".encode("gbk"), "本周活动见附件".encode("gbk"), None),
        ]
    )
    assert sniff_kind(dat, "winmail.dat") == "tnef"
    atts = attachments([("winmail.dat", dat, TNEF_TYPE)])
    assert listed(atts) == [
        ("附件1（东风镇）.xlsx", "xlsx", "winmail.dat"),
        ("活动方案.docx", "docx", "winmail.dat"),
        ("说明.txt", "text", "winmail.dat"),
    ]
    assert [a.data for a in atts[:2]] == [STATS, DOCUMENT]


def test_winmail_dat_with_the_body_alone_brings_no_file():
    assert attachments([("winmail.dat", winmail_dat([]), TNEF_TYPE)]) == []


@pytest.mark.parametrize("cut", [3, 20])
def test_a_damaged_winmail_dat_stays_one_unreadable_file(cut):
    dat = winmail_dat([(b"A.XLS", STATS, None)])[:cut]
    (att,) = attachments([("winmail.dat", dat, TNEF_TYPE)])
    assert (att.kind, att.problems) == ("tnef", ["tnef not opened: damaged"])
    (check,) = FILES.check_files([att])
    assert check.error.startswith("winmail.dat（Outlook 邮件附件包）已损坏或不完整，无法解开")
    assert "HTML" in check.error


# --- 7z ------------------------------------------------------------------------------------


def test_7z_files_are_the_mails():
    atts = attachments([("材料.7z", seven_zip(BOTH | {"照片/现场.txt": b"x"}), SEVEN_ZIP)])
    assert listed(atts) == [
        ("附件1.xlsx", "xlsx", "材料.7z"),
        ("活动方案.docx", "docx", "材料.7z"),
        ("照片/现场.txt", "text", "材料.7z"),
    ]
    assert atts[0].data == STATS


def test_a_7z_with_a_password_names_its_files_as_locked():
    atts = attachments([("材料.7z", seven_zip(BOTH, password="1234"), SEVEN_ZIP)])
    assert [(a.filename, PROTECTED_MEMBER in a.problems, a.data) for a in atts] == [
        ("附件1.xlsx", True, b""),
        ("活动方案.docx", True, b""),
    ]
    assert {c.error for c in FILES.check_files(atts)} == {PASSWORD_PROTECTED}


def test_a_7z_with_locked_names_is_one_locked_file():
    (att,) = attachments([("材料.7z", seven_zip(BOTH, "1234", names=True), SEVEN_ZIP)])
    assert att.problems == ["7z not opened: password-protected"]
    assert why_unopened(att) == "7z 压缩文件设有密码，无法解开，请取消密码后重新发送"


def test_a_cut_7z_is_damaged():
    data = seven_zip(BOTH)
    (att,) = attachments([("材料.7z", data[: len(data) // 2], SEVEN_ZIP)])
    assert (att.kind, att.problems) == ("7z", ["7z not opened: damaged"])
    assert why_unopened(att) == "7z 压缩文件已损坏或不完整，无法解开"


def test_a_7z_draws_on_the_same_budget_as_the_mails_zip():
    """The zip takes most of the mail's budget; the 7z after it no longer fits."""
    big = bytes(range(256)) * 40  # 10 KB, barely compressible by neither
    budget = Budget.of(dataclasses.replace(Limits(), unpacked_bytes=15_000))
    atts = attachments(
        [
            ("一.zip", zip_with([("a.bin", big, True)]), "application/zip"),
            ("二.7z", seven_zip({"b.bin": big}), SEVEN_ZIP),
        ],
        budget,
    )
    assert [(a.filename, a.problems) for a in atts] == [
        ("a.bin", []),
        ("二.7z", ["7z not opened: unpacked size over the limit"]),
    ]
    assert budget.unpacked_bytes == 15_000 - len(big)


def test_7z_inside_a_zip_is_opened_and_no_deeper():
    inner = seven_zip({"附件1.xlsx": STATS, "更深.7z": seven_zip({"x.txt": b"x"})})
    atts = attachments([("材料.zip", zip_with([("内层.7z", inner, True)]), "application/zip")])
    assert [(a.filename, a.from_archive, a.problems) for a in atts] == [
        ("附件1.xlsx", "材料.zip/内层.7z", []),
        ("更深.7z", "材料.zip/内层.7z", ["7z not opened: nested too deep"]),
    ]
    assert why_unopened(atts[1]) == "7z 压缩文件内又套有多层压缩文件，未解开，请直接发送文件本身"


# --- rar -----------------------------------------------------------------------------------


def test_a_stored_rar_is_read_here():
    files = [("附件1.xlsx", STATS, RAR_STORE, False), ("方案/活动方案.docx", DOCUMENT, 0, False)]
    data = rar5(files)
    assert sniff_kind(data, "材料.rar") == "rar"
    atts = attachments([("材料.rar", data, RAR)])
    assert listed(atts) == [
        ("附件1.xlsx", "xlsx", "材料.rar"),
        ("方案/活动方案.docx", "docx", "材料.rar"),
    ]
    assert [a.data for a in atts] == [STATS, DOCUMENT]


@pytest.fixture
def no_rar_reader(monkeypatch):
    """rarfile pointed at tools that are not there, as on a machine without unar or unrar."""
    for tool in ("UNRAR_TOOL", "UNAR_TOOL", "BSDTAR_TOOL", "SEVENZIP_TOOL", "SEVENZIP2_TOOL"):
        monkeypatch.setattr(rarfile, tool, "/nonexistent/mailproc-test-tool")
    monkeypatch.setattr(rarfile, "CURRENT_SETUP", None)


def test_a_compressed_rar_without_a_reader_names_the_format(no_rar_reader):
    data = rar5([("附件1.xlsx", STATS, RAR_NORMAL, False)])
    (att,) = attachments([("材料.rar", data, RAR)])
    assert (att.kind, att.problems) == ("rar", ["rar not opened: no reader installed"])
    (check,) = FILES.check_files([att])
    assert check.error == "本处无法打开RAR 压缩文件，请改用 zip 格式压缩，或直接发送文件本身"


def test_a_stored_rar_needs_no_reader(no_rar_reader):
    atts = attachments([("材料.rar", rar5([("附件1.xlsx", STATS, RAR_STORE, False)]), RAR)])
    assert listed(atts) == [("附件1.xlsx", "xlsx", "材料.rar")]


@pytest.mark.skipif(shutil.which("unar") is None, reason="unar is not installed")
def test_a_rar_whose_compressed_data_is_broken_is_damaged():
    data = rar5([("附件1.xlsx", b"not what RAR compression makes", RAR_NORMAL, False)])
    (att,) = attachments([("材料.rar", data, RAR)])
    assert att.problems == ["rar not opened: damaged"]


def test_a_rar_with_a_password():
    locked = rar5([("附件1.xlsx", STATS, RAR_STORE, True)])
    (member,) = attachments([("材料.rar", locked, RAR)])
    assert (member.filename, PROTECTED_MEMBER in member.problems) == ("附件1.xlsx", True)
    (att,) = attachments([("材料.rar", rar5([], locked_names=True), RAR)])
    assert why_unopened(att) == "RAR 压缩文件设有密码，无法解开，请取消密码后重新发送"


def test_a_cut_rar_is_damaged():
    data = rar5([("附件1.xlsx", STATS, RAR_STORE, False)])
    (att,) = attachments([("材料.rar", data[:40], RAR)])
    assert why_unopened(att) == "RAR 压缩文件已损坏或不完整，无法解开"


# --- zip, as the other containers ----------------------------------------------------------


def test_a_damaged_or_empty_zip_is_unreadable_not_passed_over():
    cut = zip_with([("附件1.xlsx", STATS, True)])[:-30]
    empty = zipfile.ZipFile(buf := io.BytesIO(), "w")
    empty.close()
    atts = attachments([("a.zip", cut, "application/zip"), ("b.zip", buf.getvalue(), "x/y")])
    errors = [c.error for c in FILES.check_files(atts)]
    assert errors == ["ZIP 压缩文件已损坏或不完整，无法解开", "ZIP 压缩文件内没有文件"]


def test_every_container_wording_is_chinese_and_never_damaged_for_a_password():
    for kind in FORMAT_NAMES:
        for reason, text in (("password-protected", "设有密码"), ("damaged", "损坏")):
            att = dataclasses.replace(
                attachments([("a.txt", b"x", "text/plain")])[0],
                kind=kind,
                problems=[f"{kind} not opened: {reason}"],
            )
            worded = why_unopened(att)
            latin = (
                worded.replace(FORMAT_NAMES[kind], "").replace("Outlook", "").replace("HTML", "")
            )
            assert text in worded and not any("a" <= c.lower() <= "z" for c in latin)
            assert reason == "damaged" or "损坏" not in worded


# --- OFD and HEIC --------------------------------------------------------------------------


def test_ofd_is_a_document_never_unpacked():
    (att,) = attachments([("活动方案.ofd", ofd(), OFD)])
    assert (att.filename, att.kind, att.problems) == ("活动方案.ofd", "ofd", [])
    (check,) = FILES.check_files([att])
    assert (check.role, check.error) == ("document", None)


def test_a_cut_ofd_is_a_damaged_document():
    (att,) = attachments([("活动方案.ofd", ofd()[:-40], OFD)])
    (check,) = FILES.check_files([att])
    assert (att.kind, check.role) == ("ofd", "document") and "损坏" in check.error


def test_heic_is_a_photo_and_video_is_not():
    assert sniff_kind(heic(), "IMG_0001.HEIC") == "image"
    video = struct.pack(">I", 24) + b"ftypisom" + bytes(80)
    assert sniff_kind(video, "IMG_0002.MOV") == "other"
    (check,) = FILES.check_files(attachments([("IMG_0001.HEIC", heic(), "image/heic")]))
    assert check.role == "image"


# --- end to end: what the unit is told -----------------------------------------------------


def reply(pipeline, subject: str, files: list) -> tuple[dict, str]:
    received = dt.datetime(2019, 6, 12, 9, tzinfo=TZ)
    outcome = pipeline.ingest(make_mail(subject, received=received, files=files), source="t")
    row = pipeline.db["messages"].get(outcome.message_pk)
    notice = next(pipeline.db["outbox"].rows_where("message = ?", [outcome.message_pk]))
    body = email.message_from_string(notice["eml"], policy=email.policy.default)
    return row, body.get_body(("plain",)).get_content()


def test_a_weekly_report_in_winmail_dat_is_acknowledged_with_its_figures(pipeline):
    dat = winmail_dat([("附件1.XLS".encode("gbk"), STATS, "附件1 统计表.xlsx".encode("gbk"))])
    row, text = reply(pipeline, "东风镇第2周周报", [("winmail.dat", dat, TNEF_TYPE)])
    assert (row["reply"], json.loads(row["problems"])) == ("ack", [])
    assert "附件1 统计表.xlsx" in text and "winmail" not in text


def test_a_weekly_report_in_a_7z_is_acknowledged(pipeline):
    row, text = reply(pipeline, "东风镇第2周周报", [("材料.7z", seven_zip(BOTH), SEVEN_ZIP)])
    assert (row["reply"], json.loads(row["problems"])) == ("ack", [])
    assert "附件1.xlsx" in text and "活动方案.docx" in text


def test_a_plan_in_a_stored_rar_and_as_ofd_is_acknowledged(pipeline):
    rar = rar5([("活动方案.docx", DOCUMENT, RAR_STORE, False)])
    row, _ = reply(pipeline, "东风镇活动方案", [("方案.rar", rar, RAR)])
    assert (row["item"], row["reply"]) == ("plan", "ack")
    row, text = reply(pipeline, "新兴镇活动方案", [("方案.ofd", ofd(), OFD)])
    assert (row["item"], row["reply"]) == ("plan", "ack")
    assert "方案.ofd（文档）" in text


def test_a_locked_7z_asks_for_the_files_without_a_password(pipeline):
    locked = seven_zip(BOTH, "1234", names=True)
    row, text = reply(pipeline, "东风镇第2周周报", [("材料.7z", locked, SEVEN_ZIP)])
    assert (row["reply"], json.loads(row["problems"])) == ("missing", ["unreadable_file"])
    assert "  · 材料.7z：7z 压缩文件设有密码，无法解开，请取消密码后重新发送\n" in text
    assert "损坏" not in text


@pytest.mark.skipif(shutil.which("unar") is None, reason="unar is not installed")
def test_a_damaged_rar_is_named_damaged(pipeline):
    rar = rar5([("附件1.xlsx", b"broken", RAR_NORMAL, False)])
    row, text = reply(pipeline, "东风镇第2周周报", [("材料.rar", rar, RAR)])
    assert (row["reply"], json.loads(row["problems"])) == ("missing", ["unreadable_file"])
    assert "  · 材料.rar：RAR 压缩文件已损坏或不完整，无法解开\n" in text


# --- damaged in every way: never past the container ----------------------------------------


@pytest.mark.parametrize("kind", ["tnef", "7z", "rar", "zip"])
def test_a_damaged_container_is_shut_or_read_never_raises(kind):
    """Seeded damage to each kind of container (cut, bytes changed in its headers or
    anywhere): what comes out is its files or the reason it stays shut, nothing else — a
    broken deflate stream in a zip member once escaped and cost the whole mail."""
    whole = {
        "tnef": winmail_dat([("附件1.XLS".encode("gbk"), STATS, "附件1.xlsx".encode("gbk"))]),
        "7z": seven_zip(BOTH),
        "rar": rar5([("附件1.xlsx", STATS, RAR_STORE, False), ("b", b"b", RAR_STORE, True)]),
        "zip": zip_with([("附件1.xlsx", STATS, True)]),
    }[kind]
    rng = random.Random(f"{kind}-20190613")
    outcomes = set()
    for _ in range(150):
        data = bytearray(whole)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        else:
            reach = 400 if rng.random() < 0.5 else len(data)
            for _ in range(rng.randint(1, 16)):
                data[rng.randrange(min(reach, len(data)))] = rng.randrange(256)
        try:
            members(kind, Container(bytes(data)), Budget.of(Limits()), decode)
            outcomes.add("read")
        except Unopened as shut:
            outcomes.add(str(shut))
    assert "damaged" in outcomes
