"""Typed reading of TOML tables, shared by the config (`config.py`) and the rules (`rules.py`).

Both are files a person edits by hand, so every problem is one Chinese line naming the file,
the table and the key (as written in the file) and what to write instead, and every key nobody
reads is reported instead of silently doing nothing. The reader decides *what* is wrong; the
caller's exception class (a `TableError` subclass) names the kind of file.
"""

import errno
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

# Where tomllib says it stopped: "Invalid value (at line 3, column 5)"
_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
MISSING = "缺少此项，请补写"
_INDEXED = re.compile(r"^(\w+)\[(\d+)\](?:\.(.*))?$")


def os_problem(exc: OSError) -> str:
    """Why a file cannot be read, in words (the system's own text is English)."""
    return {
        errno.ENOENT: "文件不存在",
        errno.EACCES: "没有读取权限",
        errno.EPERM: "没有读取权限",
        errno.EISDIR: "这是文件夹，不是文件",
    }.get(exc.errno or 0, f"无法读取（系统错误号 {exc.errno}）")


def written(value: Any) -> str:
    """A value as it would be written in the TOML file, to quote back to the person."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"“{value}”" if value.isprintable() else repr(value)
    if isinstance(value, list):
        return f"[{', '.join(written(v) for v in value)}]"
    if isinstance(value, dict):
        return "一个表"
    return str(value)


class TableError(Exception):
    """A TOML file cannot be used; the message is one line naming file, table and key."""

    kind = "文件"  # what the person calls this kind of file
    missing_file = "文件不存在"  # how this kind of file's absence is told

    @classmethod
    def of_file(cls, file: Path | None, problem: str) -> Self:
        """The error for the file as a whole."""
        return cls(f"{cls.kind} {file}：{problem}" if file else f"{cls.kind}：{problem}")

    @classmethod
    def place(cls, table: str, key: str, label: str = "") -> str:
        """Where in the file: `[campaign] timezone`, `第 3 个 [[unit]]（大洼街道）的 category`."""
        if not table:
            return key
        indexed = _INDEXED.match(table)
        if not indexed:
            return f"[{table}] {key}"
        head = f"第 {int(indexed[2]) + 1} 个 [[{indexed[1]}]]" + (f"（{label}）" if label else "")
        head += "" if label else " "
        below = re.sub(r"\[(\d+)\]", lambda m: f" 第 {int(m[1]) + 1} 项", indexed[3] or "")
        if not below:
            return f"{head}的 {key}"
        return f"{head}中 {below}{'' if below.endswith('项') else ' '}的 {key}"

    @classmethod
    def at(cls, file: Path | None, table: str, key: str, problem: str, label: str = "") -> Self:
        """The error for `key` of `table` ("" for the file's top level)."""
        return cls.of_file(file, f"{cls.place(table, key, label)}：{problem}")


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
        label: str = "",
    ):
        self.error, self.file, self.name, self.blank_is_unset = error, file, name, blank_is_unset
        if not isinstance(data, dict):
            parent, _, key = name.rpartition(".")
            raise error.at(
                file, parent, key, "应为一个表（[名称] 下逐行写“项 = 值”），不是单个值", label
            )
        self.data: dict[str, Any] = data
        # What a person calls this entry of a [[list]] (or the entry it is in): its name
        self.label = next(
            (
                str(data[k])
                for k in ("short", "name", "id", "year")
                if isinstance(data.get(k), str | int) and str(data[k]).strip()
            ),
            label,
        )

    @classmethod
    def read(cls, path: Path, error: type[TableError]) -> Self:
        """The top-level table of the TOML file at `path`."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise error.of_file(path, error.missing_file) from None
        except tomllib.TOMLDecodeError as exc:
            where = _TOML_AT.search(str(exc))
            near = f"第 {where[1]} 行第 {where[2]} 列附近" if where else "文件末尾"
            raise error.of_file(
                path,
                f"{near}写法有误，不符合 TOML 格式；请检查引号、方括号是否成对，"
                "等号是否漏写，同一项是否写了两次",
            ) from None
        except UnicodeDecodeError:
            raise error.of_file(path, "不是 UTF-8 编码的文本，请另存为 UTF-8 编码") from None
        except OSError as exc:
            raise error.of_file(path, os_problem(exc)) from None
        return cls(data, error, path)

    def fail(self, key: str, problem: str) -> TableError:
        """The error for `key` of this table (to raise); `key` may be a dotted path below it."""
        shown = key if key.isprintable() else repr(key)  # keeps the message on one line
        return self.error.at(self.file, self.name, shown, problem, self.label)

    def _child(self, name: str, data: Any) -> "Table":
        full = f"{self.name}.{name}" if self.name else name
        return Table(data, self.error, self.file, full, self.blank_is_unset, self.label)

    def check_keys(self, allowed: Iterable[str]) -> None:
        """Reject the first key (in sorted order) that is not in `allowed`."""
        names = sorted(allowed)
        extra = sorted(set(self.data) - set(names))
        if extra:
            raise self.fail(extra[0], f"没有这一项，请检查是否写错；可写的项有：{'、'.join(names)}")

    def _value(self, key: str) -> Any:
        value = self.data.get(key)
        return None if value == "" and self.blank_is_unset else value

    def text(self, key: str, default: str | None = None) -> str:
        """A non-empty string; without a default the key is required."""
        value = self._value(key)
        value = default if value is None else value
        if value is None:
            raise self.fail(key, MISSING)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                key, f"应为文字（用英文双引号括起，不能为空），现写的是 {written(value)}"
            )
        return value

    def optional_text(self, key: str) -> str | None:
        """A non-empty string, or None when the key is not written."""
        return None if self._value(key) is None else self.text(key)

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of strings, empty when the key is not written."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f'应为文字列表，如 ["甲", "乙"]，现写的是 {written(value)}')
        return tuple(value)

    def addresses(self, key: str) -> tuple[str, ...]:
        """A list of mail addresses, empty when the key is not written."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
            raise self.fail(
                key, f'应为邮件地址列表，如 ["ajb@example.gov.cn"]，现写的是 {written(value)}'
            )
        return tuple(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"应为 true（是）或 false（否），现写的是 {written(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            raise self.fail(key, f"应为 {'、'.join(choices)} 之一，现写的是 {written(value)}")
        return value

    def number(
        self, key: str, default: float | None = None, minimum: float | None = 0
    ) -> int | float:
        """An integer or a float (as written), at least `minimum` unless that is None."""
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, MISSING)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (minimum is not None and value < minimum)
        ):
            wanted = "数字" if minimum is None else f"不小于 {minimum:g} 的数"
            raise self.fail(key, f"应为{wanted}，现写的是 {written(value)}")
        return value

    def whole(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        """An integer, at least `minimum`: 1.0 is refused, a count is never written so."""
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, MISSING)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(key, f"应为不小于 {minimum} 的整数，现写的是 {written(value)}")
        return value

    def sub(self, key: str, required: bool = True) -> "Table":
        """The sub-table `key`; when not required and not written, an empty one."""
        value = self.data.get(key)
        if value is None and required:
            raise self.fail(key, MISSING)
        return self._child(key, {} if value is None else value)

    def tables(self, key: str) -> list["Table"]:
        """The array of tables `key` ([[key]]), which must have at least one entry."""
        value = self.data.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"缺少 [[{key}]]，至少应写一个")
        return [self._child(f"{key}[{n}]", entry) for n, entry in enumerate(value)]
