"""The live mailbox against a real Dovecot and a real SMTP server on 127.0.0.1.

The corpus is appended to Dovecot with each mail's receipt time as INTERNALDATE, and mailproc
reads it over IMAPS and answers over SMTPS with AUTH, as it does with 163.com.
"""

import dataclasses
import datetime as dt
import email
import os
import signal
import subprocess
import sys
import time
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS, copy_ledger, make_config
from corpus_check import compare, expected_entries
from mails import make_mail
from servers import Mailbox, SmtpServer, free_port

from mailproc.app import open_app
from mailproc.cli import cli, message_records
from mailproc.config import load_config
from mailproc.fetch.imap import MailboxError
from mailproc.ledger import open_ledger
from mailproc.lock import AlreadyRunning, ProcessLock
from mailproc.outgoing.delivery import deliver
from mailproc.outgoing.smtp import SmtpTransport
from mailproc.pipeline import Pipeline
from mailproc.service import Service

PASSWORD_ENV = "MAILPROC_TEST_MAIL_PASSWORD"
SMTP_AUTH = ("office@test", "smtp-secret")
SMTPS = [{"tls": "implicit", "auth": SMTP_AUTH}]


def write_config(
    folder: Path,
    mailbox: Mailbox,
    smtp: SmtpServer,
    *,
    imap_port: int | None = None,
    imap_security: str = "ssl",
    smtp_security: str = "ssl",
    folder_name: str = "INBOX",
    poll_minutes: float = 5,
    extra_smtp: str = "",
) -> Path:
    """A config like a 163.com deployment's, pointed at the test servers."""
    make_config(folder)
    bundle = folder / "test-ca.pem"
    bundle.write_bytes(mailbox.ca_file.read_bytes() + smtp.ca_file.read_bytes())
    path = folder / "config.toml"
    path.write_text(
        f"""
[paths]
rules = "rules"
templates = "templates"

[delivery]
transport = "smtp"

[mailbox]
host = "localhost"
port = {imap_port or (mailbox.ssl_port if imap_security == "ssl" else mailbox.port)}
security = "{imap_security}"
username = "{mailbox.user}"
password_env = "{PASSWORD_ENV}"
folder = "{folder_name}"
poll_minutes = {poll_minutes}
timeout_seconds = 10

[smtp]
host = "localhost"
port = {smtp.port}
security = "{smtp_security}"
username = "{SMTP_AUTH[0]}"
password_env = "{PASSWORD_ENV}_SMTP"
from_address = "dwajj6780436@163.com"
max_per_minute = 100000
retry_minutes = 0
timeout_seconds = 10
{extra_smtp}

[tls]
ca_file = "test-ca.pem"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def env(monkeypatch, mailbox: Mailbox):
    monkeypatch.setenv(PASSWORD_ENV, mailbox.password)
    monkeypatch.setenv(f"{PASSWORD_ENV}_SMTP", SMTP_AUTH[1])


def append_corpus(mailbox: Mailbox, folder: str = "INBOX", entries: list | None = None) -> None:
    for entry in entries or expected_entries():
        raw = (CORPUS / entry["file"]).read_bytes()
        when = dt.datetime.fromisoformat(entry["received_at"])
        mailbox.append(folder, raw, internaldate=when)


def poll(config: Path, *args: str):
    return CliRunner().invoke(cli, ["poll", "--once", *args, "--config", str(config)])


def records(config: Path) -> list[dict]:
    return message_records(open_ledger(load_config(config).db))


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_corpus_through_imap_and_smtp(tmp_path, mailbox, smtp_server, env):
    append_corpus(mailbox)
    flags_before = mailbox.flags()
    config = write_config(tmp_path, mailbox, smtp_server)

    result = poll(config)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("收取邮件 272 封（新邮件 272 封）；回复已发出 259 封，")

    accuracy, mismatches = compare(records(config), skip_bad_cells=False)
    assert mismatches == [], accuracy
    assert mailbox.flags() == flags_before  # nothing marked read or unread

    expected_replies = {e["message_id"]: e for e in expected_entries() if e["reply"] != "none"}
    senders = {r["message_id"]: r["sender"] for r in records(config)}
    seen = set()
    for received in smtp_server.messages:
        msg = email.message_from_bytes(received.data, policy=policy.default)
        answered = msg["In-Reply-To"]
        entry = expected_replies[answered]
        assert answered not in seen
        seen.add(answered)
        assert msg["X-Mailproc-Kind"] == entry["reply"]
        assert received.rcpt_tos[0] == senders[answered]
        assert received.mail_from == "dwajj6780436@163.com"
    assert seen == set(expected_replies)

    again = poll(config)
    assert again.stdout.startswith("收取邮件 0 封（新邮件 0 封）；回复已发出 0 封，")
    assert len(smtp_server.messages) == len(expected_replies)


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_id_comes_before_select_in_every_session(tmp_path, mailbox, smtp_server, env):
    append_corpus(mailbox, entries=expected_entries()[:3])
    config = write_config(tmp_path, mailbox, smtp_server)
    assert poll(config).exit_code == 0
    assert poll(config).exit_code == 0
    sessions = mailbox.sessions()
    assert len(sessions) == 2
    for session in sessions:
        assert "SELECT" in session.commands or "EXAMINE" in session.commands
        first_select = min(i for i, c in enumerate(session.commands) if c in {"SELECT", "EXAMINE"})
        assert "ID" in session.commands[:first_select], session.commands


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_dovecot_killed_mid_poll_loses_and_doubles_nothing(
    tmp_path, mailbox, smtp_server, env, dovecot
):
    entries = expected_entries()[:60]
    append_corpus(mailbox, entries=entries)
    config = load_config(write_config(tmp_path, mailbox, smtp_server))
    app = open_app(config)
    service = Service(app)
    original, handled = service.pipeline.ingest, []

    def ingest_then_kill(*args, **kwargs):
        outcome = original(*args, **kwargs)
        handled.append(outcome)
        if len(handled) == 25:
            dovecot.kill()
        return outcome

    service.pipeline.ingest = ingest_then_kill
    with pytest.raises(MailboxError, match=r"连接中断|连接收信服务器 .* 失败"):
        service.poll_once()
    assert 25 <= len(handled) < 60
    dovecot.start()
    service.pipeline.ingest = original
    service.poll_once()
    app.close()

    db = open_ledger(config.db)
    assert db["messages"].count == 60
    assert {r["message_id"] for r in db["messages"].rows} == {e["message_id"] for e in entries}
    due = sum(e["reply"] != "none" for e in entries)
    assert db["outbox"].count == due
    assert len(smtp_server.messages) == due


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_smtp_451_is_retried_until_it_recovers(tmp_path, mailbox, smtp_server, env):
    entries = [e for e in expected_entries() if e["reply"] != "none"][:5]
    append_corpus(mailbox, entries=entries)
    config = write_config(tmp_path, mailbox, smtp_server)
    smtp_server.fail_with("451 4.7.1 MI:SFQ busy, try later", times=None)
    first = poll(config)
    assert first.exit_code == 0
    assert "回复已发出 0 封，待重试 5 封，发送失败 0 封" in first.stdout
    second = poll(config).stdout
    assert second.startswith("收取邮件 0 封（新邮件 0 封）；回复已发出 0 封，待重试 5 封")
    smtp_server.recover()
    assert "回复已发出 5 封，待重试 0 封" in poll(config).stdout
    assert "回复已发出 0 封，待重试 0 封" in poll(config).stdout
    answered = [
        email.message_from_bytes(m.data, policy=policy.default)["In-Reply-To"]
        for m in smtp_server.messages
    ]
    assert sorted(answered) == sorted(e["message_id"] for e in entries)


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_smtp_554_is_failed_shown_and_not_retried(tmp_path, mailbox, smtp_server, env):
    append_corpus(mailbox, entries=[e for e in expected_entries() if e["reply"] == "ack"][:2])
    config = write_config(tmp_path, mailbox, smtp_server)
    smtp_server.fail_with("554 5.7.1 DT:SPM content rejected as spam", times=1)
    assert "回复已发出 1 封，待重试 0 封，发送失败 1 封" in poll(config).stdout
    assert "回复已发出 0 封，待重试 0 封，发送失败 0 封" in poll(config).stdout
    assert len(smtp_server.rejected) == 1 and len(smtp_server.messages) == 1
    status = CliRunner().invoke(cli, ["status", "--config", str(config)]).stdout
    assert "发送失败 1 封" in status and "554 5.7.1 DT:SPM" in status


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_recreated_folder_is_not_reprocessed(tmp_path, mailbox, smtp_server, env):
    entries = expected_entries()[3:13]
    mailbox.create_folder("报送/2019")
    append_corpus(mailbox, "报送/2019", entries)
    config = write_config(tmp_path, mailbox, smtp_server, folder_name="报送/2019")
    assert "收取邮件 10 封（新邮件 10 封）" in poll(config).stdout
    sent = len(smtp_server.messages)
    before = mailbox.uidvalidity("报送/2019")
    mailbox.delete_folder("报送/2019")
    mailbox.create_folder("报送/2019")
    append_corpus(mailbox, "报送/2019", entries)
    assert mailbox.uidvalidity("报送/2019") != before
    assert poll(config).stdout.startswith("收取邮件 0 封（新邮件 0 封）；回复已发出 0 封")
    assert len(smtp_server.messages) == sent
    late = expected_entries()[13]
    append_corpus(mailbox, "报送/2019", [late])
    assert poll(config).stdout.startswith("收取邮件 1 封（新邮件 1 封）")


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_crash_after_send_does_not_send_twice(tmp_path, mailbox, smtp_server, env):
    mailbox.create_folder("已发送")
    entry = next(e for e in expected_entries() if e["reply"] == "ack")
    append_corpus(mailbox, entries=[entry])
    config = load_config(
        write_config(tmp_path, mailbox, smtp_server, extra_smtp='save_copy_to = "已发送"')
    )
    app = open_app(config)
    real_send = app.transport.send

    def send_then_crash(row):
        real_send(row)
        raise KeyboardInterrupt  # the process dies after the server's 250 and the copy

    app.transport.send = send_then_crash
    with pytest.raises(KeyboardInterrupt):
        Service(app).poll_once()
    app.close()
    assert open_ledger(config.db)["outbox"].get(1)["status"] == "sending"

    with open_app(config) as restarted:
        done = deliver(restarted.db, restarted.transport, restarted.tz)
    assert (done.sent, done.retry) == (0, 0)
    row = open_ledger(config.db)["outbox"].get(1)
    assert (row["status"], row["delivered_to"]) == ("sent", "recovered")
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_errors_are_one_clear_line(tmp_path, mailbox, smtp_server, env, monkeypatch):
    append_corpus(mailbox, entries=expected_entries()[3:4])
    config = write_config(tmp_path, mailbox, smtp_server)

    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    result = poll(config)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"mailproc: 收信邮箱 {mailbox.user} 登录 localhost:")
    assert "被拒绝，请核对用户名和授权码（163 邮箱须用客户端授权码" in result.stderr
    assert "服务器答复：“" in result.stderr  # the server's own words, quoted as its own
    assert len(result.stderr.strip().splitlines()) == 1
    monkeypatch.setenv(PASSWORD_ENV, mailbox.password)

    unreachable = write_config(tmp_path / "u", mailbox, smtp_server, imap_port=free_port())
    result = poll(unreachable)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("mailproc: 连接收信服务器 localhost:")
    assert "服务器拒绝连接，请核对 port 一项" in result.stderr

    plain_port = write_config(tmp_path / "t", mailbox, smtp_server, imap_port=mailbox.port)
    result = poll(plain_port)  # TLS spoken to a plain-text port
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"mailproc: 连接收信服务器 localhost:{mailbox.port} 失败：加密连接（TLS）未能建立，"
        "请核对 security 与 port 是否相符"
    )

    monkeypatch.setenv(f"{PASSWORD_ENV}_SMTP", "wrong")
    result = poll(config)
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("mailproc: 发信邮箱 office@test 登录 localhost:")
    )
    assert "被拒绝，请核对用户名和授权码" in result.stderr
    assert "服务器答复：“535 " in result.stderr

    monkeypatch.delenv(PASSWORD_ENV)
    result = poll(config)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"mailproc: 配置文件：[mailbox] password_env：环境变量 {PASSWORD_ENV} 未设置或为空；"
        "请在启动前设置为邮箱授权码，或改用 password_file 指明存放授权码的文件"
    )


def start_service(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mailproc", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_run_picks_up_new_mail_and_stops_on_sigterm(tmp_path, mailbox, smtp_server, env):
    config = write_config(tmp_path, mailbox, smtp_server, poll_minutes=0.05)  # every 3 s
    service = start_service(config)
    try:
        assert wait_for(lambda: mailbox.sessions(), 10), "the service never polled"
        mailbox.append("INBOX", make_mail("东风镇第2周周报"), internaldate=dt.datetime.now(dt.UTC))
        appended = time.monotonic()
        assert wait_for(lambda: len(smtp_server.messages) == 1, 10)
        assert time.monotonic() - appended <= 3 + 2  # within one poll interval (and its work)
        assert records(config)[0]["unit"] == "东风镇"
    finally:
        service.send_signal(signal.SIGTERM)
        output = service.communicate(timeout=10)[0].decode()
    assert service.returncode == 0, output
    assert "东风镇" in output and "已停止" in output
    assert mailbox.password not in output and SMTP_AUTH[1] not in output


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_run_retries_with_backoff(tmp_path, mailbox, smtp_server, env, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    config = write_config(tmp_path, mailbox, smtp_server, poll_minutes=0.05)
    service = start_service(config)
    time.sleep(2)
    service.send_signal(signal.SIGTERM)
    output = service.communicate(timeout=10)[0].decode()
    assert service.returncode == 0
    assert "收信邮箱" in output and "被拒绝" in output and "5 秒后重试" in output
    assert "wrong" not in output


def test_one_instance_per_ledger(tmp_path):
    config = tmp_path / "config.toml"
    make_config(tmp_path)
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    with ProcessLock(tmp_path / "mailproc.db"):
        result = CliRunner().invoke(
            cli, ["ingest", str(CORPUS / "0004.eml"), "--config", str(config)]
        )
        assert result.exit_code == 2
        assert "另一个 mailproc 正在使用台账" in result.stderr
        with pytest.raises(AlreadyRunning), ProcessLock(tmp_path / "mailproc.db"):
            pass
    listed = CliRunner().invoke(cli, ["messages", "--config", str(config)]).output
    assert listed == "没有符合条件的记录\n"


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_first_run_starts_from_since(tmp_path, mailbox, smtp_server, env):
    old = make_mail("东风镇2018年工作总结", received=dt.datetime(2018, 12, 1, 9, tzinfo=dt.UTC))
    mailbox.append("INBOX", old, internaldate=dt.datetime(2018, 12, 1, 9, tzinfo=dt.UTC))
    append_corpus(mailbox, entries=expected_entries()[3:5])
    path = write_config(tmp_path, mailbox, smtp_server)
    text = path.read_text(encoding="utf-8").replace('folder = "INBOX"', "since = 2019-05-01")
    path.write_text(text, encoding="utf-8")
    assert poll(path).stdout.startswith("收取邮件 2 封（新邮件 2 封）")
    assert poll(path).stdout.startswith("收取邮件 0 封（新邮件 0 封）")
    assert {r["subject"] for r in records(path)}.isdisjoint({"东风镇2018年工作总结"})


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_processed_folder_and_mark_seen_only_when_configured(tmp_path, mailbox, smtp_server, env):
    mailbox.create_folder("已登记")
    append_corpus(mailbox, entries=expected_entries()[3:6])
    path = write_config(tmp_path, mailbox, smtp_server)
    text = path.read_text(encoding="utf-8").replace(
        'folder = "INBOX"', 'folder = "INBOX"\nprocessed_folder = "已登记"\nmark_seen = true'
    )
    path.write_text(text, encoding="utf-8")
    assert poll(path).stdout.startswith("收取邮件 3 封（新邮件 3 封）")
    assert mailbox.flags("INBOX") == {}
    moved = mailbox.flags("已登记")
    assert len(moved) == 3 and all(b"\\Seen" in flags for flags in moved.values())
    assert len(records(path)) == 3


@pytest.mark.parametrize(
    ("imap_security", "smtp_security", "smtp_server"),
    [
        ("starttls", "starttls", {"tls": "starttls", "auth": SMTP_AUTH}),
        ("none", "starttls", {"tls": "starttls", "auth": SMTP_AUTH}),
    ],
    indirect=["smtp_server"],
)
def test_starttls_and_plain_connections(
    tmp_path, mailbox, smtp_server, env, imap_security, smtp_security
):
    append_corpus(mailbox, entries=expected_entries()[3:4])
    path = write_config(
        tmp_path, mailbox, smtp_server, imap_security=imap_security, smtp_security=smtp_security
    )
    result = poll(path)
    assert result.stdout.startswith("收取邮件 1 封（新邮件 1 封）；回复已发出 1 封，"), (
        result.stderr
    )
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_sending_is_paced_to_max_per_minute(tmp_path, mailbox, smtp_server, env):
    config = load_config(write_config(tmp_path, mailbox, smtp_server))
    clock, waits = [0.0], []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        clock[0] += seconds

    app = open_app(config)
    pipeline = Pipeline(app)
    for entry in [e for e in expected_entries() if e["reply"] != "none"][:5]:
        pipeline.ingest((CORPUS / entry["file"]).read_bytes(), source=entry["file"])
    paced = SmtpTransport(
        dataclasses.replace(config.smtp, max_per_minute=2),
        "dwajj6780436@163.com",
        clock=lambda: clock[0],
        sleep=sleep,
    )
    done = deliver(app.db, paced, app.tz)
    app.close()
    assert done.sent == 5 and len(smtp_server.messages) == 5
    assert waits == [60.0, 60.0]  # messages 3 and 5 each wait for the minute to pass


@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_run_catches_up_a_missed_digest_once(tmp_path, mailbox, smtp_server, env, corpus_run):
    config = write_config(tmp_path, mailbox, smtp_server, poll_minutes=0.05)
    with config.open("a", encoding="utf-8") as text:
        text.write('\n[recipients]\noffice = ["office@example.gov.cn"]\n')
    copy_ledger(corpus_run, tmp_path)

    def digests() -> list[str]:
        return [
            m["Subject"]
            for m in (
                email.message_from_bytes(r.data, policy=policy.default)
                for r in smtp_server.messages
            )
            if m["X-Mailproc-Kind"] == "digest"
        ]

    for start in ("2019-06-13T15:00:00+08:00", "2019-06-13T15:30:00+08:00"):
        polls = len(mailbox.sessions())
        service = subprocess.Popen(
            [sys.executable, "-m", "mailproc", "run", "--now", start, "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert wait_for(lambda n=polls: len(mailbox.sessions()) > n, 30)  # ticked, then polled
        finally:
            service.send_signal(signal.SIGTERM)
            output = service.communicate(timeout=15)[0].decode()
        assert service.returncode == 0, output
    # 6 June's digest is a week overdue by then: dropped (rules/jobs.toml [catch_up]).
    assert digests() == ["【周汇总】周报（第2周，6月13日）报送情况及统计汇总"]
