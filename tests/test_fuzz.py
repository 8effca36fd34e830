"""Fuzzing: damaged and generated mail must never escape `parse_message` but as ParseError, never
escape `Pipeline.ingest` at all, always end up in the ledger, and never take more than 10 s.

Two sources, both reproducible (fixed seeds; hypothesis derandomized, with no example
database written):

- corpus mutations: every corpus mail cut at a random point, its bytes flipped, its MIME
  boundaries broken, its base64 truncated, its headers duplicated or their folding damaged,
  or two of these at once. They run in a subprocess (`python tests/test_fuzz.py --driver`), so
  a native reader that aborts is reported with the case that killed it instead of taking
  pytest down;
- hypothesis: mails built from scratch out of random headers, bodies, boundaries and
  attachments (names, types, bytes), in this process.
"""

import base64
import contextlib
import dataclasses
import hashlib
import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SEED = 20190613
MUTATED_CASES = 1200  # corpus mutations (parse_message and ingest each)
GENERATED_CASES = 250  # hypothesis examples (parse_message and ingest each)
CASE_LIMIT = 10.0  # seconds per case
DRIVER_TIMEOUT = 900  # a hang, not a slow machine: each case has its own 10 s limit

# -- corpus mutations -------------------------------------------------------------------------

Mutation = Callable[[bytes, random.Random], bytes]
_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)
_BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/]{60,}={0,2}\r?$", re.MULTILINE)
_HEADER_LINE = re.compile(rb"^[A-Za-z-]+:[^\r\n]*\r?\n", re.MULTILINE)


def _header_end(raw: bytes) -> int:
    found = re.search(rb"\r?\n\r?\n", raw)
    return found.start() if found else len(raw)


def cut(raw: bytes, rng: random.Random) -> bytes:
    """The mail cut off at a random byte, as a transfer that broke off leaves it."""
    return raw[: rng.randrange(len(raw))]


