"""Replies: threaded, marked automatic, subjects distinct, delivered once."""

import email
from email import policy

from conftest import CORPUS

from mailproc.ledger import open_ledger
from mailproc.outgoing.delivery import DeliveryError, deliver


def parsed(row) -> email.message.EmailMessage:
    return email.message_from_string(row["eml"], policy=policy.default)


def test_every_reply_is_threaded_and_marked(corpus_run):
    db = open_ledger(corpus_run["config"].db)
    rows = list(db["outbox"].rows)
    assert rows
    subjects = set()
    for row in rows:
        msg = parsed(row)
        answered = db["messages"].get(row["message"])
        assert msg["In-Reply-To"] == answered["message_id"]
        assert answered["message_id"] in msg["References"]
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["X-Auto-Response-Suppress"] == "All"
        assert msg["X-Mailproc-Kind"] == row["kind"]
        assert msg["To"] == answered["sender"]
        assert msg["Subject"].startswith(("【回执】", "【缺项通知】", "【无法识别】"))
        subjects.add(msg["Subject"])
        assert "本邮件由报送登记系统自动发送" in msg.get_content()
    assert len(subjects) == len(rows)


def test_missing_notice_names_bad_cells(corpus_run):
    db = open_ledger(corpus_run["config"].db)
    notice = next(
        db["outbox"].rows_where(
            "subject like ? and kind = 'missing'", ["%区住房和城乡建设局%第3周%"]
        )
    )
    body = parsed(notice).get_content()
    assert "附件1 中以下单元格不是可以统计的数字" in body
    assert "N4" in body and "若干" in body


def test_ack_for_plan_asks_for_paper(corpus_run):
    db = open_ledger(corpus_run["config"].db)
    ack = next(db["outbox"].rows_where("kind = 'ack' and subject like ?", ["%于楼街道_活动方案%"]))
    assert "正式纸质文件" in parsed(ack).get_content()


def counts(delivered) -> tuple[int, int, int]:
    return delivered.sent, delivered.failed, delivered.retry


class Flaky:
    """A transport that fails the first `failures` sends with a temporary or permanent error."""

    def __init__(self, failures: int, permanent: bool):
        self.failures, self.permanent, self.sent = failures, permanent, []

    def send(self, row: dict) -> str:
        if self.failures:
            self.failures -= 1
            raise DeliveryError(
                "451 try later" if not self.permanent else "554 spam", self.permanent
            )
        self.sent.append(row["id"])
        return "ok"

    def already_sent(self, row: dict) -> bool:
        return row["id"] in self.sent

    def close(self) -> None:
        pass


def test_delivery_retries_temporary_and_records_permanent_failures(pipeline):
    pipeline.ingest((CORPUS / "0004.eml").read_bytes(), source="0004")
    pipeline.ingest((CORPUS / "0005.eml").read_bytes(), source="0005")
    flaky = Flaky(failures=1, permanent=False)
    assert counts(deliver(pipeline.db, flaky, pipeline.tz, retry_minutes=0)) == (1, 0, 1)
    assert counts(deliver(pipeline.db, flaky, pipeline.tz, retry_minutes=0)) == (1, 0, 0)
    assert counts(deliver(pipeline.db, flaky, pipeline.tz)) == (0, 0, 0)
    pipeline.ingest((CORPUS / "0006.eml").read_bytes(), source="0006")
    broken = Flaky(failures=1, permanent=True)
    assert counts(deliver(pipeline.db, broken, pipeline.tz)) == (0, 1, 0)
    row = next(pipeline.db["outbox"].rows_where("status = 'failed'"))
    assert row["last_error"] == "554 spam"
    assert counts(deliver(pipeline.db, broken, pipeline.tz)) == (0, 0, 0)


def test_a_folded_subject_keeps_the_space_after_the_unit(corpus_run):
    """The email package folds long subjects at spaces, and readers drop a space between
    encoded words; the space after the unit is an ideographic one, so it survives."""
    db = open_ledger(corpus_run["config"].db)
    row = next(db["outbox"].rows_where("unit = '区住房和城乡建设局' and kind = 'ack'"))
    head = row["eml"].replace("\r\n", "\n").split("\n\n")[0].split("\n")
    at = next(n for n, line in enumerate(head) if line.startswith("Subject:"))
    assert head[at + 1].startswith(" ")  # the subject is folded onto a second line
    assert parsed(row)["Subject"].startswith("【回执】区住房和城乡建设局\u3000")
