"""Each attachment is opened once: counted per opener while the corpus is ingested.

An attachment is told apart by the identity of its bytes (`io.BytesIO(data).getvalue()` is
`data` itself, which the first test pins), so two mails bringing the same file count apart.
"""

import collections
import datetime as dt
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import xlwt
from conftest import CORPUS, make_config
from mails import TZ, XLSX, make_mail
from test_sheets import FIGURES, RULES, template, xlsx

from mailproc import cli
from mailproc.app import open_app
from mailproc.classify import Classifier
from mailproc.fetch.files import HEAD_BYTES, header_receipt_time, receipt_order_key
from mailproc.pipeline import Pipeline
from mailproc.read import tables as sheets
from mailproc.read.budget import Budget, Limits
from mailproc.read.kinds import OLE2_MAGIC, ZIP_SIGNATURES, Container
from mailproc.read.mail import parse_message
from mailproc.read.tables import Opened, open_file
from mailproc.values import Attachment, ParsedMail

OPENERS = ("zipfile.ZipFile", "calamine", "docx", "wordxml", "openpyxl", "xlrd", "CompDoc")
ONCE = collections.Counter(dict.fromkeys(OPENERS, 1))


class Openings:
    """How often each opener was handed each attachment's bytes."""

    def __init__(self) -> None:
        self.counts: dict[int, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.data: dict[int, bytes] = {}  # kept alive, so an id is never reused

    def record(self, opener: str, source: Any) -> None:
        data = source.getvalue() if isinstance(source, io.BytesIO) else source
        if isinstance(data, bytes):  # a path or a file being written is no attachment
            self.data[id(data)] = data
            self.counts[id(data)][opener] += 1

    def counting(self, opener: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def opened(source: Any = None, *args: Any, **kwargs: Any) -> Any:
            self.record(opener, kwargs.get("file_contents", source))
            return function(source, *args, **kwargs)

        return opened

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Count every opener where mailproc looks it up."""
        openings = self

        class CountedZipFile(zipfile.ZipFile):
            def __init__(self, file: Any, *args: Any, **kwargs: Any) -> None:
                openings.record("zipfile.ZipFile", file)
                super().__init__(file, *args, **kwargs)

        class CountedCalamine:
            from_filelike = staticmethod(
                self.counting("calamine", sheets.CalamineWorkbook.from_filelike)
            )

        monkeypatch.setattr(zipfile, "ZipFile", CountedZipFile)
        monkeypatch.setattr(sheets, "CalamineWorkbook", CountedCalamine)
        monkeypatch.setattr(sheets.docx, "Document", self.counting("docx", sheets.docx.Document))
        monkeypatch.setattr(
            sheets.wordxml, "read_docx", self.counting("wordxml", sheets.wordxml.read_docx)
        )
        monkeypatch.setattr(
            sheets.openpyxl,
            "load_workbook",
            self.counting("openpyxl", sheets.openpyxl.load_workbook),
        )
        monkeypatch.setattr(
            sheets.xlrd, "open_workbook", self.counting("xlrd", sheets.xlrd.open_workbook)
        )
        monkeypatch.setattr(sheets, "CompDoc", self.counting("CompDoc", sheets.CompDoc))

    def total(self, opener: str) -> int:
        return sum(counts[opener] for counts in self.counts.values())


class ReadingHere:
    """The sandbox's interface, reading in this process with one budget per mail."""

    def mail(self) -> "ReadingHere":
        self.budget = Budget.of(Limits())
        return self

    def parse(self, raw: bytes) -> ParsedMail:
        return parse_message(raw, self.budget)

    def open_file(self, att: Attachment) -> Opened | None:
        return open_file(att.container, att.filename, att.kind, self.budget)

    def close(self) -> None:
        pass


def test_the_corpus_opens_each_attachments_container_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every opener sees an attachment once at most, and a zip (xlsx, docx, an archive) is
    opened once for all of parse's sniffing and unpacking, sheets' bomb check and error-mark
    scan, and classify's document check. Each mail file is read whole once.

    The reading runs in this process here (`ReadingHere`), so the openers can be counted; in
    the service it runs in the sandbox, where parsing and opening a file are two pieces of
    work and each reads the zip's directory itself.

    calamine takes bytes, not an opened zip: it is an opener of its own, once per attachment;
    a Word document's tables are read from the zip already open (python-docx, another opener,
    only for a document that reading does not expect). The exception, precisely: the second
    reader of error cells (openpyxl for a zip, xlrd for a compound file) opens the bytes a
    second time, as neither takes an opened zip or compound file; it runs only for the
    attachments whose cheap scan found an error mark, once each (the corpus has none; the
    test below counts it on generated files).
    """
    assert io.BytesIO(data := b"bytes").getvalue() is data  # how attachments are told apart
    openings = Openings()
    openings.install(monkeypatch)
    reads: collections.Counter[Path] = collections.Counter()
    read_bytes = Path.read_bytes

    def counted_read(path: Path) -> bytes:
        reads[path] += path.parent == CORPUS
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counted_read)
    with open_app(make_config(tmp_path)) as app:
        app.sandbox = ReadingHere()
        cli.run_ingest(Pipeline(app), [str(CORPUS)], quiet=True)
    monkeypatch.undo()

    assert +reads == collections.Counter(dict.fromkeys(CORPUS.glob("*.eml"), 1))

    twice = {
        hashlib.sha256(openings.data[key]).hexdigest()[:12]: dict(+counts - ONCE)
        for key, counts in openings.counts.items()
        if counts - ONCE
    }
    assert twice == {}
    zips = [key for key, data in openings.data.items() if data.startswith(ZIP_SIGNATURES)]
    assert all(openings.counts[key]["zipfile.ZipFile"] == 1 for key in zips)
    assert openings.total("zipfile.ZipFile") == len(zips)
    for key, counts in openings.counts.items():
        if counts["openpyxl"]:
            archive = zipfile.ZipFile(io.BytesIO(openings.data[key]))
            assert counts["zipfile.ZipFile"] == 1 and sheets._may_hold_errors(archive)
        if counts["xlrd"]:
            data = openings.data[key]
            assert data.startswith(OLE2_MAGIC) and sheets._biff_may_hold_errors(data)
    # 155 tables, Word reports (read from the zip opened once; python-docx only for a
    # document that reading does not expect: none here), zips, and binary workbooks with
    # blanks but no error mark
    assert openings.total("calamine") > 150 and openings.total("wordxml") > 100
    assert openings.total("docx") == 0
    assert openings.total("CompDoc") > 0 and len(zips) > 200


class NoHistory:
    """A ledger with nothing in it yet: the deadline is the campaign's."""

    def receipts(self, unit: str, item: str, period: str) -> list[dict]:
        return []

    def answered_by_us(self, message_ids: Any) -> dict | None:
        return None

    def is_ours(self, message_ids: Any) -> bool:
        return False

    def deadline(self, unit: str, item: str, period: str, deadline: dt.datetime) -> dt.datetime:
        return deadline

    def registered_unit(self, address: str) -> str | None:
        return None


HEADER = ["单位", "宣讲场次", "演练场次", "媒体报道篇数"]
WEEKS = {f"第{week}周": [HEADER, ["东风镇", n, 0, 0]] for n, week in enumerate("一二三", 1)}
VILLAGES = [[name, *(f + n for f in FIGURES)] for n, name in enumerate(["红旗村", "东风村"], 1)]


@pytest.mark.parametrize(
    ("workbook", "lectures"),
    [(xlsx(WEEKS), 3), (template([*VILLAGES, ["东风镇", *FIGURES]]), FIGURES[0])],
    ids=["sheet per week", "town with villages"],
)
def test_a_week_sheet_or_own_row_is_picked_from_one_reading(
    monkeypatch: pytest.MonkeyPatch, workbook: bytes, lectures: int
) -> None:
    """The first pick finds another sheet (第一周) or row (红旗村) than the one that counts;
    the report's week and the town's own row are then picked from the same reading."""
    raw = make_mail(
        "东风镇第三周活动信息",
        received=dt.datetime(2019, 6, 19, 9, tzinfo=TZ),
        files=[("统计表.xlsx", workbook, XLSX)],
    )
    mail = parse_message(raw)
    openings = Openings()
    openings.install(monkeypatch)
    result = Classifier(RULES).classify(mail, dt.datetime(2019, 6, 19, 9, tzinfo=TZ), NoHistory())
    assert result.table is not None and result.table.values["lectures"] == lectures
    assert openings.counts[id(mail.attachments[0].data)]["calamine"] == 1


def xls_weeks() -> bytes:
    """An .xls (BIFF8) with a sheet per week, each week's lectures an error cell."""
    workbook = xlwt.Workbook()
    for week in ("第一周", "第二周"):
        sheet = workbook.add_sheet(week)
        for c, text in enumerate([*HEADER, "东风镇"]):
            sheet.write(c // 4, c % 4, text)
        sheet.row(1).set_cell_error(1, "#REF!")
        sheet.write(1, 2, 1)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


TOWN_WITH_ERRORS = template(
    [["红旗村", "#REF!", *FIGURES[1:]], ["东风镇", "#DIV/0!", *FIGURES[1:]]]
)


@pytest.mark.parametrize(
    ("data", "kind", "second_reader", "own_error"),
    [(TOWN_WITH_ERRORS, "xlsx", "openpyxl", "#DIV/0!"), (xls_weeks(), "xls", "xlrd", "#REF!")],
    ids=["xlsx, two rows", "xls, two sheets"],
)
def test_error_cells_of_several_picks_come_from_one_second_reading(
    monkeypatch: pytest.MonkeyPatch, data: bytes, kind: str, second_reader: str, own_error: str
) -> None:
    """Blanks that may be error cells, on two rows or two sheets, are asked of one opening of
    openpyxl or xlrd; the scan for error marks reuses the zip already open."""
    openings = Openings()
    openings.install(monkeypatch)
    tables = sheets.read_tables(Container(data), f"附件1.{kind}", kind, RULES)
    assert tables is not None
    first = sheets.pick(tables)
    own = sheets.pick(
        tables, own_row=lambda label: label == "东风镇", sheet=lambda name: "二" in name
    )
    again = sheets.pick(tables)
    assert first is not None and own is not None and again == first
    assert (first.sheet, first.row_label) != (own.sheet, own.row_label)
    assert first.bad_cells[0].text == "#REF!" and own.bad_cells[0].text == own_error
    expected = {"calamine": 1, second_reader: 1}
    expected.update({"zipfile.ZipFile": 1} if kind == "xlsx" else {"CompDoc": 1})
    assert openings.counts[id(data)] == expected


def test_the_receipt_order_reads_only_the_head_of_a_file(tmp_path: Path) -> None:
    """The order key from the head of a file is the one the whole file gives, also when the
    header runs past the head."""
    trace = b"X-Trace: " + b"\r\n hop" * (HEAD_BYTES // 6)
    date = b"Date: Wed, 12 Jun 2019 09:30:00 +0800"
    for name, raw in [
        ("short.eml", make_mail("东风镇第2周周报")),
        ("date-past-the-head.eml", trace + b"\r\n" + date + b"\r\n\r\nbody\r\n"),
        ("no-body.eml", date),
    ]:
        path = tmp_path / name
        path.write_bytes(raw)
        moment = header_receipt_time(raw)
        assert moment is not None
        assert receipt_order_key(path) == (False, moment.timestamp(), str(path))
