"""The archive keeps originals where an office can find them, and never outside its folder."""

import hashlib

import pytest

from mailproc.archive import Archive, safe_name


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("附件1：东风镇统计表.xlsx", "附件1：东风镇统计表.xlsx"),
        ("../../etc/passwd", "_etc_passwd"),
        ("..\\..\\boot.ini", "_boot.ini"),
        ("报表\x00\x1b[31m.xls", "报表_[31m.xls"),
        ("  .hidden ", "hidden"),
        ("", "file"),
        ("///", "file"),
        ("a:b*c?.docx", "a_b_c_.docx"),
    ],
)
def test_safe_name(name, safe):
    assert safe_name(name) == safe


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("CON", "_CON"),
        ("con.xlsx", "_con.xlsx"),
        ("Nul.tar.gz", "_Nul.tar.gz"),
        ("AUX .txt", "_AUX .txt"),
        ("prn", "_prn"),
        ("COM1.docx", "_COM1.docx"),
        ("lpt9.xls", "_lpt9.xls"),
        ("COM10.xlsx", "COM10.xlsx"),
        ("CONSOLE.xlsx", "CONSOLE.xlsx"),
        ("统计表. ", "统计表"),
        ("统计表 .", "统计表"),
        ("附件1.xlsx .", "附件1.xlsx"),
    ],
)
def test_windows_device_names_and_trailing_dots_are_made_safe(name, safe):
    assert safe_name(name) == safe


def test_long_names_keep_their_extension_and_stay_apart():
    first = safe_name("很长的文件名" * 40 + "一.xlsx")
    second = safe_name("很长的文件名" * 40 + "二.xlsx")
    assert first.endswith(".xlsx") and second.endswith(".xlsx")
    assert len(first.encode("utf-8")) <= 150 and len(second.encode("utf-8")) <= 150
    assert first.startswith("很长的文件名" * 7) and first != second
    assert safe_name("x" * 300) == "x" * 141 + "~" + hashlib.sha256(b"x" * 300).hexdigest()[:8]
    assert safe_name(first) == first  # a name made safe stays as it is


def test_store_is_idempotent_and_stays_inside(tmp_path):
    archive = Archive(tmp_path / "archive")
    folder = archive.folder_for("submission", "东风镇", "weekly", "2019-06-13")
    first = archive.store(folder, "../x.eml", b"one")
    assert first == "东风镇/weekly/2019-06-13/_x.eml"
    assert archive.store(folder, "../x.eml", b"two") == first
    assert (tmp_path / "archive" / first).read_bytes() == b"one"
    with pytest.raises(ValueError):
        archive.store(folder / ".." / ".." / ".." / "..", "x.eml", b"out")


def test_folders_by_disposition(tmp_path):
    archive = Archive(tmp_path)
    assert str(archive.folder_for("unrecognized", None, None, None)) == "_quarantine"
    assert str(archive.folder_for("quarantined", None, None, None)) == "_quarantine"
    assert str(archive.folder_for("unrelated", None, None, None)) == "_other"
    assert str(archive.folder_for("submission", "东风镇", "event", None)) == "东风镇/event/_none"
