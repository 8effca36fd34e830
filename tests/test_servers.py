"""The real-server fixtures behave like the servers the poller and sender will meet."""

import smtplib
import ssl
import time
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from servers import HELPER_ID, DovecotServer, Mailbox, SmtpServer, parse_rawlog, port_open

CST = timezone(timedelta(hours=8))
RAW = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody line\r\n1 SELECT fake\r\n"


# --- IMAP -------------------------------------------------------------------------------------


def test_login_plain_ssl_and_starttls_with_the_ca_file(mailbox: Mailbox) -> None:
    context = ssl.create_default_context(cafile=str(mailbox.ca_file))
    for host in ("localhost", "127.0.0.1"):  # the cert names both
        with IMAPClient(host, mailbox.ssl_port, ssl_context=context) as imap:
            imap.login(mailbox.user, mailbox.password)
            assert imap.select_folder("INBOX")[b"EXISTS"] == 0

    with IMAPClient(mailbox.host, mailbox.port, ssl=False) as imap:
        assert b"STARTTLS" in imap.capabilities()
        imap.starttls(context)
        imap.login(mailbox.user, mailbox.password)
        assert imap.noop()

    with mailbox.client() as imap:  # plain, already logged in
        assert imap.list_folders() == [((b"\\HasNoChildren",), b"/", "INBOX")]


def test_ssl_with_default_trust_rejects_the_self_signed_cert(mailbox: Mailbox) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(mailbox.host, mailbox.ssl_port, ssl_context=ssl.create_default_context())


def test_wrong_password_fails_fast(mailbox: Mailbox) -> None:
    for _ in range(2):  # no growing auth penalty either
        started = time.monotonic()
        with IMAPClient(mailbox.host, mailbox.port, ssl=False) as imap, pytest.raises(LoginError):
            imap.login(mailbox.user, "wrong")
        assert time.monotonic() - started < 1.5


def test_id_is_answered(mailbox: Mailbox) -> None:
    with mailbox.client() as imap:
        assert dict(imap.id_({"name": "mailproc", "version": "0.1"})) == {b"name": b"Dovecot"}


def test_internaldate_round_trip(mailbox: Mailbox) -> None:
    sent = datetime(2025, 3, 4, 9, 30, 15, tzinfo=CST)
    uid = mailbox.append("INBOX", RAW, internaldate=sent, flags=[b"\\Flagged"])
    with mailbox.client() as imap:
        imap.select_folder("INBOX", readonly=True)
        naive = imap.fetch([uid], ["INTERNALDATE"])[uid][b"INTERNALDATE"]
    # imapclient normalises to the local zone and drops tzinfo: astimezone() restores it.
    assert naive.tzinfo is None
    assert naive.astimezone() == sent

    with mailbox.client() as imap:
        imap.normalise_times = False
        imap.select_folder("INBOX", readonly=True)
        aware = imap.fetch([uid], ["INTERNALDATE"])[uid][b"INTERNALDATE"]
    assert aware == sent
    # Dovecot keeps the instant, not the zone given at APPEND: it answers in its local zone.
    assert aware.utcoffset() == sent.astimezone().utcoffset()
    assert mailbox.flags() == {uid: (b"\\Flagged",)}


def test_body_peek_keeps_unseen_but_rfc822_sets_seen(mailbox: Mailbox) -> None:
    uid = mailbox.append("INBOX", RAW, internaldate=datetime.now(UTC))
    with mailbox.client() as imap:
        imap.select_folder("INBOX")
        assert imap.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] == RAW
        assert mailbox.flags() == {uid: ()}
        imap.fetch([uid], ["RFC822"])
    assert mailbox.flags() == {uid: (b"\\Seen",)}


def test_chinese_folder_names(mailbox: Mailbox) -> None:
    mailbox.create_folder("报表")
    mailbox.create_folder("报表/二月")
    uid = mailbox.append("报表/二月", RAW, internaldate=datetime.now(UTC))
    with mailbox.client() as imap:
        assert {name for _, _, name in imap.list_folders()} == {"INBOX", "报表", "报表/二月"}
        assert imap.select_folder("报表/二月")[b"EXISTS"] == 1
    assert list(mailbox.flags("报表/二月")) == [uid]
    # On the wire the name is modified UTF-7, which is what the server stored.
    helper_lines = [line for s in mailbox.sessions(helpers=True) for line in s.lines]
    assert 'CREATE "&YqWIaA-/&ToxnCA-"' in helper_lines


