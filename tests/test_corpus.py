"""The corpus test: every shared campaign mail reaches the outcome expected.json gives."""

import json

from conftest import CORPUS, SUMMARY
from corpus_check import compare, expected_entries

from mailproc.app import open_app
from mailproc.cli import message_records, run_ingest
from mailproc.ledger import open_ledger
from mailproc.pipeline import Pipeline


def test_every_mail_matches_expected(corpus_run):
    accuracy, mismatches = compare(corpus_run["records"], skip_bad_cells=False)
    SUMMARY.append("corpus accuracy: " + "  ".join(f"{k} {v:.1%}" for k, v in accuracy.items()))
    assert mismatches == []
    assert len(corpus_run["records"]) == len(expected_entries())


def test_reply_kinds_in_outbox(corpus_run):
    db = open_ledger(corpus_run["config"].db)
    sent = {r["message"]: r for r in db["outbox"].rows}
    by_message_id = {r["message_id"]: r for r in db["messages"].rows}
    for entry in expected_entries():
        message = by_message_id[entry["message_id"]]
        reply = sent.get(message["id"])
        if entry["reply"] == "none":
            assert reply is None, entry["file"]
        else:
            assert reply["kind"] == entry["reply"], entry["file"]
            assert reply["status"] == "sent"
            assert entry["message_id"] in reply["eml"]


def test_second_ingest_changes_nothing(corpus_run):
    config = corpus_run["config"]
    db = open_ledger(config.db)
    before = {t: db[t].count for t in ("messages", "receipts", "outbox", "attachments", "figures")}
    outbox_files = sorted(p.name for p in config.outbox.iterdir())
    with open_app(config) as app:
        counts = run_ingest(Pipeline(app), [str(CORPUS)], quiet=True)
    db = open_ledger(config.db)
    after = {t: db[t].count for t in before}
    assert after == before
    assert counts["known"] == len(expected_entries())
    assert counts["replies_sent"] == 0
    assert sorted(p.name for p in config.outbox.iterdir()) == outbox_files
    assert json.dumps(message_records(db)) == json.dumps(corpus_run["records"])


def test_figures_in_ledger_equal_expected_stats(corpus_run):
    db = open_ledger(corpus_run["config"].db)
    pk_by_message_id = {r["message_id"]: r["id"] for r in db["messages"].rows}
    with_stats = [e for e in expected_entries() if e.get("stats")]
    right: dict[str, int] = {}
    wrong = []
    for entry in with_stats:
        rows = db["figures"].rows_where("message = ?", [pk_by_message_id[entry["message_id"]]])
        got = {r["column"]: r["value"] for r in rows}
        for column, value in entry["stats"].items():
            right[column] = right.get(column, 0) + (got.get(column) == value)
        if got != entry["stats"]:
            wrong.append(entry["file"])
    SUMMARY.append(
        f"附件1 per-column accuracy over {len(with_stats)} tables: "
        + "  ".join(f"{c} {n / len(with_stats):.0%}" for c, n in right.items())
    )
    assert wrong == []
    assert len(with_stats) == 155
