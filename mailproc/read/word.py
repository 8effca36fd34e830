"""Tables in old binary Word files: .doc, and WPS 文字's .wps, which is the same format. No
Python library with a permissive licence reads their tables, so a program of this machine does,
when one is installed:

- LibreOffice (`soffice --headless --convert-to docx`): the file becomes a .docx, read then
  like any other, merged header cells included;
- antiword: prints the document as DocBook XML, each table with its rows and cells. It loses
  the columns of cells merged across a row (the two-level header's groups), so it comes second.

Neither installed, or neither able to read the file: no tables (`None`), and the office's reply
says so. Each program runs without a shell, in a private folder that is removed afterwards, in
its own process group (LibreOffice starts a second process), stopped at the mail's wall time.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ANSWER_SECONDS = 2.0  # kept back from the mail's wall time for the reader to answer in
_DOCTYPE_END = b'docbookx.dtd">'


@dataclass
class PrintedTables:
    """What antiword printed: each table's rows of cell texts, and the paragraphs around them."""

    tables: list[list[list[str]]]
    paragraphs: list[str]


def converted_to_docx(data: bytes, seconds: float) -> bytes | None:
    """The file saved as .docx by LibreOffice; None when it is not installed or fails."""
    program = shutil.which("soffice") or shutil.which("libreoffice")
    if program is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mailproc-word-") as folder:
        source = Path(folder, "file.doc")
        source.write_bytes(data)
        argv = [
            program,
            f"-env:UserInstallation=file://{folder}/profile",
            "--headless",
            "--norestore",
            "--convert-to",
            "docx",
            "--outdir",
            str(Path(folder, "out")),
            str(source),
        ]
        if _run(argv, folder, seconds) is None:
            return None
        target = Path(folder, "out", "file.docx")
        return target.read_bytes() if target.is_file() else None


def printed_tables(data: bytes, seconds: float) -> PrintedTables | None:
    """The tables antiword prints; None when it is not installed or cannot read the file."""
    program = shutil.which("antiword")
    if program is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mailproc-word-") as folder:
        source = Path(folder, "file.doc")
        source.write_bytes(data)
        printed = _run([program, "-x", "db", str(source)], folder, seconds)
    if not printed:
        return None
    return _docbook_tables(printed)


def _docbook_tables(printed: bytes) -> PrintedTables | None:
    """Tables and paragraphs of antiword's DocBook output. The document type line names an
    outside DTD: it is cut off before parsing, so nothing outside the text is ever loaded."""
    _, found, body = printed.partition(_DOCTYPE_END)
    try:
        root = ET.fromstring(body if found else printed)
    except ET.ParseError:
        return None
    tables = [
        [[_text(entry) for entry in row.iter("entry")] for row in table.iter("row")]
        for table in root.iter("informaltable")
    ]
    paragraphs = [
        _text(para) for para in root.iter("para") if para.find(".//informaltable") is None
    ]
    return PrintedTables(tables, [p for p in paragraphs if p])


def _text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _run(argv: list[str], folder: str, seconds: float) -> bytes | None:
    """A program's output, or None when it failed or ran out of time (it is then stopped with
    everything it started). Only the private folder is its home; nothing reaches a shell."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": folder,
        "TMPDIR": folder,
        "LANG": "C.UTF-8",
    }
    process = subprocess.Popen(
        argv,
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=max(seconds - ANSWER_SECONDS, 0.1))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None
    finally:
        _end_group(process.pid)
    return output if process.returncode == 0 else None


def _end_group(group: int) -> None:
    """Stop whatever the program left running in its process group (LibreOffice's helper)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
