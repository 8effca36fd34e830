"""Typed reading of TOML tables, shared by the config (`config.py`) and the rules (`rules.py`).

Both are files a person edits by hand, so every problem is one line naming the file, the table
and the key, and every key nobody reads is reported instead of silently doing nothing. The
reader decides *what* is wrong; the caller's exception class (a `TableError` subclass) decides
how a place is written, so config and rules errors keep the wording their users know.
"""

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self


class TableError(Exception):
    """A TOML file cannot be used; the message is one line naming file, table and key."""

    missing_file = "file missing"  # how this kind of file's absence is told

    @classmethod
    def at(cls, file: Path | None, table: str, key: str, problem: str) -> Self:
        """The error for `key` of `table` ("" for the file's top level): `file: table.key: …`."""
        return cls(f"{file}: {f'{table}.{key}' if table else key}: {problem}")


class Table:
    """One TOML table read through typed getters, each error naming file, table and key.

    `blank_is_unset`: a text value of "" counts as not written. The config wants this because
    its example file is meant to be copied and edited, and emptying a line (`processed_folder =
    ""`) is how a person switches an optional setting off. The rules do not: every value in them
    ends up in a reply, a deadline or a matching rule, so an empty one is a mistake to report.
    Sub-tables inherit the choice.
    """

    def __init__(
        self,
        data: Any,
        error: type[TableError],
        file: Path | None = None,
        name: str = "",
        blank_is_unset: bool = False,
    ):
        self.error, self.file, self.name, self.blank_is_unset = error, file, name, blank_is_unset
        if not isinstance(data, dict):
            raise error.at(file, "", name, "expected a table")
        self.data: dict[str, Any] = data

    @classmethod
    def read(cls, path: Path, error: type[TableError]) -> Self:
        """The top-level table of the TOML file at `path`."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise error(f"{path}: {error.missing_file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise error(f"{path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise error(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise error(f"{path}: cannot be read: {exc.strerror or exc}") from None
        return cls(data, error, path)

    def fail(self, key: str, problem: str) -> TableError:
        """The error for `key` of this table (to raise); `key` may be a dotted path below it."""
        shown = key if key.isprintable() else repr(key)  # keeps the message on one line
        return self.error.at(self.file, self.name, shown, problem)

    def _child(self, name: str, data: Any) -> "Table":
        full = f"{self.name}.{name}" if self.name else name
        return Table(data, self.error, self.file, full, self.blank_is_unset)

    def check_keys(self, allowed: Iterable[str]) -> None:
        """Reject the first key (in sorted order) that is not in `allowed`."""
        names = sorted(allowed)
        extra = sorted(set(self.data) - set(names))
        if extra:
            raise self.fail(extra[0], f"unknown key (allowed: {', '.join(names)})")

    def _value(self, key: str) -> Any:
        value = self.data.get(key)
        return None if value == "" and self.blank_is_unset else value

    def text(self, key: str, default: str | None = None) -> str:
        """A non-empty string; without a default the key is required."""
        value = self._value(key)
        value = default if value is None else value
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        """A non-empty string, or None when the key is not written."""
        return None if self._value(key) is None else self.text(key)

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of strings, empty when the key is not written."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def addresses(self, key: str) -> tuple[str, ...]:
        """A list of mail addresses, empty when the key is not written."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
            raise self.fail(key, f"must be a list of mail addresses, got {value!r}")
        return tuple(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def number(
        self, key: str, default: float | None = None, minimum: float | None = 0
    ) -> int | float:
        """An integer or a float (as written), at least `minimum` unless that is None."""
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (minimum is not None and value < minimum)
        ):
            bound = "" if minimum is None else f" ≥ {minimum:g}"
            raise self.fail(key, f"must be a number{bound}, got {value!r}")
        return value

    def whole(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        """An integer, at least `minimum`: 1.0 is refused, a count is never written so."""
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(key, f"must be a whole number ≥ {minimum}, got {value!r}")
        return value

    def sub(self, key: str, required: bool = True) -> "Table":
        """The sub-table `key`; when not required and not written, an empty one."""
        value = self.data.get(key)
        if value is None and required:
            raise self.fail(key, "missing")
        return self._child(key, {} if value is None else value)

    def tables(self, key: str) -> list["Table"]:
        """The array of tables `key` ([[key]]), which must have at least one entry."""
        value = self.data.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"missing: at least one [[{key}]] is needed")
        return [self._child(f"{key}[{n}]", entry) for n, entry in enumerate(value)]
