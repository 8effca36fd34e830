"""Real Dovecot (IMAP) and aiosmtpd (SMTP) servers on 127.0.0.1 for integration tests.

No mocks: the IMAP poller and SMTP sender are tested against real protocol implementations, so
quirks like modified UTF-7 folder names, UIDVALIDITY changes and 4xx/5xx replies are the real
thing. Dovecot 2.3 must be installed (`apt-get install dovecot-imapd`); if it is missing the
fixtures raise instead of skipping, so CI fails loudly.

INTERNALDATE: imapclient returns it naive, converted to the *client's* local zone (the same
machine as the server here). Turn it back into an aware datetime with `naive.astimezone()`, or
set `client.normalise_times = False` to get aware datetimes in the server's local zone (Dovecot
keeps the instant given at APPEND, not its zone).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient

HOST = "127.0.0.1"
OFFICE_USER = "office"
OFFICE_PASSWORD = "office-secret"
VMAIL_UID = 5000  # Dovecot refuses to run mail processes as root; the uid need not exist.
HELPER_ID = "tests.servers"  # ID name sent by the helpers, so their sessions can be told apart.
_DOVECOT_CANDIDATES = ("dovecot", "/usr/sbin/dovecot")
_TIMEOUT = 10.0


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd and Dovecot can't be asked for port 0)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    """True if something accepts TCP connections on the port."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait(condition, what: str, timeout: float = _TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed cert for localhost/127.0.0.1; the cert file doubles as the tests' CA file."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def client_context(ca_file: Path) -> ssl.SSLContext:
    """A client TLS context that trusts only the test cert (hostname checks stay on)."""
    return ssl.create_default_context(cafile=str(ca_file))


# --- IMAP -------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(rb"(^|\n)\d+\.\d+ ")
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


@dataclass(frozen=True)
class ImapSession:
    """One post-login IMAP session as Dovecot's rawlog saw it (pre-login commands not included).

    `commands` holds the verbs in order ("ID", "SELECT", "UID FETCH", ...); `lines` the full
    command lines without tag and without literal data.
    """

    user: str
    pid: int
    started: float
    lines: list[str]

    @property
    def commands(self) -> list[str]:
        verbs = []
        for line in self.lines:
            words = line.split(" ", 2)
            verb = words[0].upper()
            if verb == "UID" and len(words) > 1:
                verb = f"UID {words[1].upper()}"
            verbs.append(verb)
        return verbs

    @property
    def is_helper(self) -> bool:
        return bool(self.lines) and self.lines[0].startswith("ID") and HELPER_ID in self.lines[0]


def parse_rawlog(data: bytes) -> list[str]:
    """Client command lines from a rawlog `.in` file: timestamps and literal bytes removed."""
    raw = _TIMESTAMP.sub(rb"\1", data)
    lines, pos, current = [], 0, b""
    while pos < len(raw):
        end = raw.find(b"\r\n", pos)
        end = len(raw) if end < 0 else end
        segment = raw[pos:end]
        current += segment
        pos = end + 2
        literal = _LITERAL.search(segment)
        if literal:  # the command continues after the literal's bytes
            pos += int(literal.group(1))
            continue
        _tag, _, rest = current.strip().partition(b" ")
        if rest:  # lines without a tag (IDLE's DONE, SASL continuations) are not commands
            lines.append(rest.decode("utf-8", "replace"))
        current = b""
    return lines


