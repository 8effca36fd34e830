"""The shape of the package: stages import each other one way, only the ledger package writes
the ledger, and the commands that only read it load no mail client."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, make_config

PACKAGE = Path(__file__).resolve().parents[1] / "mailproc"
LEDGER = PACKAGE / "ledger"
SQL_WRITE = ("insert", "update", "delete", "replace", "upsert")
TABLE_WRITES = {
    "insert",
    "insert_all",
    "update",
    "upsert",
    "upsert_all",
    "delete",
    "delete_where",
    "add_column",
    "create",
    "drop",
    "transform",
}
MAIL_CLIENTS = ("imaplib", "imapclient", "smtplib")


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return found


def imports_at_load(tree: ast.Module, name: str, known: set[str]) -> set[str]:
    """The package's modules `name` imports at its top level, type-checking imports included
    (an import inside a function runs when that function does, and serves only it)."""
    found: set[str] = set()
    statements = [*tree.body]
    statements += [n for s in tree.body if isinstance(s, ast.If) for n in s.body]
    for node in statements:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:  # mailproc imports absolutely
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def test_no_import_cycle():
    trees = modules()
    graph = {name: imports_at_load(tree, name, set(trees)) for name, tree in trees.items()}
    # a package imports its own modules; that is no cycle between stages
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(f"{name}.")}
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_only_the_ledger_package_writes_the_ledger():
    """No SQL that changes rows, and no sqlite-utils call that does, outside mailproc/ledger/."""
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if LEDGER in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                words = node.value.strip().lower().split()
                if words and words[0] in SQL_WRITE and len(words) > 2:
                    offences.append(f"{where}: SQL {node.value.strip()[:40]!r}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in TABLE_WRITES
                and isinstance(node.func.value, ast.Subscript | ast.Call)  # db["table"].insert
            ):
                offences.append(f"{where}: .{node.func.attr}() on a table")
    assert offences == []


def test_the_check_catches_a_write(tmp_path):
    """The check above reads code the way it is written here."""
    sample = 'db["messages"].update(1, {})\ndb.execute("UPDATE messages SET x = 1")\n'
    tree = ast.parse(sample)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert calls[0].func.attr in TABLE_WRITES and isinstance(calls[0].func.value, ast.Subscript)
    sql = next(n for n in ast.walk(tree) if isinstance(n, ast.Constant) and "SET" in str(n.value))
    assert sql.value.lower().split()[0] in SQL_WRITE


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ledger to read: a few corpus mails ingested."""
    folder = tmp_path_factory.mktemp("reading-commands")
    make_config(folder)
    (folder / "config.toml").write_text(
        '[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8"
    )
    mails = sorted(CORPUS.glob("*.eml"))[:20]
    subprocess.run(
        [sys.executable, "-m", "mailproc", "ingest", "--config", str(folder / "config.toml")]
        + [str(m) for m in mails],
        check=True,
        capture_output=True,
    )
    return folder / "config.toml"


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["stats", "--period", "2019-06-13"],
        ["report", "weekly", "--period", "2019-06-13"],
        ["dashboard"],
        ["messages"],
        ["inbox"],
    ],
)
def test_reading_commands_load_no_mail_client(demo_config, command):
    script = (
        "import json, sys\n"
        "from mailproc.cli import cli\n"
        "try:\n"
        f"    cli({json.dumps([*command, '--config', str(demo_config)])})\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        f"loaded = [m for m in {MAIL_CLIENTS!r} if m in sys.modules]\n"
        "print(json.dumps(loaded), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_the_service_modules_do_load_them():
    """The check above would see a mail client if one were loaded."""
    script = (
        "import sys\nimport mailproc.service, mailproc.outgoing.smtp\n"
        f"print(all(m in sys.modules for m in {MAIL_CLIENTS!r}))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr
