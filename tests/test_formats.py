"""附件1 from every format a unit really sends it in: a PDF printed from WPS, an old binary .doc
or .wps, xlsm and xlsb, Excel's "Unicode text"; and pictures of the table, which are no table.

The PDFs, workbooks and pictures are built here. The two .doc files under tests/data/ were
made on a machine with LibreOffice, from .docx files built with python-docx
(`soffice --headless --convert-to doc`): stats-single.doc holds 唐家镇's table with a one-level
header, stats-two-level.doc 东风镇's with the merged two-level header of test_sheets.
"""

import datetime as dt
import email
import io
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import zipfile
from email import policy
from pathlib import Path

import openpyxl
import pytest
from conftest import ROOT
from mails import DOCX, TZ, XLSX, docx_bytes, make_mail
from PIL import Image
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from test_sheets import EXPECTED, FIGURES, GROUPS, NOTE, REPORTER_LINE, SUBS, TITLE

from mailproc.cli import message_records
from mailproc.read.kinds import Container
from mailproc.read.mail import sniff_kind
from mailproc.read.tables import PDF_DAMAGED, UnreadableFile, open_file, read_stats
from mailproc.read.word import converted_to_docx
from mailproc.rules import load_rules

RULES = load_rules(ROOT / "rules")
DATA = Path(__file__).parent / "data"
PDF = "application/pdf"
DOC = "application/msword"
SINGLE_DOC = (DATA / "stats-single.doc").read_bytes()
TWO_LEVEL_DOC = (DATA / "stats-two-level.doc").read_bytes()
SINGLE_EXPECTED = {"lectures": 4, "lecture_attendance": 300, "drills": 2, "media_reports": 1}
HAS_SOFFICE = shutil.which("soffice") is not None or shutil.which("libreoffice") is not None
HAS_ANTIWORD = shutil.which("antiword") is not None
# Merged cells of the template's two header rows (columns from 0): 单位 down, each group across
SPANS = [((0, 0), (0, 1)), *(((c, 0), (c + 1, 0)) for c in (1, 3, 6, 8, 10, 13))]

pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # Adobe's Chinese font, not embedded
TEXT = ParagraphStyle("text", fontName="STSong-Light", fontSize=9)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2019, 6, day, hour, minute, tzinfo=TZ)


# ---------------------------------------------------------------------------------------------
# Files built here


def table_pdf(
    rows: list[list[object]],
    spans: list = (),
    above: list[str] = (),
    below: list[str] = (),
    ruled: bool = True,
    pages_before: list[str] = (),
) -> bytes:
    """A landscape PDF as WPS prints a sheet: text pages first, then lines above the table,
    the table (ruled, with merged cells), and notes below."""
    table = Table([["" if v is None else str(v) for v in row] for row in rows])
    style = [("FONT", (0, 0), (-1, -1), "STSong-Light", 7)]
    style += [("SPAN", *span) for span in spans]
    if ruled:
        style.append(("GRID", (0, 0), (-1, -1), 0.5, "black"))
    table.setStyle(TableStyle(style))
    flow: list = []
    for text in pages_before:
        flow += [Paragraph(text, TEXT), PageBreak()]
    flow += [Paragraph(line, TEXT) for line in above]
    flow += [Spacer(1, 6), table, *(Paragraph(line, TEXT) for line in below)]
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=landscape(A4)).build(flow)
    return out.getvalue()


def template_pdf(**kwargs) -> bytes:
    """附件1 printed to PDF: title, 填报单位 line, the merged two-level header, 东风镇's row."""
    rows = [GROUPS, SUBS, ["东风镇", *FIGURES]]
    return table_pdf(rows, SPANS, [TITLE, REPORTER_LINE], [NOTE], **kwargs)


def picture(fmt: str = "PNG") -> bytes:
    """A photo of a table: grey lines on white, no text anywhere."""
    image = Image.new("RGB", (240, 120), "white")
    for y in range(10, 120, 20):
        image.paste((90, 90, 90), (10, y, 230, y + 1))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def scanned_pdf() -> bytes:
    """A scanner's PDF: each page one picture, no text layer."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.drawImage(ImageReader(io.BytesIO(picture())), 50, 500, width=480, height=240)
    page.showPage()
    page.save()
    return out.getvalue()


SINGLE_ROWS = [
    ["填报单位：区教育局"],
    ["单位", "宣讲场次", "演练场次", "媒体报道篇数"],
    ["区教育局", 3, 2, 1],
]
SINGLE_FIGURES = {"lectures": 3, "drills": 2, "media_reports": 1}


def xlsm(rows: list[list[object]]) -> bytes:
    """A workbook with macros enabled, as Excel saves .xlsm: an xlsx whose workbook part has
    the macro-enabled content type."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"spreadsheetml.sheet.main+xml", b"ms-excel.sheet.macroEnabled.main+xml"
                )
            z.writestr(info, data)
    return out.getvalue()


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        out.append((number & 0x7F) | (0x80 if number > 0x7F else 0))
        number >>= 7
        if not number:
            return bytes(out)


def _record(kind: int, payload: bytes = b"") -> bytes:
    """One BIFF12 record: its type and size as 7-bit varints, then the payload."""
    return _varint(kind) + _varint(len(payload)) + payload


def _wide(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def xlsb(rows: list[list[object]], sheet: str = "附件1") -> bytes:
    """An Excel binary workbook (.xlsb): the workbook and one sheet as BIFF12 records, texts
    inline (BrtCellSt), numbers as doubles (BrtCellReal)."""
    book = _record(0x83) + _record(0x8F)  # BrtBeginBook, BrtBeginBundleShs
    book += _record(0x9C, struct.pack("<II", 0, 1) + _wide("rId1") + _wide(sheet))
    book += _record(0x90) + _record(0x84)  # BrtEndBundleShs, BrtEndBook
    width = max(map(len, rows))
    cells = _record(0x81) + _record(0x94, struct.pack("<IIII", 0, len(rows) - 1, 0, width - 1))
    cells += _record(0x91)  # BrtBeginSheetData
    for r, row in enumerate(rows):
        cells += _record(0x00, struct.pack("<I", r) + bytes(13))  # BrtRowHdr
        for c, value in enumerate(row):
            head = struct.pack("<II", c, 0)
            if isinstance(value, str):
                cells += _record(0x06, head + _wide(value))
            else:
                cells += _record(0x05, head + struct.pack("<d", value))
    cells += _record(0x92) + _record(0x82)  # BrtEndSheetData, BrtEndSheet
    relationships = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        "schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
        '" Target="worksheets/sheet1.bin"/></Relationships>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("xl/workbook.bin", book)
        package.writestr("xl/_rels/workbook.bin.rels", relationships)
        package.writestr("xl/worksheets/sheet1.bin", cells)
    return out.getvalue()


def unicode_text(rows: list[list[object]]) -> bytes:
    """Excel's 另存为“Unicode 文本”: UTF-16 little-endian with its mark, tabs between cells."""
    lines = ["\t".join(str(v) for v in row) for row in rows]
    return "\ufeff".encode("utf-16-le") + "\r\n".join(lines).encode("utf-16-le") + b"\r\0\n\0"


def only_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *programs: str) -> None:
    """PATH with only these programs of the machine: as on a machine where the others are not
    installed."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in programs:
        os.symlink(shutil.which(name), folder / name)
    monkeypatch.setenv("PATH", str(folder))


def opened(data: bytes, filename: str, seconds: float | None = None):
    return open_file(Container(data), filename, sniff_kind(data, filename), seconds=seconds)


# ---------------------------------------------------------------------------------------------
# PDF


def test_a_pdf_printed_from_the_sheet_reads_like_the_sheet() -> None:
    data = template_pdf()
    assert sniff_kind(data, "附件1.pdf") == "pdf"
    table = read_stats(data, "附件1.pdf", "pdf", RULES)
    assert table is not None
    assert table.values == EXPECTED
    assert table.reporter == "东风镇人民政府"
    assert (table.sheet, table.bad_cells, table.row_label) == ("第1页表格1", [], "东风镇")


def test_the_table_on_a_later_page_of_a_summary_and_its_drift() -> None:
    """A summary's text first, then 附件1 with a one-level header, approximations, a dash."""
    rows = [["单位", "宣讲场次", "宣讲参加人次", "演练场次", "媒体报道篇数"],
            ["唐家镇", "4场", "约300", "2", "—"]]  # fmt: skip
    data = table_pdf(rows, above=["填报单位：唐家镇"], pages_before=["一、活动开展情况……"])
    table = read_stats(data, "唐家镇总结.pdf", "pdf", RULES)
    assert table is not None
    assert table.values == {**SINGLE_EXPECTED, "media_reports": 0}
    assert table.sheet == "第2页表格1"
    assert table.reporter == "唐家镇"
    assert [(c.column, c.text) for c in table.approximations] == [("lecture_attendance", "约300")]


def test_a_table_without_rules_is_not_guessed() -> None:
    assert read_stats(template_pdf(ruled=False), "附件1.pdf", "pdf", RULES) is None


def test_a_scan_is_a_picture_and_text_is_not() -> None:
    scan = opened(scanned_pdf(), "统计表.pdf")
    assert scan is not None
    assert (scan.picture, scan.grids) == (True, [])
    text = opened(template_pdf(), "统计表.pdf")
    assert text is not None
    assert text.picture is False


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut off in transfer
        lambda data: data[:9] + bytes(len(data) - 9),  # its body zeroed
    ],
)
def test_a_damaged_pdf_is_unreadable_in_chinese(damage) -> None:
    with pytest.raises(UnreadableFile) as refused:
        read_stats(damage(template_pdf()), "附件1.pdf", "pdf", RULES)
    assert str(refused.value) == PDF_DAMAGED


# ---------------------------------------------------------------------------------------------
# Old binary Word: .doc and .wps


@pytest.mark.skipif(not HAS_SOFFICE, reason="LibreOffice is not installed on this machine")
@pytest.mark.parametrize("filename", ["附件1.doc", "附件1.wps"])
def test_libreoffice_reads_both_headers_of_a_doc(filename) -> None:
    """Where LibreOffice is installed it reads .doc (before antiword, if both are)."""
    kind = sniff_kind(TWO_LEVEL_DOC, filename)
    assert kind == filename.rsplit(".", 1)[1]
    table = read_stats(TWO_LEVEL_DOC, filename, kind, RULES)
    assert table is not None
    assert (table.values, table.reporter) == (EXPECTED, "东风镇人民政府")
    single = read_stats(SINGLE_DOC, filename, kind, RULES)
    assert single is not None
    assert (single.values, single.reporter) == (SINGLE_EXPECTED, "唐家镇")


@pytest.mark.skipif(not HAS_SOFFICE, reason="LibreOffice is not installed on this machine")
def test_libreoffice_out_of_time_gives_no_table() -> None:
    assert converted_to_docx(TWO_LEVEL_DOC, seconds=0) is None


@pytest.mark.skipif(not HAS_ANTIWORD, reason="antiword is not installed (scripts/test.sh does)")
def test_antiword_reads_a_one_level_table(tmp_path, monkeypatch) -> None:
    only_on_path(tmp_path, monkeypatch, "antiword")
    table = read_stats(SINGLE_DOC, "附件1.doc", "doc", RULES)
    assert table is not None
    assert (table.values, table.reporter, table.sheet) == (SINGLE_EXPECTED, "唐家镇", "表格1")
    assert [c.text for c in table.approximations] == ["约300"]


@pytest.mark.skipif(not HAS_ANTIWORD, reason="antiword is not installed (scripts/test.sh does)")
def test_antiword_gives_no_figures_it_cannot_place(tmp_path, monkeypatch) -> None:
    """antiword loses the columns of merged header cells: no table, never wrong figures."""
    only_on_path(tmp_path, monkeypatch, "antiword")
    found = opened(TWO_LEVEL_DOC, "附件1.doc")
    assert found is not None
    assert read_stats(TWO_LEVEL_DOC, "附件1.doc", "doc", RULES) is None


def test_without_a_program_a_doc_has_no_tables(tmp_path, monkeypatch) -> None:
    only_on_path(tmp_path, monkeypatch)
    assert opened(SINGLE_DOC, "附件1.doc") is None
    assert opened(SINGLE_DOC, "附件1.wps") is None


@pytest.mark.skipif(not HAS_ANTIWORD, reason="antiword is not installed (scripts/test.sh does)")
def test_a_damaged_doc_gives_no_figures(tmp_path, monkeypatch) -> None:
    only_on_path(tmp_path, monkeypatch, "antiword")
    damaged = SINGLE_DOC[:512] + bytes(len(SINGLE_DOC) - 512)
    assert read_stats(damaged, "附件1.doc", "doc", RULES) is None


# ---------------------------------------------------------------------------------------------
# xlsm, xlsb, Unicode text


@pytest.mark.parametrize(("build", "filename"), [(xlsm, "附件1.xlsm"), (xlsb, "附件1.xlsb")])
def test_xlsm_and_xlsb_are_workbooks_by_their_content(build, filename) -> None:
    data = build(SINGLE_ROWS)
    for name in (filename, "附件1.bin"):  # the name does not decide
        assert sniff_kind(data, name) == "xlsx"
    table = read_stats(data, filename, "xlsx", RULES)
    assert table is not None
    assert (table.values, table.reporter) == (SINGLE_FIGURES, "区教育局")


@pytest.mark.parametrize(("build", "filename"), [(xlsm, "附件1.xlsm"), (xlsb, "附件1.xlsb")])
def test_a_cut_off_xlsm_or_xlsb_is_a_damaged_workbook(build, filename) -> None:
    data = build(SINGLE_ROWS)[:-40]
    assert sniff_kind(data, filename) == "xlsx"
    with pytest.raises(UnreadableFile):
        read_stats(data, filename, "xlsx", RULES)


def test_excel_unicode_text_saved_as_txt() -> None:
    data = unicode_text(SINGLE_ROWS)
    kind = sniff_kind(data, "附件1.txt")
    assert kind == "text"
    table = read_stats(data, "附件1.txt", kind, RULES)
    assert table is not None
    assert (table.values, table.reporter) == (SINGLE_FIGURES, "区教育局")


# ---------------------------------------------------------------------------------------------
# Through the pipeline: figures in the ledger, replies in Chinese


def ingest(pipeline, raw: bytes) -> tuple[dict, str]:
    """One mail ingested and its reply delivered: its `messages --json` record and the reply's
    text."""
    outcome = pipeline.ingest(raw, source="test")
    pipeline.app.deliver()
    message_id = pipeline.db["messages"].get(outcome.message_pk)["message_id"]
    record = next(r for r in message_records(pipeline.db) if r["message_id"] == message_id)
    (row,) = pipeline.db["outbox"].rows_where("message = ?", [outcome.message_pk])
    reply = email.message_from_string(row["eml"], policy=policy.default)
    return record, reply.get_body(("plain",)).get_content()


def figures(pipeline, record: dict) -> dict:
    pk = next(pipeline.db["messages"].rows_where("message_id = ?", [record["message_id"]]))["id"]
    return {r["column"]: r["value"] for r in pipeline.db["figures"].rows_where("message = ?", [pk])}


def weekly(files: list[tuple[str, bytes, str]], unit: str = "东风镇", **kwargs) -> bytes:
    sender = {"东风镇": "dongfeng_aj@163.com", "唐家镇": "tangjia_aj@163.com"}[unit]
    return make_mail(f"{unit}第2周周报", sender=sender, received=at(12, 9), files=files, **kwargs)


def test_a_pdf_table_lands_in_the_ledger(pipeline) -> None:
    record, reply = ingest(pipeline, weekly([("附件1：东风镇统计表.pdf", template_pdf(), PDF)]))
    assert (record["unit"], record["reply"], record["problems"]) == ("东风镇", "ack", [])
    assert figures(pipeline, record) == EXPECTED
    assert "附件1：东风镇统计表.pdf（附件1 统计表）" in reply


@pytest.mark.skipif(
    not (HAS_SOFFICE or HAS_ANTIWORD), reason="neither LibreOffice nor antiword is installed"
)
def test_a_doc_table_lands_in_the_ledger(pipeline) -> None:
    record, reply = ingest(pipeline, weekly([("附件1.doc", SINGLE_DOC, DOC)], unit="唐家镇"))
    assert (record["unit"], record["reply"]) == ("唐家镇", "ack")
    assert figures(pipeline, record) == SINGLE_EXPECTED
    assert "附件1.doc（附件1 统计表）" in reply


def test_xlsb_and_unicode_text_land_in_the_ledger(pipeline) -> None:
    for name, data in (
        ("统计表.xlsb", xlsb(SINGLE_ROWS)),
        ("统计表.txt", unicode_text(SINGLE_ROWS)),
    ):
        raw = make_mail(
            f"区教育局第2周周报（{name}）",
            sender="dwjyj_aq@163.com",
            received=at(12, 9),
            files=[(name, data, "application/octet-stream")],
        )
        record, _ = ingest(pipeline, raw)
        assert (record["unit"], record["reply"]) == ("区教育局", "ack"), name
        assert figures(pipeline, record) == SINGLE_FIGURES, name


