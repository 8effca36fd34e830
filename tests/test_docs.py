"""The documentation tells the truth about the ledger, the config and the rules format."""

import re
import tomllib
from pathlib import Path

from mailproc.config import KNOWN, parse_config
from mailproc.ledger import open_ledger
from mailproc.rules import KEYS

ROOT = Path(__file__).resolve().parents[1]


def documented_columns() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")
    tables: dict[str, set[str]] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        name = section.split("\n", 1)[0].strip()
        cells = re.findall(r"^\| (`[^|]+) \|", section, flags=re.M)
        tables[name] = {c for cell in cells for c in re.findall(r"`([a-z_0-9]+)`", cell)}
    return tables


def test_ledger_doc_matches_schema(tmp_path):
    db = open_ledger(tmp_path / "ledger.db")
    actual = {t.name: {c.name for c in t.columns} for t in db.tables if not t.name.startswith("_")}
    assert documented_columns() == actual


def test_config_example_documents_every_key_and_loads(tmp_path):
    example = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    assert {section: set(keys) for section, keys in example.items()} == KNOWN
    config = parse_config(example, tmp_path)
    assert (config.mailbox.server.host, config.mailbox.server.port) == ("imap.163.com", 993)
    assert (config.smtp.server.host, config.smtp.server.port) == ("smtp.163.com", 465)
    assert config.mailbox.since.isoformat() == "2019-05-01"
    assert config.mailbox.processed_folder is None


def documented_rule_keys() -> dict[str, set[str]]:
    """docs/rules.md: each `### [table]` section's `key` cells."""
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    tables: dict[str, set[str]] = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        name = section.split("\n", 1)[0].strip().strip("[]")
        tables[name] = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    return tables


def test_rules_doc_describes_every_key_the_code_reads():
    assert documented_rule_keys() == {name: set(keys) for name, keys in KEYS.items()}
