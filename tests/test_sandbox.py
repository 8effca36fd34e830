"""Reading in the sandbox: a file that kills, starves or outlasts its reader costs that file, a
mail that killed the service twice is set aside, and a reused Message-ID is no longer a way
to hide a genuine report."""

import dataclasses
import datetime as dt
import hashlib
import io
import json
import signal
import zipfile

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import make_config
from mails import TZ, XLSX, make_mail, stats_xlsx

from mailproc.app import open_app
from mailproc.cli import cli
from mailproc.ledger import write
from mailproc.office import actions
from mailproc.pipeline import POISONED, Pipeline
from mailproc.read.budget import MIB, Limits
from mailproc.read.sandbox import Sandbox
from mailproc.read.tables import UnreadableFile
from mailproc.values import Attachment


def sparse_xlsx() -> bytes:
    """Cells at A1 and XFD1048576: python-calamine asks for 512 GB for the range between."""
    book = openpyxl.Workbook()
    book.active["A1"] = 1
    book.active["XFD1048576"] = 2
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def attachment(name: str, data: bytes, kind: str = "xlsx") -> Attachment:
    return Attachment(name, XLSX, kind, data, "0" * 64)


@pytest.fixture
def sandbox():
    box = Sandbox(Limits())
    yield box
    box.close()


def test_a_file_that_aborts_its_reader_costs_that_file(sandbox):
    reading = sandbox.mail()
    with pytest.raises(UnreadableFile, match=r"读取时程序异常退出（系统信号 6）"):
        reading.open_file(attachment("bomb.xlsx", sparse_xlsx()))
    opened = reading.open_file(attachment("附件1.xlsx", stats_xlsx()))
    assert opened.grids[0].rows[4][:3] == ["东风镇", 3, 120]


def test_a_mail_has_one_wall_time_for_all_its_files():
    box = Sandbox(dataclasses.replace(Limits(), wall_seconds=0.001))
    try:
        with pytest.raises(UnreadableFile, match=r"读取超时（超过 0.001 秒）"):
            box.mail().open_file(attachment("附件1.xlsx", stats_xlsx()))
    finally:
        box.close()


def test_cpu_seconds_are_counted_per_mail():
    """A CSV of 8 MB of rare characters makes the encoding check spin for seconds of CPU."""
    noise = "㐀".encode("gb18030") * (2 * MIB)
    box = Sandbox(dataclasses.replace(Limits(), cpu_seconds=0))
    try:
        with pytest.raises(UnreadableFile, match=r"读取耗时超过上限（处理器时间 0 秒）"):
            box.mail().open_file(attachment("附件1.csv", noise, "csv"))
    finally:
        box.close()


def test_the_unpacking_budget_is_one_for_all_files_of_a_mail():
    """Two workbooks of ~40 KB each inflated: each fits alone, the second not after the first."""
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("padding.xml", b"0" * 40_000)
    limits = dataclasses.replace(Limits(), unpacked_bytes=60_000, file_unpacked_bytes=50_000)
    box = Sandbox(limits)
    try:
        reading = box.mail()
        with pytest.raises(UnreadableFile, match=r"文件已损坏"):  # inflated, then not a workbook
            reading.open_file(attachment("one.xlsx", big.getvalue()))
        assert reading.budget.unpacked_bytes == 60_000 - 40_000
        with pytest.raises(UnreadableFile, match="邮件中的文件解压后总量超过上限"):
            reading.open_file(attachment("two.xlsx", big.getvalue()))
    finally:
        box.close()


def weekly_report(subject: str, day: int, files: list, **fields: str) -> bytes:
    received = dt.datetime(2019, 6, day, 9, 30, tzinfo=TZ)
    return make_mail(subject, received=received, files=files, **fields)


def test_the_poison_file_costs_its_mail_a_file_and_the_next_mail_goes_on(tmp_path):
    poisoned = weekly_report("东风镇第2周周报", 12, [("附件1.xlsx", sparse_xlsx(), XLSX)])
    fine = weekly_report(
        "新兴镇第2周周报",
        12,
        [("附件1.xlsx", stats_xlsx("新兴镇"), XLSX)],
        sender="xinxing_aj@163.com",
    )
    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)
        first = pipeline.ingest(poisoned, source="poisoned")
        second = pipeline.ingest(fine, source="fine")
        row = app.db["messages"].get(first.message_pk)
        files = list(app.db["attachments"].rows_where("message = ?", [first.message_pk]))
    assert (first.disposition, first.reply) == ("submission", "missing")
    assert json.loads(row["problems"]) == ["unreadable_file"]
    died = f"读取时程序异常退出（系统信号 {signal.SIGABRT.value}）"
    assert died in json.loads(files[0]["problems"])[0]
    assert (second.disposition, second.reply) == ("submission", "ack")


def test_a_mail_that_stopped_the_service_twice_is_set_aside(tmp_path):
    raw = weekly_report("东风镇第2周周报", 12, [("附件1.xlsx", stats_xlsx(), XLSX)])
    config = make_config(tmp_path)
    with open_app(config) as app:
        sha256 = hashlib.sha256(raw).hexdigest()
        for _ in range(2):  # two runs that died while this mail was in hand
            write.take_in_hand(app.db, app.tz, sha256, "imap:INBOX;UID=7")
        outcome = Pipeline(app).ingest(raw, source="imap:INBOX;UID=7")
        assert outcome.state == "quarantined" and outcome.reason == POISONED
        assert app.db["in_hand"].count == 0
    (config.rules.parent / "config.toml").write_text(
        '[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8"
    )
    listed = CliRunner().invoke(
        cli, ["inbox", "--config", str(config.rules.parent / "config.toml")]
    )
    assert "处理时进程异常退出" in listed.output


def test_a_reused_message_id_does_not_hide_the_genuine_report(tmp_path):
    impostor = weekly_report(
        "通知", 11, [], sender="stranger@qq.com", message_id="<weekly-2@dongfeng>"
    )
    genuine = weekly_report(
        "东风镇第2周周报",
        12,
        [("附件1.xlsx", stats_xlsx(), XLSX)],
        message_id="<weekly-2@dongfeng>",
    )
    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)
        pipeline.ingest(impostor, source="first")
        outcome = pipeline.ingest(genuine, source="second")
        row = app.db["messages"].get(outcome.message_pk)
        entries = actions.inbox(app.db)
    assert (outcome.disposition, outcome.reply) == ("submission", "ack")
    assert [f["kind"] for f in json.loads(row["flags"])] == ["message_id_clash"]
    assert [e["what"] for e in entries if e["message_id"] == "<weekly-2@dongfeng>"] == [
        "Message-ID 与另一封邮件相同、内容不同"
    ]


def test_the_same_mail_by_another_route_is_a_duplicate(tmp_path):
    raw = weekly_report("东风镇第2周周报", 12, [("附件1.xlsx", stats_xlsx(), XLSX)])
    rerouted = b"Delivered-To: dwajj6780436@163.com\r\nReceived: from relay2\r\n" + raw
    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)
        pipeline.ingest(raw, source="first")
        again = pipeline.ingest(rerouted, source="second")
        outbox = app.db["outbox"].count
    assert (again.state, again.disposition, again.reply) == ("new", "duplicate", "none")
    assert outbox == 1
