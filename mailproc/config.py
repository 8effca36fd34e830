"""Configuration: one TOML file, paths relative to its folder, secrets only by env name.

A wrong or missing key is a `ConfigError` whose message is one line naming the key, so the
person installing mailproc never reads a traceback to find a typo.
"""

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailproc import resources

TRANSPORTS = ("dir", "smtp")

# Every section and key mailproc reads; anything else is a typo worth reporting.
KNOWN: dict[str, set[str]] = {
    "paths": {"rules", "templates", "db", "archive", "outbox", "reports"},
    "delivery": {"transport", "from_address", "from_name", "office_copy"},
}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


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
    from_address: str | None
    from_name: str | None
    office_copy: bool

    def secret(self, section: str, key: str, env_name: str) -> str:
        """Read a secret from the environment variable the config names, never from the file."""
        value = os.environ.get(env_name)
        if not value:
            raise ConfigError(f"[{section}] {key}: environment variable {env_name} is not set")
        return value


def _resolve(base: Path, value: Any, key: str, default: Path) -> Path:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"[paths] {key}: must be a path string, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


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
    paths = data.get("paths", {})
    delivery = data.get("delivery", {})
    transport = delivery.get("transport", "dir")
    if transport not in TRANSPORTS:
        raise ConfigError(
            f"[delivery] transport: must be one of {', '.join(TRANSPORTS)}, got {transport!r}"
        )
    if transport == "smtp":
        raise ConfigError(
            "[delivery] transport: 'smtp' is not available in this version; use 'dir'"
        )
    for key in ("from_address", "from_name"):
        if key in delivery and not isinstance(delivery[key], str):
            raise ConfigError(f"[delivery] {key}: must be a string")
    office_copy = delivery.get("office_copy", True)
    if not isinstance(office_copy, bool):
        raise ConfigError(f"[delivery] office_copy: must be true or false, got {office_copy!r}")
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
        from_address=delivery.get("from_address"),
        from_name=delivery.get("from_name"),
        office_copy=office_copy,
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
