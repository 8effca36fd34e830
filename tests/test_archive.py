"""The archive keeps originals where an office can find them, and never outside its folder."""

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


def test_long_names_keep_their_extension():
    name = safe_name("很长的文件名" * 40 + ".xlsx")
    assert name.endswith(".xlsx") and len(name.encode("utf-8")) <= 150


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
