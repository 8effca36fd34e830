"""Configuration: one TOML file, paths relative to its folder; a secret is never in it, only
the name of the environment variable or of the file (a systemd credential) that holds it.

A wrong or missing key is a `ConfigError` whose message is one line naming the key, so the
person installing mailproc never reads a traceback to find a typo.
"""

import datetime as dt
import functools
import ipaddress
import os
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailproc import resources
from mailproc.read.budget import MIB, Limits
from mailproc.toml_tables import Table, TableError, os_problem, written

TRANSPORTS = ("dir", "smtp")
SECURITY = ("ssl", "starttls", "none")
_NOT_A_DATE = "应为日期，如 2019-05-01，现写的是 {}"

# Every section and key mailproc reads; anything else is a typo worth reporting.
KNOWN: dict[str, set[str]] = {
    "paths": {"rules", "templates", "db", "archive", "outbox", "reports"},
    "delivery": {"transport", "office_copy"},
    "mailbox": {
        "host", "port", "security", "username", "password_env", "password_file", "folder",
        "processed_folder", "since", "poll_minutes", "mark_seen", "timeout_seconds", "batch_size",
        "authserv_id",
    },
    "smtp": {
        "host", "port", "security", "username", "password_env", "password_file", "from_address",
        "from_name", "max_per_minute", "timeout_seconds", "retry_minutes", "save_copy_to",
    },
    "tls": {"ca_file"},
    "console": {"enabled", "listen", "https", "session_hours"},
    "recipients": {"supervisors", "office"},
    "limits": {
        "memory_mb", "cpu_seconds", "wall_seconds", "unpacked_mb", "file_unpacked_mb", "files",
        "depth", "archive_mb",
    },
}  # fmt: skip


class ConfigError(TableError):
    """The configuration cannot be used; the message names the key."""

    kind = "配置文件"
    missing_file = "找不到此文件；可复制 config.example.toml 改写，或用 --config 指明配置文件"

    @classmethod
    def place(cls, table: str, key: str, label: str = "") -> str:
        """`[section] key`; at the top level every key is a section: `[section]`."""
        return f"[{table}] {key}" if table else f"[{key}]"


@dataclass(frozen=True)
class ServerConfig:
    """Where and how to log in to one mail server; the password is read when needed."""

    section: str
    host: str
    port: int
    security: str
    username: str
    # Exactly one of the two names where the authorization code is: an environment variable,
    # or a file (a bare name is a systemd credential when $CREDENTIALS_DIRECTORY is set)
    password_env: str | None
    password_file: str | None
    folder: Path  # the config's: a relative password_file outside systemd is taken from it
    timeout: float
    ca_file: Path | None

    def password(self) -> str:
        """The authorization code, read now; a problem is one line that never holds it."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError.at(
                    None,
                    self.section,
                    "password_env",
                    f"环境变量 {self.password_env} 未设置或为空；请在启动前设置为邮箱授权码，"
                    "或改用 password_file 指明存放授权码的文件",
                )
            return value
        path = self.password_path()
        fail = functools.partial(ConfigError.at, None, self.section, "password_file")
        try:
            mode = path.stat().st_mode
            value = path.read_bytes().decode("utf-8").strip()
        except OSError as exc:
            raise fail(f"授权码文件 {path} 无法读取：{os_problem(exc)}") from None
        except UnicodeDecodeError:
            raise fail(f"授权码文件 {path} 不是 UTF-8 编码的文本，请另存为 UTF-8 编码") from None
        if mode & stat.S_IROTH:
            raise fail(
                f"授权码文件 {path} 本机所有用户都能读取，不安全；"
                f"请执行 chmod o-r {path}（权限改为 0600 或 0640）"
            )
        if not value:
            raise fail(f"授权码文件 {path} 是空的，请写入邮箱授权码")
        return value

    def password_path(self) -> Path:
        """The password file: a bare name is a credential systemd passed (LoadCredential=)
        when it did, else a file beside the config; an absolute path is itself."""
        path = Path(self.password_file or "").expanduser()
        credentials = os.environ.get("CREDENTIALS_DIRECTORY")
        if path.is_absolute():
            return path
        return Path(credentials) / path if credentials else self.folder / path

    def ssl_context(self) -> ssl.SSLContext:
        """The system's certificate authorities, and [tls] ca_file's besides them."""
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MailboxConfig:
    server: ServerConfig
    folder: str
    processed_folder: str | None
    since: dt.date | None
    poll_minutes: float
    mark_seen: bool
    batch_size: int
    # The receiving server's name in the Authentication-Results it adds (mx.163.com): only its
    # SPF/DMARC results are believed; None trusts no such header
    authserv_id: str | None


@dataclass(frozen=True)
class SmtpConfig:
    server: ServerConfig
    max_per_minute: float
    retry_minutes: float
    save_copy_to: str | None


@dataclass(frozen=True)
class ConsoleConfig:
    """The office's web console (`mailproc serve`, or inside `mailproc run` when enabled)."""

    enabled: bool
    host: str
    port: int
    https: bool  # served behind TLS (nginx): the session cookie is marked Secure
    session_hours: float


