"""Whether a change kept mailproc's behaviour: the demo's outbox at a git revision and in this
checkout, compared message by message.

Both sides run `mailproc demo` on the bundled sample, then `tick` through the campaign's end
and a few office actions, and every outgoing message is written out as text: its headers
(Date left out: it is the moment the test ran), its text parts, and the cell values of any
workbook attached (a zip's timestamps differ from run to run); MIME boundaries are
random too. A refactoring must leave the
two identical.

    .venv/bin/python scripts/outbox_diff.py            # against HEAD
    .venv/bin/python scripts/outbox_diff.py 3faa180    # against a revision
"""

import difflib
import email
import email.policy
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_HEADERS = {"date"}
BOUNDARY = re.compile(r'boundary="[^"]*"')  # random in every run
OFFICE_STEPS = [
    ["tick", "--now", "2019-06-05T09:00:00+08:00"],
    ["tick", "--now", "2019-06-13T11:05:00+08:00"],
    ["excuse", "--unit", "唐家镇", "--item", "weekly", "--period", "2019-06-20", "--note", "停电"],
    ["tick", "--now", "2019-06-20T16:00:00+08:00"],
    ["tick", "--now", "2019-07-10T12:00:00+08:00"],
]


def run_demo(source: Path, folder: Path) -> None:
    """The demo and the office steps with the package found in `source`."""
    env = {**os.environ, "PYTHONPATH": str(source), "MAILPROC_CONFIG": str(folder / "config.toml")}
    python = [sys.executable, "-m", "mailproc"]
    # run from `source`: `python -m` puts the working folder first on the import path
    subprocess.run(
        [*python, "demo", str(folder)], env=env, cwd=source, check=True, capture_output=True
    )
    for step in OFFICE_STEPS:
        subprocess.run([*python, *step], env=env, cwd=source, check=True, capture_output=True)


def as_text(raw: bytes) -> str:
    """One message as comparable text."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    lines = [
        BOUNDARY.sub('boundary=""', f"{k}: {v}")
        for k, v in message.items()
        if k.lower() not in SKIPPED_HEADERS
    ]
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        lines.append(f"--- {kind} {part.get_filename() or ''}")
        if part.get_content_maintype() == "text":
            lines.extend(part.get_content().splitlines())
        elif part.get_filename() and part.get_filename().endswith(".xlsx"):
            book = openpyxl.load_workbook(io.BytesIO(part.get_content()), read_only=True)
            for sheet in book.worksheets:
                lines.append(f"[{sheet.title}]")
                lines.extend(repr(row) for row in sheet.iter_rows(values_only=True))
        else:
            lines.append(f"{len(part.get_content())} bytes")
    return "\n".join(lines)


def outbox_text(folder: Path) -> dict[str, str]:
    return {path.name: as_text(path.read_bytes()) for path in sorted(folder.glob("*.eml"))}


def main(revision: str = "HEAD") -> int:
    with tempfile.TemporaryDirectory() as work:
        base = Path(work) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), revision],
            check=True,
            capture_output=True,
        )
        try:
            run_demo(base, Path(work) / "before")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True
            )
        run_demo(ROOT, Path(work) / "after")
        before = outbox_text(Path(work) / "before" / "outbox")
        after = outbox_text(Path(work) / "after" / "outbox")
    differences = 0
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, ""), after.get(name, "")
        if old != new:
            differences += 1
            diff = difflib.unified_diff(old.splitlines(), new.splitlines(), name, name, lineterm="")
            print("\n".join(diff))
    print(f"{len(before)} messages before, {len(after)} after, {differences} differ")
    return 1 if differences or not before else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
