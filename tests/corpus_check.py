"""Compare `mailproc messages --json` output with tests/corpus/expected.json.

Used by tests/test_corpus.py and runnable by hand (`python tests/corpus_check.py LEDGER.db`)
to see per-field accuracy while working on the classifier.
"""

import json
import sys
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
FIELDS = ("unit", "item", "period", "status", "version", "reply")


def expected_entries() -> list[dict]:
    return json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def compare(records: list[dict], skip_bad_cells: bool) -> tuple[dict[str, float], list[str]]:
    """Per-field accuracy and a line per mismatch, matching mails by Message-ID."""
    by_id = {r["message_id"]: r for r in records}
    mismatches: list[str] = []
    right = dict.fromkeys((*FIELDS, "problem", "received_at"), 0)
    entries = expected_entries()
    for entry in entries:
        got = by_id.get(entry["message_id"])
        if got is None:
            mismatches.append(f"{entry['file']}: not in the ledger")
            continue
        deferred = skip_bad_cells and entry.get("problem") == "bad_cells"
        for field in FIELDS:
            want = entry.get(field)
            have = got.get(field)
            if deferred and field == "reply":
                right[field] += 1
                continue
            if want == have:
                right[field] += 1
            else:
                mismatches.append(f"{entry['file']}: {field} expected {want!r}, got {have!r}")
        if entry.get("problem") is None or deferred or entry["problem"] in got["problems"]:
            right["problem"] += 1
        else:
            mismatches.append(
                f"{entry['file']}: problem {entry['problem']!r} not in {got['problems']!r}"
            )
        if got["received_at"] == entry["received_at"]:
            right["received_at"] += 1
        else:
            mismatches.append(
                f"{entry['file']}: received_at {entry['received_at']} != {got['received_at']}"
            )
    accuracy = {field: count / len(entries) for field, count in right.items()}
    return accuracy, mismatches


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mailproc import ledger
    from mailproc.cli import message_records

    records = message_records(ledger.open_ledger(sys.argv[1]))
    accuracy, mismatches = compare(records, skip_bad_cells="--all" not in sys.argv)
    print("\n".join(mismatches))
    print("  ".join(f"{k} {v:.1%}" for k, v in accuracy.items()))