class DovecotServer:
    """A throwaway Dovecot 2.3 with plain IMAP, IMAPS (+STARTTLS) and per-session rawlogs.

    Everything lives in one world-traversable folder under /tmp: Dovecot's unprivileged
    processes can't enter pytest's 0700 tmp folders, which shows up as auth failures.
    """

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.binary = find_dovecot()
        self.folder = Path(tempfile.mkdtemp(prefix="dovecot-", dir="/tmp"))
        self.folder.chmod(0o755)
        self.host = HOST
        self.port = free_port()
        self.ssl_port = free_port()
        self.ca_file, key = make_cert(self.folder)
        self._users: dict[str, str] = {}
        for sub in ("home", "rawlog"):
            (self.folder / sub).mkdir()
            os.chown(self.folder / sub, VMAIL_UID, VMAIL_UID)
        (self.folder / "passwd.d").mkdir()
        self.config = self.folder / "dovecot.conf"
        self.config.write_text(self._config_text(key))
        for name, password in (users or {OFFICE_USER: OFFICE_PASSWORD}).items():
            self.add_user(name, password)

    def _config_text(self, key: Path) -> str:
        d = self.folder
        return f"""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
listen = {HOST}
protocols = imap
ssl = yes
ssl_cert = <{self.ca_file}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = {d}/passwd.d/%u
}}
userdb {{
  driver = static
  args = uid={VMAIL_UID} gid={VMAIL_UID} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol imap {{
  rawlog_dir = {d}/rawlog/%u
  imap_id_log = *
}}
"""

    @property
    def users(self) -> dict[str, str]:
        return dict(self._users)

    @property
    def is_running(self) -> bool:
        return port_open(self.port)

    def add_user(self, name: str, password: str) -> None:
        """Add a login, also while running.

        One passwd-file per user: Dovecot stats a passwd-file at most once a second, so a
        user appended to a shared file may stay unknown for a second; a new file is read at once.
        """
        if not re.fullmatch(r"[\w.@-]+", name) or ":" in password or name in self._users:
            raise ValueError(f"bad or duplicate user {name!r}")
        self._users[name] = password
        # rawlog_dir is not created by Dovecot: without it the session is silently not logged.
        (self.folder / "rawlog" / name).mkdir()
        os.chown(self.folder / "rawlog" / name, VMAIL_UID, VMAIL_UID)
        (self.folder / "passwd.d" / name).write_text(f"{name}:{{PLAIN}}{password}:::::\n")

    def start(self) -> None:
        """Start the daemon and wait until both ports accept and master.pid exists."""
        # A killed instance leaves sockets behind and Dovecot then refuses to start (rc 89).
        shutil.rmtree(self.folder / "run", ignore_errors=True)
        # Not pipes: the daemon inherits them and subprocess would wait for EOF forever.
        errors = self.folder / "start.err"
        with errors.open("w") as stderr:
            code = subprocess.run(
                [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=stderr
            ).returncode
        if code != 0:
            raise RuntimeError(f"dovecot failed to start: {errors.read_text()}{self.log_text()}")
        _wait(lambda: port_open(self.port) and port_open(self.ssl_port), "dovecot ports")
        _wait(lambda: self._pid_file.exists(), "dovecot master.pid")

    @property
    def _pid_file(self) -> Path:
        return self.folder / "run" / "master.pid"

    def stop(self) -> None:
        """Graceful stop via doveadm (1-3 s); waits until the port refuses."""
        doveadm = shutil.which("doveadm") or str(Path(self.binary).with_name("doveadm"))
        subprocess.run(
            [doveadm, "-c", str(self.config), "stop"],
            check=True,
            capture_output=True,
        )
        _wait(lambda: not self.is_running, "dovecot to stop")

    def kill(self) -> None:
        """Hard crash: SIGKILL the whole process group, sessions included."""
        pid = int(self._pid_file.read_text())
        os.killpg(pid, signal.SIGKILL)
        # Zombies linger a moment; the port refusing is what clients see.
        _wait(lambda: not port_open(self.port) and not port_open(self.ssl_port), "port to close")

    def restart(self, hard: bool = False) -> None:
        """Stop (or kill, if `hard`) and start again on the same ports with the same maildirs."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def close(self) -> None:
        """Kill if running and delete the folder: fast teardown, no graceful wait."""
        if self._pid_file.exists() and self.is_running:
            self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_text(self) -> str:
        """Dovecot's log (logins, `ID sent: ...` lines, errors); written asynchronously."""
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def session_logs(self, user: str | None = None, helpers: bool = False) -> list[ImapSession]:
        """Post-login sessions in start order, from rawlog; helper sessions left out by default.

        Rawlog files are flushed per command, so a session is complete once its client has
        logged out.
        """
        sessions = []
        for path in (self.folder / "rawlog").glob("*/*.in"):
            out = path.with_suffix(".out").read_bytes().split(b" ", 1)[0]
            session = ImapSession(
                user=path.parent.name,
                pid=int(path.name.split(".")[1]),
                started=float(out or "inf"),
                lines=parse_rawlog(path.read_bytes()),
            )
            if (user is None or session.user == user) and (helpers or not session.is_helper):
                sessions.append(session)
        return sorted(sessions, key=lambda s: s.started)

    def client(
        self, user: str, *, tls: Literal["plain", "ssl", "starttls"] = "plain"
    ) -> IMAPClient:
        """A logged-in imapclient (use as a context manager to log out)."""
        if tls == "ssl":
            imap = IMAPClient(self.host, self.ssl_port, ssl_context=client_context(self.ca_file))
        else:
            imap = IMAPClient(self.host, self.port, ssl=False)
            if tls == "starttls":
                imap.starttls(client_context(self.ca_file))
        imap.login(user, self._users[user])
        return imap

    def _helper(self, user: str) -> IMAPClient:
        imap = self.client(user)
        imap.id_({"name": HELPER_ID})
        return imap

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        internaldate: datetime,
        flags: Iterable[str | bytes] = (),
    ) -> int:
        """Store a message as if delivered at `internaldate` (aware); returns its UID."""
        with self._helper(user) as imap:
            reply = imap.append(folder, raw, flags=tuple(flags), msg_time=internaldate)
        match = re.search(rb"APPENDUID \d+ (\d+)", reply)
        if not match:
            raise RuntimeError(f"no APPENDUID in {reply!r}")
        return int(match.group(1))

    def create_folder(self, user: str, folder: str) -> None:
        with self._helper(user) as imap:
            imap.create_folder(folder)

    def delete_folder(self, user: str, folder: str) -> None:
        with self._helper(user) as imap:
            imap.delete_folder(folder)

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """{uid: flags} without \\Recent (it depends on who looked first), read-only."""
        with self._helper(user) as imap:
            imap.select_folder(folder, readonly=True)
            # imapclient 4.1 drops every result of fetch("1:*") as unsolicited: pass real UIDs.
            data = imap.fetch(imap.search("ALL"), ["FLAGS"])
        return {
            uid: tuple(flag for flag in item[b"FLAGS"] if flag != b"\\Recent")
            for uid, item in data.items()
        }

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        with self._helper(user) as imap:
            return imap.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"]


