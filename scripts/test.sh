#!/usr/bin/env bash
# Sets up and runs every test on a fresh Debian machine with Python 3.11:
# installs Dovecot (the IMAP server the live tests use), Chromium (the browser the dashboard
# test loads the page in), systemd (systemd-analyze checks the documented unit; a few MB) and
# antiword (reads tables in old .doc files; LibreOffice would too, but is too big to install
# here: its tests run where it is present) and unar (the free reader of compressed RAR
# archives, optional at run time) when they are missing, builds .venv, then runs ruff and
# pytest.
# `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dovecot >/dev/null 2>&1 || need_apt+=(dovecot-imapd)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v antiword >/dev/null 2>&1 || need_apt+=(antiword)
command -v unar >/dev/null 2>&1 || need_apt+=(unar)  # compressed .rar members
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need_apt+=(fonts-noto-cjk)  # Chinese in screenshots
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need_apt[*]} with apt-get ..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest "$@"
