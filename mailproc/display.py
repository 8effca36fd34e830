"""What a person is shown of a mail's own words: header values without control characters.

A subject is the sender's text. Printed raw, `ESC]0;…BEL` retitles the clerk's terminal, other
escape sequences move the cursor or recolour what follows, a carriage return lets a line
overwrite itself, and a right-to-left override shows `gpj.exe` as `exe.jpg`. HTML escaping does
not remove any of them. So every header value shown in a terminal or a page passes through
`printable`: escape sequences go whole, other C0 and C1 controls, DEL and the bidi formatting
characters go, and the line breaks and tabs a one-line field must not hold become spaces.
"""

import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import markupsafe

# ESC and what it introduces: CSI (ESC [ … final), the strings OSC, DCS, SOS, PM and APC up to
# their terminator (BEL or ST) or the end of the text, and two-character escapes; and the same
# introduced by their C1 forms (CSI 0x9b, OSC 0x9d, DCS 0x90, SOS 0x98, PM 0x9e, APC 0x9f)
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[ -/]*[0-~]?",
    re.DOTALL,
)
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_BREAK = re.compile(r"[\t\n\r\v\f\u2028\u2029]")
# What a terminal may act on inside a JSON string: JSON escapes C0 itself, not these
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI}\u2028\u2029]")


def printable(text: str | None, multiline: bool = False) -> str:
    """`text` safe to show: one line, or (`multiline`) keeping its line breaks and tabs."""
    if not text:
        return ""
    text = _ESCAPE_SEQUENCE.sub("", text)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
        return _CONTROL.sub("", text.replace("\r", "\n"))
    return _CONTROL.sub("", _BREAK.sub(" ", text))


def without_controls(value: Any) -> Any:
    """A template's value without the control characters escaping leaves in (a subject's bidi
    override would reorder what the office reads); markup stays markup. Jinja's `finalize`
    for every page and mail."""
    if not isinstance(value, str):
        return value
    cleaned = printable(value, multiline=True)
    return markupsafe.Markup(cleaned) if isinstance(value, markupsafe.Markup) else cleaned


def json_text(record: object, indent: int | None = None) -> str:
    """`record` as JSON, exact (a parser reads every value back as it was) and safe on a
    terminal: the characters a terminal acts on are written as \\u escapes."""
    text = json.dumps(record, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def display_width(text: str) -> int:
    """Terminal columns `text` takes: CJK characters and full-width forms are two wide,
    combining marks none."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def pad(text: str, width: int, right: bool = False) -> str:
    """`text` filled with spaces to `width` terminal columns (on the left when `right`)."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> list[str]:
    """Lines of aligned columns under a header row, by display width, so Chinese names keep
    their columns straight; the columns at `right` (numbers) are aligned to the right. The
    last column is not padded unless it is one of those (a subject may be long)."""
    widths = [
        max(display_width(str(line[i])) for line in [headers, *rows]) for i in range(len(headers))
    ]
    lines = []
    for line in [headers, *rows]:
        cells = [
            pad(str(value), widths[i], i in right)
            if i < len(headers) - 1 or i in right
            else str(value)
            for i, value in enumerate(line)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