def find_dovecot() -> str:
    """Path of a Dovecot 2.3 binary, or a loud error (these tests must not silently skip)."""
    binary = next(filter(None, map(shutil.which, _DOVECOT_CANDIDATES)), None)
    if binary is None:
        raise RuntimeError(
            "dovecot not found: the IMAP tests need a real server. Install it with "
            "`apt-get install -y dovecot-imapd` (Debian 12 ships 2.3)."
        )
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    if not version.startswith("2.3."):
        raise RuntimeError(f"tests/servers.py writes a Dovecot 2.3 config, found {version!r}")
    if os.geteuid() != 0:
        raise RuntimeError("the Dovecot fixture must run as root (it switches to uid 5000)")
    return binary


@dataclass(frozen=True)
class Mailbox:
    """A fresh IMAP account on the shared server, so tests never see each other's mail."""

    server: DovecotServer
    user: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ssl_port(self) -> int:
        return self.server.ssl_port

    @property
    def ca_file(self) -> Path:
        return self.server.ca_file

    def client(self, tls: Literal["plain", "ssl", "starttls"] = "plain") -> IMAPClient:
        return self.server.client(self.user, tls=tls)

    def append(
        self, folder: str, raw: bytes, internaldate: datetime, flags: Iterable[str | bytes] = ()
    ) -> int:
        return self.server.append(self.user, folder, raw, internaldate, flags)

    def create_folder(self, folder: str) -> None:
        self.server.create_folder(self.user, folder)

    def delete_folder(self, folder: str) -> None:
        self.server.delete_folder(self.user, folder)

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        return self.server.flags(self.user, folder)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        return self.server.uidvalidity(self.user, folder)

    def sessions(self, helpers: bool = False) -> list[ImapSession]:
        return self.server.session_logs(self.user, helpers=helpers)


