"""What an attacker on the path or in a subject could do, and does not: a stripped STARTTLS is
one clear line before any password is sent, the configured CA adds to the system's, a
subject's escape sequences never reach the clerk's terminal or page, and no cell a unit wrote
runs as a formula."""

import base64
import json
import socket
import ssl
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_config
from hostile import written
from mails import make_mail
from openpyxl import Workbook
from servers import HOST, SmtpServer, free_port, make_cert

from mailproc.cli import cli
from mailproc.config import parse_config
from mailproc.display import json_text, printable
from mailproc.fetch.imap import MailboxError, connect
from mailproc.outgoing.delivery import DeliveryError
from mailproc.outgoing.smtp import SmtpTransport
from mailproc.reports.workbook import write


def server_section(port: int, **extra: str) -> dict:
    return {"host": "localhost", "port": port, "username": "office", "password_env": "PW", **extra}


class NoStarttlsImap:
    """An IMAP server that offers no STARTTLS (as if a man in the middle struck it from the
    greeting) and records every line a client sends."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lines: list[bytes] = []
        self.listener = socket.create_server((HOST, self.port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection, connection.makefile("rwb") as stream:
            stream.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
            stream.flush()
            for line in stream:
                self.lines.append(line.strip())
                tag, _, command = line.decode().strip().partition(" ")
                if command.upper() == "CAPABILITY":
                    stream.write(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n".encode())
                else:
                    stream.write(f"{tag} BAD not here\r\n".encode())
                stream.flush()

    def close(self) -> None:
        self.listener.close()


def test_imap_without_starttls_is_one_line_and_no_login(tmp_path, monkeypatch):
    monkeypatch.setenv("PW", "the-code")
    fake = NoStarttlsImap()
    try:
        section = server_section(fake.port, security="starttls")
        server = parse_config({"mailbox": section}, tmp_path).mailbox.server
        with pytest.raises(MailboxError) as refused:
            connect(server)
        fake.thread.join(5)
    finally:
        fake.close()
    assert str(refused.value) == (
        f"收信服务器 localhost:{fake.port} 不支持 STARTTLS 加密，为免授权码明文传送，未登录；"
        '请核对配置文件 [mailbox] security，或改为 "ssl"（端口 993）'
    )
    assert not any(b"LOGIN" in line.upper() or b"the-code" in line for line in fake.lines)


def test_smtp_without_starttls_is_one_line_and_nothing_sent(tmp_path, monkeypatch):
    monkeypatch.setenv("PW", "the-code")
    plain = SmtpServer()  # offers no STARTTLS
    plain.start()
    try:
        section = server_section(plain.port, security="starttls")
        config = parse_config({"smtp": section}, tmp_path).smtp
        transport = SmtpTransport(config, "dwajj6780436@163.com")
        row = {"to_addrs": "a@example.cn", "cc_addrs": None, "eml": "Subject: x\n\nx\n"}
        with pytest.raises(DeliveryError) as refused:
            transport.send(row)
    finally:
        plain.stop()
    assert str(refused.value) == (
        f"发信服务器 localhost:{plain.port} 不支持 STARTTLS 加密，为免授权码明文传送，未登录；"
        '请核对配置文件 [smtp] security，或改为 "ssl"（端口 465）'
    )
    assert (refused.value.permanent, refused.value.stop_batch, plain.messages) == (False, True, [])


def test_ca_file_is_added_to_the_system_authorities(tmp_path):
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    ca_file, _ = make_cert(tmp_path)  # a self-signed certificate for localhost: a private CA
    tls = {"ca_file": str(ca_file)}
    context = parse_config({"smtp": server_section(465), "tls": tls}, tmp_path).smtp.server
    context = context.ssl_context()
    assert context.cert_store_stats()["x509_ca"] == system + 1
    assert {"commonName": "localhost"} in [
        dict(field[0] for field in cert["subject"]) for cert in context.get_ca_certs()
    ]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


# OSC that retitles the terminal, a bidi override that shows gpj.exe as exe.jpg, CSI that
# clears the screen, a line break, a C1 CSI, a bell
HOSTILE_SUBJECT = "\x1b]0;已被接管\x07报\u202egpj.exe\x1b[2J安全生产月活动统计表\r\n\x9b31m完\x07"
SHOWN_SUBJECT = "报gpj.exe安全生产月活动统计表  完"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (HOSTILE_SUBJECT, SHOWN_SUBJECT),
        ("周报\x1bP1$r\x1b\\（第2周）", "周报（第2周）"),  # DCS ended by ST
        ("东风镇\x1b]8;;http://evil.example\x1b\\周报", "东风镇周报"),  # a hidden link
        ("a\x00b\x7fc\x85d\u2066e\u2069f\u200fg\tx", "abcdefg x"),
        ("unterminated \x1b]0;title", "unterminated "),
        ("正常的标题 (第3周)", "正常的标题 (第3周)"),
    ],
)
def test_printable_strips_every_control(text, shown):
    assert printable(text) == shown


def test_printable_keeps_lines_and_tabs_when_asked():
    assert printable("一\r\n二\t三\x1b[1m\u2028四\x0b", multiline=True) == "一\n二\t三\n四"


def test_json_stays_exact_and_inert():
    text = json_text({"subject": HOSTILE_SUBJECT})
    assert not any(c in text for c in "\x1b\x07\x9b\u202e\r\n")
    assert json.loads(text) == {"subject": HOSTILE_SUBJECT}


def encoded(text: str) -> bytes:
    return b"=?utf-8?b?" + base64.b64encode(text.encode()) + b"?="


@pytest.fixture
def hostile_config(tmp_path) -> Path:
    """A ledger holding one mail from a stranger whose subject and name carry escapes."""
    make_config(tmp_path)
    path = tmp_path / "config.toml"
    path.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    raw = make_mail("SUBJECT", sender="NAME <someone@evil.example>", message_id="<m1@evil>")
    raw = raw.replace(b"Subject: SUBJECT", b"Subject: " + encoded(HOSTILE_SUBJECT))
    raw = raw.replace(b"From: NAME", b"From: " + encoded("\x1b[8m\u202e局\x1b]0;x\x07"))
    (tmp_path / "m.eml").write_bytes(raw)
    assert run(path, "ingest", str(tmp_path / "m.eml")).exit_code == 0
    return path


def run(config: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(config)], catch_exceptions=False)


def test_terminal_commands_show_no_control_character(hostile_config):
    shown = {
        args[0]: run(hostile_config, *args).output
        for args in (("inbox",), ("messages",), ("history", "<m1@evil>"), ("receipts", "--json"))
    }
    for command, output in shown.items():
        unsafe = [c for c in output if c in "\x1b\x07\x9b\u202e\r"]
        assert unsafe == [], command
    inbox = shown["inbox"].splitlines()
    assert inbox[1] == f"#1    2019-06-12 09:30  —     someone@evil.example  {SHOWN_SUBJECT}"
    assert inbox[2] == "    无法识别"
    assert shown["messages"].splitlines()[1].endswith(f"  {SHOWN_SUBJECT}")
    assert f"收到 someone@evil.example：{SHOWN_SUBJECT}（" in shown["history"]
    record = json.loads(run(hostile_config, "messages", "--json").output)
    assert record["subject"] == HOSTILE_SUBJECT  # exact in JSON, as \u escapes


def test_dashboard_shows_no_control_character(hostile_config):
    shown = run(hostile_config, "dashboard", "--now", "2019-06-12T12:00:00").output
    path = Path(written(shown))
    page = path.read_text(encoding="utf-8")
    assert "报gpj.exe安全生产月活动统计表\n完" in page  # a line break is whitespace in a page
    assert [c for c in page if c in "\x1b\x07\x9b\u202e\r"] == []


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1", "-1", "@SUM(A1)", "＝HYPERLINK(\"http://evil.example\")", "＋1", "－1",
     "＠A1", "\t=1+1", "\r=cmd|' /c calc'!A1"],
)  # fmt: skip
def test_every_formula_start_stays_text(value):
    cell = write(Workbook().active, 1, 1, value)
    assert (cell.value, cell.data_type, cell.quotePrefix) == (value, "s", True)


def test_ordinary_text_is_not_marked():
    cell = write(Workbook().active, 1, 1, "东风镇（第2周）")
    assert (cell.data_type, cell.quotePrefix) == ("s", False)