@dataclass(frozen=True)
class Config:
    file: Path | None
    rules: Path
    templates: Path
    db: Path
    archive: Path
    outbox: Path
    reports: Path
    transport: str
    office_copy: bool
    from_address: str | None
    from_name: str | None
    mailbox: MailboxConfig | None
    smtp: SmtpConfig | None
    supervisors: tuple[str, ...]
    office: tuple[str, ...]
    limits: Limits
    console: ConsoleConfig


def _absolute(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path)


def _path(paths: Table, key: str, base: Path, default: Path) -> Path:
    """A [paths] entry; "" is refused rather than unset, as it would name the config's folder."""
    value = paths.data.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise paths.fail(
            key, f"应为文件或文件夹的路径（用英文双引号括起，不能为空），现写的是 {written(value)}"
        )
    return _absolute(base, value)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _server(
    section: Table, ssl_port: int, plain_port: int, ca_file: Path | None, folder: Path
) -> ServerConfig:
    security = section.choice("security", SECURITY, "ssl")
    port = section.number("port", ssl_port if security == "ssl" else plain_port, minimum=1)
    if port != int(port) or port > 65535:
        raise section.fail("port", f"应为 1 到 65535 之间的端口号，现写的是 {written(port)}")
    host = section.text("host")
    if security == "none" and not is_loopback(host):
        raise section.fail(
            "security",
            f"写 none 会把密码以明文发给{written(host)}，只允许用于本机的服务器"
            "（localhost、127.0.0.1、::1）；请改为 ssl 或 starttls",
        )
    password_env = section.optional_text("password_env")
    password_file = section.optional_text("password_file")
    if password_env is None and password_file is None:
        raise section.fail(
            "password_env",
            "缺少此项：请写 password_env（存放授权码的环境变量名）"
            "或 password_file（存放授权码的文件）",
        )
    if password_env is not None and password_file is not None:
        raise section.fail(
            "password_file", "password_env 与 password_file 只能写一项，请删去其中一项"
        )
    return ServerConfig(
        section=section.name,
        host=host,
        port=int(port),
        security=security,
        username=section.text("username"),
        password_env=password_env,
        password_file=password_file,
        folder=folder,
        timeout=section.number("timeout_seconds", 60, minimum=1),
        ca_file=ca_file,
    )


def _mailbox(section: Table, ca_file: Path | None, folder: Path) -> MailboxConfig:
    since = section.data.get("since")
    if isinstance(since, str):
        try:
            since = dt.date.fromisoformat(since)
        except ValueError:
            raise section.fail("since", _NOT_A_DATE.format(written(since))) from None
    if since is not None and not isinstance(since, dt.date):
        raise section.fail("since", _NOT_A_DATE.format(written(since)))
    batch = section.number("batch_size", 50, minimum=1)
    return MailboxConfig(
        server=_server(section, 993, 143, ca_file, folder),
        folder=section.text("folder", "INBOX"),
        processed_folder=section.optional_text("processed_folder"),
        since=since,
        poll_minutes=section.number("poll_minutes", 5, minimum=0.01),
        mark_seen=section.flag("mark_seen", False),
        batch_size=int(batch),
        authserv_id=section.optional_text("authserv_id"),
    )