# --- SMTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    reply: str  # what the server answered to DATA


class _Controller(Controller):
    def factory(self) -> SMTP:
        # auth_require_tls=False is deliberate for implicit TLS: silence aiosmtpd's warning.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        return self.server._receive(envelope)


@dataclass
class SmtpServer:
    """An in-process aiosmtpd that records messages and can refuse DATA on demand.

    tls: None (plain), "starttls" (required before MAIL) or "implicit" (SMTPS, like
    smtp.163.com:465). With `auth`, AUTH PLAIN/LOGIN with (username, password) is required.
    """

    auth: tuple[str, str] | None = None
    tls: Literal["starttls", "implicit"] | None = None
    host: str = HOST
    port: int = field(default_factory=free_port)
    messages: list[ReceivedMessage] = field(default_factory=list, init=False)
    rejected: list[ReceivedMessage] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="smtp-", dir="/tmp"))
        self.ca_file, key = make_cert(self.folder)
        self._lock = threading.Lock()
        self._failure: str | None = None
        self._failures_left: int | None = None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, key)
        options: dict = {}
        if self.auth:
            # aiosmtpd can't see implicit TLS (its issue #281) and would hide AUTH there.
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.tls != "implicit",
            )
        if self.tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        self._controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            ssl_context=context if self.tls == "implicit" else None,
            server_hostname="localhost",
            **options,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.auth is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        )
        return AuthResult(success=ok, handled=False)  # handled=True would suppress the 535

    def _receive(self, envelope: Envelope) -> str:
        with self._lock:
            reply = self._failure or "250 OK"
            if self._failures_left is not None:
                self._failures_left -= 1
                if self._failures_left <= 0:
                    self._failure = self._failures_left = None
        message = ReceivedMessage(
            envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or b"", reply
        )
        (self.messages if reply.startswith("2") else self.rejected).append(message)
        return reply

    def fail_with(self, reply: str, times: int | None = 1) -> None:
        """Answer DATA with `reply` for the next `times` messages (None: until `recover()`)."""
        with self._lock:
            self._failure, self._failures_left = reply, times

    def recover(self) -> None:
        """Accept messages again."""
        with self._lock:
            self._failure = self._failures_left = None

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


# --- fixtures ---------------------------------------------------------------------------------

_user_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the session (startup ~0.1 s, but graceful stop costs seconds)."""
    server = DovecotServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> Mailbox:
    """A fresh user on the shared Dovecot; restarts the server if a test left it down."""
    if not dovecot.is_running:
        dovecot.start()
    user = f"user{next(_user_numbers)}"
    password = secrets.token_hex(8)
    dovecot.add_user(user, password)
    return Mailbox(dovecot, user, password)


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """A plain SMTP server; for TLS/auth parametrize indirectly with SmtpServer's keywords:
    `@pytest.mark.parametrize("smtp_server", [{"tls": "implicit", "auth": ("u", "p")}],
    indirect=True)`."""
    server = SmtpServer(**getattr(request, "param", {}))
    server.start()
    try:
        yield server
    finally:
        server.stop()