def flip(raw: bytes, rng: random.Random) -> bytes:
    """One to 32 bytes anywhere replaced by random ones."""
    data = bytearray(raw)
    for _ in range(rng.randint(1, 32)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def break_boundary(raw: bytes, rng: random.Random) -> bytes:
    """A MIME boundary damaged: one delimiter line changed, the closing one dropped, or the
    boundary declared in the header no longer matching the parts."""
    found = _BOUNDARY.search(raw)
    if not found:
        return flip(raw, rng)
    boundary = found.group(1)
    marks = [m.start() for m in re.finditer(re.escape(b"--" + boundary), raw)]
    way = rng.randrange(3)
    if way == 0 and marks:
        at = rng.choice(marks)
        return (
            raw[:at]
            + b"--"
            + boundary[: rng.randrange(len(boundary))]
            + b"X"
            + raw[at + 2 + len(boundary) :]
        )
    if way == 1:
        closing = raw.rfind(b"--" + boundary + b"--")
        if closing >= 0:
            return raw[:closing] + raw[closing + len(boundary) + 4 :]
    return raw[: found.start(1)] + boundary[::-1] + raw[found.end(1) :]


def truncate_base64(raw: bytes, rng: random.Random) -> bytes:
    """A base64 body cut short mid-line (the rest of the part gone) or given a stray byte."""
    lines = list(_BASE64_LINE.finditer(raw))
    if not lines:
        return cut(raw, rng)
    line = rng.choice(lines)
    at = rng.randrange(line.start(), line.end())
    if rng.random() < 0.5:
        next_part = raw.find(b"\n--", at)
        return raw[:at] + (raw[next_part:] if next_part >= 0 else b"")
    return raw[:at] + rng.choice([b"!", b"=", b"\x00", b"\xff", b"-"]) + raw[at:]


def duplicate_headers(raw: bytes, rng: random.Random) -> bytes:
    """Header lines repeated, some with other values: two Froms, Subjects, Dates, Message-IDs
    or Content-Types."""
    end = _header_end(raw)
    lines = list(_HEADER_LINE.finditer(raw[:end]))
    if not lines:
        return flip(raw, rng)
    extra = []
    for line in rng.sample(lines, min(len(lines), rng.randint(1, 4))):
        text = line.group()
        if rng.random() < 0.5:
            name = text.split(b":", 1)[0]
            text = name + b": " + bytes(rng.randrange(32, 127) for _ in range(20)) + b"\n"
        extra.append(text)
    at = rng.choice([0, lines[-1].end()])
    return raw[:at] + b"".join(extra) + raw[at:]


def damage_folding(raw: bytes, rng: random.Random) -> bytes:
    """A header folded wrongly: a continuation without leading space, a fold inside an encoded
    word, a whitespace-only line in the header, or bare CRs."""
    end = _header_end(raw)
    if end < 2:
        return flip(raw, rng)
    at = rng.randrange(1, end)
    pieces = [b"\r\n", b"\n", b"\n \n", b"\n\t", b"\r", b"\n\n "]
    return raw[:at] + rng.choice(pieces) + raw[at:]


MUTATIONS: dict[str, Mutation] = {
    "cut": cut,
    "flip": flip,
    "boundary": break_boundary,
    "base64": truncate_base64,
    "headers": duplicate_headers,
    "folding": damage_folding,
}


def mutated_cases(count: int, seed: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of `count` mutations of the corpus, the same for the same seed: mail by
    mail, each kind in turn, every seventh case two kinds at once."""
    corpus = sorted((TESTS / "corpus").glob("*.eml"))
    kinds = list(MUTATIONS)
    cases = []
    for number in range(count):
        rng = random.Random(seed * 100_000 + number)
        source = corpus[number % len(corpus)]
        chosen = [kinds[number % len(kinds)]]
        if number % 7 == 6:
            chosen.append(rng.choice(kinds))
        raw = source.read_bytes()
        for kind in chosen:
            raw = MUTATIONS[kind](raw, rng) or b"\n"
        cases.append((f"{number:04d}-{source.stem}-{'+'.join(chosen)}", raw))
    return cases


# -- one case through both stages ---------------------------------------------------------------


@dataclasses.dataclass
class Result:
    case: str
    seconds: float
    state: str | None = None
    recorded: bool = False
    error: str | None = None


def run_case(pipeline, name: str, raw: bytes) -> Result:
    """parse_message (ParseError is an answer) then Pipeline.ingest (nothing may escape)."""
    from mailproc import ledger
    from mailproc.read.mail import ParseError, parse_message

    start = time.perf_counter()
    try:
        with contextlib.suppress(ParseError):
            parse_message(raw)
        outcome = pipeline.ingest(raw, source=f"fuzz:{name}")
    except Exception as exc:
        return Result(name, time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    recorded = ledger.find_message(pipeline.db, hashlib.sha256(raw).hexdigest()) is not None
    return Result(name, seconds, outcome.state, recorded)


def drive(folder: Path, count: int, seed: int) -> None:
    """The subprocess: each case announced before it runs, its result after, one JSON line
    each, flushed, so a run killed by a native reader names the case that killed it."""
    sys.path[:0] = [str(ROOT), str(TESTS)]
    from conftest import make_config

    from mailproc.app import open_app
    from mailproc.pipeline import Pipeline

    with open_app(make_config(folder)) as app:
        pipeline = Pipeline(app)
        for name, raw in mutated_cases(count, seed):
            print(json.dumps({"start": name}), flush=True)
            print(json.dumps(dataclasses.asdict(run_case(pipeline, name, raw))), flush=True)


def check(results: list[Result]) -> None:
    """Every case ended in the ledger within CASE_LIMIT with nothing escaping; a failure
    lists each case that did not, with what happened."""
    failures = [f"{r.case}: escaped {r.error}" for r in results if r.error]
    failures += [f"{r.case}: not in the ledger" for r in results if not r.error and not r.recorded]
    failures += [
        f"{r.case}: outcome {r.state!r}"
        for r in results
        if not r.error and r.state not in {"new", "known", "quarantined"}
    ]
    failures += [f"{r.case}: took {r.seconds:.1f} s" for r in results if r.seconds > CASE_LIMIT]
    assert not failures, f"{len(failures)} of {len(results)} cases failed:\n" + "\n".join(failures)


# -- the tests ----------------------------------------------------------------------------------


def test_mutations_are_deterministic():
    first, again = mutated_cases(30, SEED), mutated_cases(30, SEED)
    assert [hashlib.sha256(raw).hexdigest() for _, raw in first] == [
        hashlib.sha256(raw).hexdigest() for _, raw in again
    ]
    originals = {p.read_bytes() for p in (TESTS / "corpus").glob("*.eml")}
    assert sum(raw not in originals for _, raw in first) >= 28  # nearly all really changed


@pytest.mark.slow
def test_corpus_mutations(tmp_path):
    command = [sys.executable, __file__, "--driver", str(tmp_path), str(MUTATED_CASES), str(SEED)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=DRIVER_TIMEOUT, cwd=tmp_path
        )
        output, died = done.stdout, done.returncode
    except subprocess.TimeoutExpired as exc:
        output, died = (exc.stdout or b"").decode(), "timeout"
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    results = [Result(**line) for line in lines if "case" in line]
    started = [line["start"] for line in lines if "start" in line]
    slowest = max(results, key=lambda r: r.seconds, default=None)
    print(f"corpus mutations run: {len(results)} of {MUTATED_CASES}, slowest {slowest}")
    assert died == 0, f"driver ended ({died}) during case {started[-1] if started else None}"
    assert len(results) == MUTATED_CASES
    check(results)


@pytest.mark.slow
def test_generated_mail(tmp_path):
    from conftest import make_config
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from mailproc.app import open_app
    from mailproc.pipeline import Pipeline

    results: list[Result] = []
    header_names = st.sampled_from(
        [
            "From", "To", "Subject", "Date", "Received", "Message-ID", "In-Reply-To",
            "Reply-To", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
            "MIME-Version", "Auto-Submitted", "List-Id", "Authentication-Results", "X-Mailer",
        ]
    )  # fmt: skip
    header_values = st.one_of(
        st.text(max_size=80),
        st.sampled_from(
            [
                "Fri, 31 Dec 9999 23:59:59 -1200",
                "Mon, 01 Jan 0001 00:00:00 +0000",
                "=?gb2312?B?1tC5+g==?=",
                "=?utf-8?Q?=E5=91=A8=E6=8A=A5?=",
                "=?gbk?B?broken",
                'multipart/mixed; boundary="b"',
                "multipart/mixed; boundary=",
                "text/plain; charset=gb18030",
                "base64",
                "quoted-printable",
                'attachment; filename="附件1.xlsx"',
                "attachment; filename*=utf-8''%E9%99%84%E4%BB%B61.xlsx",
                "东风镇 <dongfeng_aj@163.com>",
                "<a@b>",
                "",
            ]
        ),
    )
    part = st.tuples(
        st.sampled_from(
            [
                "text/plain; charset=utf-8",
                "text/html; charset=gbk",
                "application/octet-stream",
                "application/zip",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "message/rfc822",
                "multipart/alternative; boundary=inner",
            ]
        ),
        st.sampled_from(["base64", "quoted-printable", "8bit", "7bit", "x-unknown"]),
        st.text(max_size=40),
        st.binary(max_size=2000),
    )
    mails = st.tuples(
        st.lists(st.tuples(header_names, header_values), max_size=12),
        st.sampled_from(["b", "==b==", "", "a" * 80, "边界"]),
        st.lists(part, max_size=4),
        st.booleans(),
    )

    def render(mail) -> bytes:
        headers, boundary, parts, crlf = mail
        newline = "\r\n" if crlf else "\n"
        head = "".join(f"{name}: {value}{newline}" for name, value in headers)
        head += f'Content-Type: multipart/mixed; boundary="{boundary}"{newline}'
        body = ""
        for content_type, encoding, filename, data in parts:
            body += f"--{boundary}{newline}Content-Type: {content_type}{newline}"
            body += f"Content-Transfer-Encoding: {encoding}{newline}"
            body += f'Content-Disposition: attachment; filename="{filename}"{newline}{newline}'
            if encoding == "base64":
                body += base64.encodebytes(data).decode() + newline
            else:
                body += data.decode("latin-1") + newline
        body += f"--{boundary}--{newline}"
        return (head + newline + body).encode("utf-8", "surrogateescape")

    with open_app(make_config(tmp_path)) as app:
        pipeline = Pipeline(app)

        @settings(
            max_examples=GENERATED_CASES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(mails)
        def one(mail) -> None:
            raw = render(mail)
            results.append(run_case(pipeline, f"generated-{len(results):04d}", raw))

        one()
    slowest = max(results, key=lambda r: r.seconds, default=None)
    print(f"generated mails run: {len(results)}, slowest {slowest}")
    assert len(results) >= GENERATED_CASES * 0.9
    check(results)


if __name__ == "__main__" and sys.argv[1:2] == ["--driver"]:
    drive(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
