"""Stored mail: `.eml` files, folders of them and Maildirs, in the order they were received.

The order comes from each file's head alone (its topmost Received: line), so a batch of
thousands is sorted without holding every mail in memory; each file is then read once, when
it is ingested.
"""

import datetime as dt
import email.parser
import email.policy
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from mailproc.read.mail import parse_mail_time


def mail_files(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> Iterator[Path]:
    """Each mail file named: a file as given, `*.eml` in folders, every file of a Maildir.
    The other files of a folder are passed over, and listed in `skipped` when it is given."""
    for path in map(Path, paths):
        if path.is_file():
            yield path
        elif (path / "cur").is_dir() or (path / "new").is_dir():
            for sub in ("new", "cur"):
                if (path / sub).is_dir():
                    yield from sorted(p for p in (path / sub).iterdir() if p.is_file())
        elif path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_dir():
                    yield from mail_files([child], skipped)
                elif child.suffix.lower() == ".eml":
                    yield child
                elif skipped is not None:
                    skipped.append(child)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")


def header_receipt_time(raw: bytes) -> dt.datetime | None:
    """The topmost Received: time, else Date:, read from the headers alone (for ordering a
    batch) as the pipeline will read them: an impossible time counts as none."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    except (TypeError, ValueError, IndexError):
        return None
    received, date = headers.get("Received"), headers.get("Date")
    return parse_mail_time(str(received).rpartition(";")[2] if received else None) or (
        parse_mail_time(str(date)) if date else None
    )


# Bytes read from the start of a mail file for its receipt time; a longer header is read whole
HEAD_BYTES = 64 * 1024
_HEADER_END = re.compile(rb"\n\r?\n")  # the empty line after the header, with LF or CRLF


def receipt_order_key(path: Path) -> tuple[bool, float, str]:
    """Where a mail file goes in the order of receipt (those without a date last), from the
    head of the file only: the header, when it ends within HEAD_BYTES, is all that
    `header_receipt_time` reads; a file whose header runs on is read whole."""
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
        if len(head) == HEAD_BYTES and not _HEADER_END.search(head):
            head += file.read()
    moment = header_receipt_time(head)
    return moment is None, moment.timestamp() if moment else 0.0, str(path)


def in_receipt_order(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> list[Path]:
    """Every mail file named (see `mail_files`, which lists the files it passed over in
    `skipped`), earliest received first. Only each file's head is read here: keeping every
    file's bytes from the sort to the ingest would hold a whole batch (thousands of mails with
    attachments) in memory at once."""
    return [Path(key[2]) for key in sorted(map(receipt_order_key, mail_files(paths, skipped)))]