def test_session_log_shows_commands_in_order(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", RAW, internaldate=datetime.now(UTC))  # a helper session
    with mailbox.client() as imap:
        imap.id_({"name": "mailproc"})
        imap.select_folder("INBOX")
        imap.search("UNSEEN")
    with mailbox.client() as imap:
        imap.select_folder("INBOX")

    first, second = mailbox.sessions()
    assert first.commands == ["ID", "SELECT", "UID SEARCH", "LOGOUT"]
    assert first.lines[0] == 'ID ("name" "mailproc")'
    assert second.commands == ["SELECT", "LOGOUT"]
    assert first.started < second.started and first.pid != second.pid

    def id_before_select(commands: list[str]) -> bool:
        return "ID" in commands and commands.index("ID") < commands.index("SELECT")

    assert [id_before_select(s.commands) for s in mailbox.sessions()] == [True, False]
    # The helper's APPEND literal contained "1 SELECT fake": it is data, not a command.
    (helper,) = mailbox.sessions(helpers=True)[:1]
    assert helper.is_helper and helper.commands == ["ID", "APPEND", "LOGOUT"]
    assert HELPER_ID in helper.lines[0]
    assert "ID sent: name=mailproc" in mailbox.server.log_text()


def test_parse_rawlog_skips_literals_and_untagged_lines() -> None:
    data = (
        b"1.1 A1 APPEND INBOX {12}\r\n1.2 x\r\n1.2 B2 NOOP\r\n1.3 \r\n"
        b"1.4 A2 IDLE\r\n1.5 DONE\r\n1.6 A3 uid fetch 1 (FLAGS)\r\n"
    )
    assert parse_rawlog(data) == ["APPEND INBOX {12}", "IDLE", "uid fetch 1 (FLAGS)"]


def test_kill_and_restart_keep_mail_and_uidvalidity() -> None:
    server = DovecotServer()
    try:
        server.start()
        uid = server.append("office", "INBOX", RAW, internaldate=datetime.now(UTC))
        validity = server.uidvalidity("office")
        connected = server.client("office")

        started = time.monotonic()
        server.kill()
        assert time.monotonic() - started < 2
        assert not port_open(server.port) and not port_open(server.ssl_port)
        with pytest.raises((OSError, connected.Error, connected.AbortError)):
            connected.noop()  # the session died with the master

        server.start()  # must cope with the stale run/ sockets
        assert server.flags("office") == {uid: ()}
        assert server.uidvalidity("office") == validity

        server.restart()  # graceful this time
        assert server.uidvalidity("office") == validity
        assert "Fatal" not in server.log_text()
    finally:
        server.close()
    assert not server.folder.exists()


def test_recreating_a_folder_changes_uidvalidity(mailbox: Mailbox) -> None:
    mailbox.create_folder("Archive")
    before = mailbox.uidvalidity("Archive")
    mailbox.delete_folder("Archive")
    mailbox.create_folder("Archive")
    assert mailbox.uidvalidity("Archive") != before


# --- SMTP -------------------------------------------------------------------------------------

USER, PASSWORD = "office@example.com", "smtp-secret"


def message(subject: str = "报表") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = USER, "town@example.com", subject
    msg.set_content("见附件")
    return msg


def test_smtp_plain(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as smtp:
        smtp.send_message(message(), to_addrs=["a@example.com", "b@example.com"])
    (received,) = smtp_server.messages
    assert received.mail_from == USER
    assert received.rcpt_tos == ["a@example.com", "b@example.com"]
    assert b"Subject: =?utf-8?b?5oql6KGo?=" in received.data
    assert received.reply.startswith("250")


@pytest.mark.parametrize(
    "smtp_server", [{"tls": "starttls", "auth": (USER, PASSWORD)}], indirect=True
)
def test_smtp_starttls_and_auth(smtp_server: SmtpServer) -> None:
    context = ssl.create_default_context(cafile=str(smtp_server.ca_file))
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.send_message(message())
        assert refused.value.smtp_code == 530  # STARTTLS first
        smtp.starttls(context=context)
        with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
            smtp.login(USER, "wrong")
        assert bad.value.smtp_code == 535
        smtp.login(USER, PASSWORD)
        smtp.send_message(message())
    assert len(smtp_server.messages) == 1


def test_smtp_implicit_tls_and_auth() -> None:
    server = SmtpServer(auth=(USER, PASSWORD), tls="implicit")
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(server.ca_file))
        with smtplib.SMTP_SSL("localhost", server.port, context=context) as smtp:
            smtp.ehlo()
            assert "PLAIN" in smtp.esmtp_features["auth"]  # advertised despite no STARTTLS
            with pytest.raises(smtplib.SMTPSenderRefused) as unauthenticated:
                smtp.send_message(message())
            assert unauthenticated.value.smtp_code == 530
            smtp.login(USER, PASSWORD)
            smtp.send_message(message())
        assert len(server.messages) == 1
        with pytest.raises(ssl.SSLCertVerificationError):
            smtplib.SMTP_SSL(server.host, server.port, context=ssl.create_default_context())
    finally:
        server.stop()


def send(server: SmtpServer, subject: str) -> None:
    with smtplib.SMTP(server.host, server.port) as smtp:
        smtp.send_message(message(subject))


def test_fail_with_temporary_error_then_recover(smtp_server: SmtpServer) -> None:
    smtp_server.fail_with("451 4.7.1 MI:SFQ try later", times=2)
    for attempt in ("1", "2"):
        with pytest.raises(smtplib.SMTPDataError) as error:
            send(smtp_server, attempt)
        assert isinstance(error.value, smtplib.SMTPResponseException)
        assert error.value.smtp_code == 451
        assert b"MI:SFQ" in error.value.smtp_error
    send(smtp_server, "3")
    assert [m.reply[:3] for m in smtp_server.rejected] == ["451", "451"]
    assert len(smtp_server.messages) == 1


def test_fail_with_permanent_error_until_recover(smtp_server: SmtpServer) -> None:
    smtp_server.fail_with("554 5.7.1 DT:SPM spam", times=None)
    for attempt in range(3):
        with pytest.raises(smtplib.SMTPDataError) as error:
            send(smtp_server, str(attempt))
        assert error.value.smtp_code == 554
    smtp_server.recover()
    send(smtp_server, "ok")
    assert len(smtp_server.rejected) == 3
    assert len(smtp_server.messages) == 1
