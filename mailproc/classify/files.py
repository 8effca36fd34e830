"""The files of a mail: which one is 附件1, which are documents, which cannot be opened, and
the table whose figures count (the unit's own row, the report's week's sheet). Each file is
opened once (`read.tables.open_file`, in the sandbox when the pipeline reads); what counts is
picked from what was read."""

import functools
import zipfile
from collections.abc import Callable
from pathlib import PurePath

from mailproc.classify.periods import period_named
from mailproc.classify.units import UnitNames
from mailproc.labels import in_chinese
from mailproc.read.containers import why_unopened
from mailproc.read.kinds import (
    CONTAINER_KINDS,
    DOCUMENT_KINDS,
    DOCUMENT_SUFFIXES,
    OLE2_MAGIC,
    OLE2_SECTOR,
    PROTECTED_MEMBER,
    SHEET_KINDS,
    SHEET_SUFFIXES,
    WORD_KINDS,
    WORD_SUFFIXES,
    ZIP_PREFIX,
    password_protected,
    pdf_is_complete,
)
from mailproc.read.tables import (
    PASSWORD_PROTECTED,
    Opened,
    UnreadableFile,
    open_file,
    pick,
    tables_of,
)
from mailproc.read.text import normalize
from mailproc.rules import Item, Rules, Unit
from mailproc.values import Attachment, FileCheck, StatsTable

# Attachment problems (from parse) that mean the file's structure is broken; the others
# (an odd file name, stray base64 characters) do not stop it from opening.
DAMAGE_PREFIXES = ("truncated or corrupt", "corrupt zip")
DAMAGED = "文件不完整或已损坏（可能在传输中被截断）"

# How a file is opened into its tables: here, or in the sandbox (`read.sandbox`); either
# raises UnreadableFile for a file that cannot be opened within the mail's limits.
OpenFile = Callable[[Attachment], Opened | None]


def open_here(att: Attachment) -> Opened | None:
    """A file opened in this process, with the default limits for it alone."""
    return open_file(att.container, att.filename, att.kind)


