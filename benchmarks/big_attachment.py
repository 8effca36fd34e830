"""Benchmark: the peak memory of ingesting one mail with a 50 MB attachment, as a multiple of the
mail's size.

The mail is `tests/hostile.big_attachment_mail`: a weekly report whose 附件1 is a real,
readable xlsx made 50 MB (47.7 MiB) by a stored picture of random bytes, about 68 MB once
base64-encoded. `mailproc ingest` runs in a fresh subprocess and its peak RSS (its process
tree, sampled, and the kernel's maximum for any one process) is divided by the size of the
.eml file. The baseline is measured in the same run: a subprocess that only reads the file
into memory, so the interpreter's own footprint is known too.

    .venv/bin/python benchmarks/big_attachment.py [--megabytes 50] [--keep DIR]

Exit status 1 when the peak is over 4x the mail's size (issue 11's target) or the mail was
not read as expected (ack, 宣讲 3 场).
"""

import argparse
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hostile  # noqa: E402  (tests/ is put on the path above)

TARGET = 4.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50, help="size of the attachment")
    parser.add_argument("--keep", type=Path, help="leave the run's folder here")
    options = parser.parse_args()

    folder = options.keep or Path(tempfile.mkdtemp(prefix="big-attachment-"))
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("rules", "templates"):
        shutil.copytree(ROOT / name, folder / name, dirs_exist_ok=True)
    config = folder / "config.toml"
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    raw = hostile._weekly(
        "区商务局",
        "dwswj@163.com",
        8,
        [("附件1.xlsx", hostile.big_xlsx(options.megabytes), hostile.XLSX)],
    )
    mail = folder / "big.eml"
    mail.write_bytes(raw)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"}

    baseline = hostile.run_measured(
        [sys.executable, "-c", f"data = open({str(mail)!r}, 'rb').read()"],
        cwd=folder,
        env=env,
        timeout=60,
    )
    run = hostile.run_measured(
        [sys.executable, "-m", "mailproc", "ingest", str(mail), "--config", str(config)],
        cwd=folder,
        env=env,
        timeout=600,
    )
    with sqlite3.connect(folder / "mailproc.db") as db:
        reply = db.execute("select reply from messages").fetchone()
        lectures = db.execute("select value from figures where \"column\" = 'lectures'").fetchone()

    size = len(raw)
    ratio = run.peak_process / size
    mib = 1024 * 1024
    print(
        f"mail {size / mib:.1f} MiB "
        f"(attachment {len(hostile.big_xlsx(options.megabytes)) / mib:.1f} MiB)"
    )
    print(f"baseline (python reading the file) peak RSS {baseline.peak_rss / mib:.0f} MiB")
    print(
        f"mailproc ingest: exit {run.returncode}, {run.seconds:.1f} s, "
        f"largest process {run.peak_process / mib:.0f} MiB, "
        f"all processes together {run.peak_rss / mib:.0f} MiB"
    )
    print(
        f"largest process / mail size = {ratio:.2f}x (target <= {TARGET:.0f}x); "
        f"together {run.peak_rss / size:.2f}x"
    )
    read_right = run.returncode == 0 and reply == ("ack",) and lectures == (3,)
    print(f"read as expected (ack, lectures 3): {read_right} (reply {reply}, lectures {lectures})")
    passed = read_right and ratio <= TARGET
    print("PASS" if passed else "FAIL")
    if not options.keep:
        shutil.rmtree(folder)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
