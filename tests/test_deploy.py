"""The documented systemd unit is the one in the repository, systemd accepts it as written, and
it keeps the service locked down (`systemd-analyze security` exposure below 3.0, the figure
docs/deploy.md states)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

UNIT = ROOT / "docs" / "mailproc.service"
DEPLOY = ROOT / "docs" / "deploy.md"
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (scripts/test.sh installs systemd)"
)
# Where a Debian system keeps the units every unit may refer to (sysinit.target, …)
SYSTEM_UNITS = next(
    (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None
)


def unit_lines() -> list[str]:
    return UNIT.read_text(encoding="utf-8").splitlines()


def test_deploy_md_quotes_the_unit_file_whole():
    text = DEPLOY.read_text(encoding="utf-8")
    quoted = re.search(r"```ini\n(# /etc/systemd/system/mailproc\.service.*?)```", text, re.S)
    assert quoted is not None
    assert quoted.group(1) == UNIT.read_text(encoding="utf-8")


def test_the_unit_holds_the_lockdown_and_no_secret():
    lines = set(unit_lines())
    assert {
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/mailproc",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "MemoryDenyWriteExecute=yes",
        "LoadCredential=163-code:/etc/mailproc/163-code",
    } <= lines
    # setrlimit (the reading process's ceilings) is in @resources: it must stay allowed
    assert not any(line.startswith("SystemCallFilter=~") and "@resources" in line for line in lines)
    assert not any(line.startswith(("Environment=", "EnvironmentFile=")) for line in lines)


@needs_systemd
def test_systemd_analyze_verify_is_clean(tmp_path):
    """Checked inside a root that holds the system's units and a stand-in for the installed
    command (verify refuses a unit whose ExecStart does not exist)."""
    if SYSTEM_UNITS is None:
        pytest.skip("no systemd unit directory on this machine")
    command = next(line for line in unit_lines() if line.startswith("ExecStart=")).split()[0]
    stand_in = tmp_path / command.removeprefix("ExecStart=/")
    stand_in.parent.mkdir(parents=True)
    stand_in.write_text("#!/bin/sh\n", encoding="utf-8")
    stand_in.chmod(0o755)
    shutil.copytree(SYSTEM_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    installed = tmp_path / "etc/systemd/system/mailproc.service"
    installed.parent.mkdir(parents=True)
    shutil.copy(UNIT, installed)
    done = subprocess.run(
        [ANALYZE, "verify", f"--root={tmp_path}", str(installed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@needs_systemd
def test_exposure_is_below_3_and_as_documented():
    done = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for mailproc\.service: (\d+\.\d)", done.stdout)
    assert found is not None, done.stdout + done.stderr
    exposure = float(found.group(1))
    assert exposure < 3.0
    page = " ".join(DEPLOY.read_text(encoding="utf-8").split())
    assert f"exposure level {found.group(1)} OK" in page