PICTURE_REPLY = (
    "收到的是图片（{}），不是附件1《活动情况统计表》的电子表格：照片、截图或扫描件中的数字"
    "无法登记汇总。请把附件1 的电子表格（Excel 或 WPS 表格文件）作为附件重新发送。"
)


@pytest.mark.parametrize(
    "files",
    [
        [("附件1.png", picture(), "image/png")],
        [("微信图片_20190612.jpg", picture("JPEG"), "image/jpeg")],  # a picture, nothing else
        [("统计表.pdf", scanned_pdf(), PDF), ("周报.docx", docx_bytes(), DOCX)],
    ],
)
def test_a_picture_of_the_table_is_no_table(pipeline, files) -> None:
    record, reply = ingest(pipeline, weekly(files))
    assert (record["unit"], record["reply"], record["problems"]) == (
        "东风镇",
        "missing",
        ["no_stats"],
    )
    assert figures(pipeline, record) == {}
    assert PICTURE_REPLY.format(files[0][0]) in reply
    assert (
        "缺少附件1统计表"
        in email.message_from_string(pipeline.db["outbox"].get(1)["eml"], policy=policy.default)[
            "Subject"
        ]
    )


def test_photos_of_the_activity_beside_a_report_are_not_called_the_table(pipeline) -> None:
    files = [("周报.docx", docx_bytes(), DOCX), ("活动现场.jpg", picture("JPEG"), "image/jpeg")]
    record, reply = ingest(pipeline, weekly(files))
    assert record["problems"] == ["no_stats"]
    assert "收到的是图片" not in reply
    assert "邮件中没有附件1《活动情况统计表》" in reply


def test_a_picture_beside_a_readable_table_changes_nothing(pipeline) -> None:
    files = [("附件1.xlsx", xlsm(SINGLE_ROWS), XLSX), ("附件1.jpg", picture("JPEG"), "image/jpeg")]
    raw = make_mail("区教育局第2周周报", sender="dwjyj_aq@163.com", received=at(12, 9), files=files)
    record, _ = ingest(pipeline, raw)
    assert (record["reply"], record["problems"]) == ("ack", [])


def run_without_programs(tmp_path: Path, raws: list[bytes]) -> tuple[Path, Path]:
    """`mailproc ingest` on a machine with neither LibreOffice nor antiword: PATH holds only
    Python. The run's folder and its TMPDIR."""
    folder, tmp, bin_dir = tmp_path / "run", tmp_path / "tmp", tmp_path / "bin"
    for path in (folder / "in", tmp, bin_dir):
        path.mkdir(parents=True)
    for name in ("rules", "templates"):
        shutil.copytree(ROOT / name, folder / name)
    config = folder / "config.toml"
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    for number, raw in enumerate(raws):
        (folder / "in" / f"{number:02d}.eml").write_bytes(raw)
    env = {"PATH": str(bin_dir), "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "HOME": str(tmp)}
    command = [sys.executable, "-m", "mailproc", "ingest", "in", "--config", str(config)]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    return folder, tmp


def test_without_a_program_the_reply_says_the_doc_could_not_be_read(tmp_path) -> None:
    named = weekly([("附件1.doc", SINGLE_DOC, DOC)], unit="唐家镇")
    unnamed = make_mail(
        "东风镇第2周周报", received=at(12, 10), files=[("东风镇第2周情况.doc", SINGLE_DOC, DOC)]
    )
    folder, tmp = run_without_programs(tmp_path, [named, unnamed])
    with sqlite3.connect(folder / "mailproc.db") as db:
        rows = db.execute(
            "select m.problems, o.eml from messages m join outbox o on o.message = m.id "
            "order by m.received_at"
        ).fetchall()
    bodies = [
        email.message_from_string(eml, policy=policy.default).get_body(("plain",)).get_content()
        for _, eml in rows
    ]
    assert [problems for problems, _ in rows] == ['["unreadable_file"]', '["no_stats"]']
    assert (
        "· 附件1.doc：旧版 Word 格式（.doc/.wps）中的表格在本系统无法读取，请将附件1 另存为"
        in bodies[0]
    )
    assert (
        "邮件中没有可以读取的附件1《活动情况统计表》：东风镇第2周情况.doc 是旧版 Word 格式"
        "（.doc/.wps），其中的表格在本系统无法读取。请把附件1 另存为 Excel 或 WPS 表格文件，"
        "作为附件重新发送。"
    ) in bodies[1]
    assert list(tmp.iterdir()) == []  # the private folders are gone
