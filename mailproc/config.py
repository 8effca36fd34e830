"""Configuration: one TOML file, paths relative to its folder, secrets only by env name.

A wrong or missing key is a `ConfigError` whose message is one line naming the key, so the
person installing mailproc never reads a traceback to find a typo.
"""

import datetime as dt
import os
import ssl
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailproc import resources

TRANSPORTS = ("dir", "smtp")
SECURITY = ("ssl", "starttls", "none")

# Every section and key mailproc reads; anything else is a typo worth reporting.
KNOWN: dict[str, set[str]] = {
    "paths": {"rules", "templates", "db", "archive", "outbox", "reports"},
    "delivery": {"transport", "office_copy"},
    "mailbox": {
        "host", "port", "security", "username", "password_env", "folder", "processed_folder",
        "since", "poll_minutes", "mark_seen", "timeout_seconds", "batch_size",
    },
    "smtp": {
        "host", "port", "security", "username", "password_env", "from_address", "from_name",
        "max_per_minute", "timeout_seconds", "retry_minutes", "save_copy_to",
    },
    "tls": {"ca_file"},
    "recipients": {"supervisors", "office"},
}  # fmt: skip


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


class _Section:
    """Typed reads of one [section], each error naming section and key."""

    def __init__(self, name: str, data: dict[str, Any]):
        self.name, self.data = name, data

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"[{self.name}] {key}: {problem}")

    def text(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.data.get(key, default)
        if value == "" and not required:
            return default  # an emptied example line means "not set"
        if value is None and required:
            raise self.fail(key, "missing")
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def number(self, key: str, default: float, minimum: float = 0) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.fail(key, f"must be a number ≥ {minimum:g}, got {value!r}")
        return value

    def addresses(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
            raise self.fail(key, f"must be a list of mail addresses, got {value!r}")
        return tuple(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value


@dataclass(frozen=True)
class ServerConfig:
    """Where and how to log in to one mail server; the password is read when needed."""

    section: str
    host: str
    port: int
    security: str
    username: str
    password_env: str
    timeout: float
    ca_file: Path | None

    def password(self) -> str:
        value = os.environ.get(self.password_env)
        if not value:
            name = self.password_env
            raise ConfigError(f"[{self.section}] password_env: variable {name} is not set")
        return value

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

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


@dataclass(frozen=True)
class SmtpConfig:
    server: ServerConfig
    max_per_minute: float
    retry_minutes: float
    save_copy_to: str | None


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


def _resolve(base: Path, value: Any, key: str, default: Path) -> Path:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"[paths] {key}: must be a path string, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _server(section: _Section, default_port: int, ca_file: Path | None) -> ServerConfig:
    security = section.choice("security", SECURITY, "ssl")
    port = section.number("port", default_port, minimum=1)
    if port != int(port) or port > 65535:
        raise section.fail("port", f"must be a port number, got {port!r}")
    return ServerConfig(
        section=section.name,
        host=section.text("host", required=True),
        port=int(port),
        security=security,
        username=section.text("username", required=True),
        password_env=section.text("password_env", required=True),
        timeout=section.number("timeout_seconds", 60, minimum=1),
        ca_file=ca_file,
    )


def _mailbox(section: _Section, ca_file: Path | None) -> MailboxConfig:
    since = section.data.get("since")
    if isinstance(since, str):
        try:
            since = dt.date.fromisoformat(since)
        except ValueError:
            raise section.fail("since", f"must be a date like 2019-05-01, got {since!r}") from None
    if since is not None and not isinstance(since, dt.date):
        raise section.fail("since", f"must be a date like 2019-05-01, got {since!r}")
    batch = section.number("batch_size", 50, minimum=1)
    return MailboxConfig(
        server=_server(
            section, 993 if section.data.get("security", "ssl") == "ssl" else 143, ca_file
        ),
        folder=section.text("folder", "INBOX"),
        processed_folder=section.text("processed_folder"),
        since=since,
        poll_minutes=section.number("poll_minutes", 5, minimum=0.01),
        mark_seen=section.flag("mark_seen", False),
        batch_size=int(batch),
    )


def _smtp(section: _Section, ca_file: Path | None) -> SmtpConfig:
    return SmtpConfig(
        server=_server(
            section, 465 if section.data.get("security", "ssl") == "ssl" else 587, ca_file
        ),
        max_per_minute=section.number("max_per_minute", 10, minimum=0.1),
        retry_minutes=section.number("retry_minutes", 2, minimum=0),
        save_copy_to=section.text("save_copy_to"),
    )


def parse_config(data: dict[str, Any], base: Path, file: Path | None = None) -> Config:
    """Build a Config from already-parsed TOML; relative paths are taken from `base`."""
    for section, value in data.items():
        if section not in KNOWN:
            raise ConfigError(f"[{section}]: unknown section (known: {', '.join(sorted(KNOWN))})")
        if not isinstance(value, dict):
            raise ConfigError(f"{section}: must be a [section] table")
        for key in value:
            if key not in KNOWN[section]:
                raise ConfigError(
                    f"[{section}] {key}: unknown key (known: {', '.join(sorted(KNOWN[section]))})"
                )
    sections = {name: _Section(name, data.get(name, {})) for name in KNOWN}
    paths = sections["paths"].data
    ca_text = sections["tls"].text("ca_file")
    ca_file = _resolve(base, ca_text, "ca_file", base) if ca_text else None
    if ca_file is not None and not ca_file.is_file():
        raise sections["tls"].fail("ca_file", f"{ca_file} not found")
    delivery = sections["delivery"]
    transport = delivery.choice("transport", TRANSPORTS, "dir")
    mailbox = _mailbox(sections["mailbox"], ca_file) if "mailbox" in data else None
    smtp = _smtp(sections["smtp"], ca_file) if "smtp" in data else None
    if transport == "smtp" and smtp is None:
        raise delivery.fail("transport", "'smtp' needs an [smtp] section")
    if smtp and smtp.save_copy_to and mailbox is None:
        raise sections["smtp"].fail("save_copy_to", "needs a [mailbox] section to append to")
    return Config(
        file=file,
        rules=_resolve(base, paths.get("rules"), "rules", resources.bundled("rules")),
        templates=_resolve(
            base, paths.get("templates"), "templates", resources.bundled("templates")
        ),
        db=_resolve(base, paths.get("db"), "db", base / "mailproc.db"),
        archive=_resolve(base, paths.get("archive"), "archive", base / "archive"),
        outbox=_resolve(base, paths.get("outbox"), "outbox", base / "outbox"),
        reports=_resolve(base, paths.get("reports"), "reports", base / "reports"),
        transport=transport,
        office_copy=delivery.flag("office_copy", True),
        from_address=sections["smtp"].text("from_address"),
        from_name=sections["smtp"].text("from_name"),
        mailbox=mailbox,
        smtp=smtp,
        supervisors=sections["recipients"].addresses("supervisors"),
        office=sections["recipients"].addresses("office"),
    )


def load_config(path: str | Path) -> Config:
    """Read a config file; every path in it is relative to the file's folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (see config.example.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(data, path.resolve().parent, path.resolve())