class Files:
    """The rules' words for 附件1's file names and for running totals, with the unit names."""

    def __init__(self, rules: Rules, units: UnitNames):
        self.rules, self.units = rules, units
        self.stats_file_words = [normalize(w) for w in rules.table["file_words"]]
        name, title = rules.table["name"], rules.table["title"]
        self.no_table = f"打开后未找到{name}《{title}》的表头"
        self.old_word_table = (
            f"旧版 Word 格式（.doc/.wps）中的表格在本系统无法读取，请将{name} 另存为 Excel/WPS "
            "表格后发送"
        )
        # a file named 累计/合计… holds running totals, not the period's figures
        self.cumulative_words = [normalize(w) for w in rules.table.get("total_row_labels", [])]

    def check_files(
        self, attachments: list[Attachment], open_file: OpenFile = open_here
    ) -> list[FileCheck]:
        """Open every office file: which one is 附件1, which are documents, which are broken,
        and which are pictures of the table."""
        checks, pictures = [], []
        for att in attachments:
            named_stats = any(w in normalize(att.filename) for w in self.stats_file_words)
            check, picture = self._check(att, named_stats, open_file)
            if picture:
                pictures.append(check)
                if named_stats:  # a photo or scan of 附件1: its figures cannot be read
                    check.role, check.unread_table = "image", "picture"
            checks.append(check)
        if pictures and len(pictures) == len(checks):  # pictures only: the table came as one
            for check in pictures:
                check.unread_table = "picture"
        return checks

    def _check(
        self, att: Attachment, named_stats: bool, open_file: OpenFile
    ) -> tuple[FileCheck, bool]:
        """What one file is, and whether it is a picture (a photo, or a PDF without text)."""
        suffix = PurePath(att.filename).suffix.lower()
        locked = PROTECTED_MEMBER in att.problems  # encrypted in its archive: never taken out
        if att.kind in CONTAINER_KINDS and not locked:  # left shut: its files never came
            return FileCheck(att, "other", error=why_unopened(att)), False
        if att.kind == "image":
            return FileCheck(att, "image"), True
        is_sheet = att.kind in SHEET_KINDS or suffix in SHEET_SUFFIXES
        is_word = att.kind in WORD_KINDS or suffix in WORD_SUFFIXES
        is_pdf = att.kind == "pdf"
        if not (is_sheet or att.kind in DOCUMENT_KINDS or suffix in DOCUMENT_SUFFIXES):
            if locked:
                return FileCheck(att, "other", error=PASSWORD_PROTECTED), False
            if suffix == ".txt":
                return self._text_table(att, open_file), False
            return FileCheck(att, "other"), False
        check = FileCheck(att, "document")
        if any(p.startswith(DAMAGE_PREFIXES) for p in att.problems):
            check.error = DAMAGED
        picture = tables_read = False
        old_word = is_word and att.kind != "docx"
        if is_sheet or is_word or is_pdf:
            try:
                opened = open_file(att)
                if opened is not None:
                    picture, tables_read = opened.picture, bool(opened.grids)
                    self._read_tables(check, opened)
            except UnreadableFile as exc:
                # a PDF or .doc that is no 附件1 is judged as a document (document_problem)
                if is_sheet or not (is_pdf or old_word) or named_stats:
                    check.error = in_chinese(str(exc), "文件已损坏，无法打开")
            if check.table is not None:
                check.role = "stats"
            elif old_word and not tables_read:  # no program here could read its tables
                check.unread_table = "old_word"
                if named_stats:
                    check.role = "stats_candidate"
                    check.error = check.error or self.old_word_table
            elif (is_sheet or named_stats) and not picture:
                check.role = "stats_candidate"
                check.error = check.error or self.no_table
        if check.error is None and check.role == "document":
            check.error = document_problem(att)
        if locked:
            check.error = PASSWORD_PROTECTED
        return check, picture

    def _text_table(self, att: Attachment, open_file: OpenFile) -> FileCheck:
        """A .txt is 附件1 when it holds the table (Excel's 另存为“Unicode 文本”); any other
        text file is just another file."""
        check = FileCheck(att, "other")
        try:
            opened = open_file(att)
        except UnreadableFile:
            return check
        if opened is not None:
            self._read_tables(check, opened)
            if check.table is not None:
                check.role = "stats"
        return check

    def _read_tables(self, check: FileCheck, opened: Opened) -> None:
        """The file's best 附件1, and how to pick another row or sheet of it later."""
        check.pick = functools.partial(pick, tables_of(opened, self.rules))
        check.table = check.pick()

    def read_own_rows(self, files: list[FileCheck], unit: Unit) -> list[str]:
        """Pick the unit's own row in every 附件1 with several filled rows (a town's villages, a
        district template) or none; notes for the office when no row names it."""
        notes = []
        for check in files:
            table = check.table
            if table is None or check.pick is None or table.data_rows == 1:
                continue
            own = check.pick(own_row=self.units.own_row_of(unit))
            if own is not None and self.units.names_unit(own.row_label, unit):
                check.table = own
            elif table.data_rows > 1:
                table_name = self.rules.table["name"]
                notes.append(
                    f"{table_name} 有 {table.data_rows} 行数据，没有写明{unit.name}的一行："
                    f"{check.attachment.filename} 取第一行（{table.row_label or '无名称'}）"
                )
        return notes

    def read_period_sheets(
        self, files: list[FileCheck], item: Item, number: int, unit: Unit
    ) -> None:
        """A workbook with a sheet per period (第一周, 第二期 …): pick the report's period's."""

        def sheet_number(name: str) -> int | None:
            named = period_named(item, name, numbered_only=True)
            return named[0].number if named else None

        for check in files:
            table = check.table
            if table is None or check.pick is None or sheet_number(table.sheet) in (None, number):
                continue
            own = check.pick(
                own_row=self.units.own_row_of(unit), sheet=lambda name: sheet_number(name) == number
            )
            if own is not None and sheet_number(own.sheet) == number:
                check.table = own

    def own_table(self, files: list[FileCheck], unit: Unit | None) -> StatsTable | None:
        """The 附件1 whose figures count: the unit's own (by 填报单位) before another unit's, a
        readable one before one with bad cells, a week's before a 累计 one, then file order."""
        tables = [c.table for c in files if c.table is not None]

        def rank(table: StatsTable) -> tuple[bool, bool, bool]:
            other = bool(
                unit and table.reporter and not self.units.names_unit(table.reporter, unit)
            )
            cumulative = any(w in normalize(table.filename) for w in self.cumulative_words)
            return other, bool(table.bad_cells), cumulative

        return min(tables, key=rank, default=None)


def document_problem(att: Attachment) -> str | None:
    """Why an office document cannot be opened, checked cheaply by its structure; a file
    locked with a password is named as such, never as damaged."""
    data = att.data
    if not data:
        return "文件为空"
    if password_protected(att.container, att.kind):
        return PASSWORD_PROTECTED
    if att.kind == "pdf":
        if not pdf_is_complete(data):
            return "PDF 文件不完整（可能在传输中被截断）"
        return None
    if att.kind == "docx" or data.startswith(ZIP_PREFIX):
        try:
            att.container.zip()
        except zipfile.BadZipFile:
            return "文件已损坏，无法打开（压缩结构不完整）"
        return None
    if data.startswith(OLE2_MAGIC) and len(data) % OLE2_SECTOR != 0:
        return "文件不完整（可能在传输中被截断）"
    return None