def _smtp(section: Table, ca_file: Path | None, folder: Path) -> SmtpConfig:
    return SmtpConfig(
        server=_server(section, 465, 587, ca_file, folder),
        max_per_minute=section.number("max_per_minute", 10, minimum=0.1),
        retry_minutes=section.number("retry_minutes", 2, minimum=0),
        save_copy_to=section.optional_text("save_copy_to"),
    )


def parse_config(data: dict[str, Any], base: Path, file: Path | None = None) -> Config:
    """Build a Config from already-parsed TOML; relative paths are taken from `base`."""
    root = Table(data, ConfigError, file, blank_is_unset=True)
    root.check_keys(KNOWN)
    sections = {name: root.sub(name, required=False) for name in KNOWN}
    for name, section in sections.items():
        section.check_keys(KNOWN[name])
    paths, delivery, tls = sections["paths"], sections["delivery"], sections["tls"]
    smtp_section = sections["smtp"]
    ca_text = tls.optional_text("ca_file")
    ca_file = _absolute(base, ca_text) if ca_text else None
    if ca_file is not None and not ca_file.is_file():
        raise tls.fail("ca_file", f"找不到证书文件 {ca_file}，请写明证书文件的路径")
    transport = delivery.choice("transport", TRANSPORTS, "dir")
    mailbox = _mailbox(sections["mailbox"], ca_file, base) if "mailbox" in data else None
    smtp = _smtp(smtp_section, ca_file, base) if "smtp" in data else None
    if transport == "smtp" and smtp is None:
        raise delivery.fail("transport", "写 smtp 时须另有 [smtp] 一节，写明发信服务器")
    if smtp and smtp.save_copy_to and mailbox is None:
        raise smtp_section.fail(
            "save_copy_to", "须另有 [mailbox] 一节（已发邮件存入该邮箱），否则请删去此项"
        )
    return Config(
        file=file,
        rules=_path(paths, "rules", base, resources.bundled("rules")),
        templates=_path(paths, "templates", base, resources.bundled("templates")),
        db=_path(paths, "db", base, base / "mailproc.db"),
        archive=_path(paths, "archive", base, base / "archive"),
        outbox=_path(paths, "outbox", base, base / "outbox"),
        reports=_path(paths, "reports", base, base / "reports"),
        transport=transport,
        office_copy=delivery.flag("office_copy", True),
        from_address=smtp_section.optional_text("from_address"),
        from_name=smtp_section.optional_text("from_name"),
        mailbox=mailbox,
        smtp=smtp,
        supervisors=sections["recipients"].addresses("supervisors"),
        office=sections["recipients"].addresses("office"),
        limits=_limits(sections["limits"]),
        console=_console(sections["console"]),
    )


def _console(section: Table) -> ConsoleConfig:
    listen = section.text("listen", "127.0.0.1:8080")
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise section.fail(
            "listen", f"应为“地址:端口”，如 127.0.0.1:8080，现写的是 {written(listen)}"
        )
    return ConsoleConfig(
        enabled=section.flag("enabled", False),
        host=host.strip("[]"),
        port=int(port),
        https=section.flag("https", False),
        session_hours=section.number("session_hours", 12, minimum=0.1),
    )


def _limits(section: Table) -> Limits:
    """What reading one mail may cost; each default is `read.budget.Limits`'."""
    default = Limits()
    return Limits(
        memory_bytes=section.whole("memory_mb", default.memory_bytes // MIB, minimum=256) * MIB,
        cpu_seconds=section.number("cpu_seconds", default.cpu_seconds, minimum=1),
        wall_seconds=section.number("wall_seconds", default.wall_seconds, minimum=1),
        unpacked_bytes=section.whole("unpacked_mb", default.unpacked_bytes // MIB, minimum=1) * MIB,
        file_unpacked_bytes=section.whole(
            "file_unpacked_mb", default.file_unpacked_bytes // MIB, minimum=1
        )
        * MIB,
        files=section.whole("files", default.files, minimum=1),
        depth=section.whole("depth", default.depth, minimum=1),
        archive_bytes=section.whole("archive_mb", default.archive_bytes // MIB, minimum=1) * MIB,
    )


def load_config(path: str | Path) -> Config:
    """Read a config file; every path in it is relative to the file's folder."""
    path = Path(path)
    data = Table.read(path, ConfigError).data
    return parse_config(data, path.resolve().parent, path.resolve())
