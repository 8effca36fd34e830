#!/usr/bin/env bash
# Renders the dashboard of the demo ledger as of 21 June 2019, 09:00 in headless Chromium, for
# the README. Needs Debian's chromium and fonts-noto-cjk (scripts/test.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
.venv/bin/mailproc demo "$work/demo" >/dev/null
page=$(.venv/bin/mailproc dashboard --now 2019-06-21T09:00:00+08:00 --config "$work/demo/config.toml")
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$work/profile" --window-size=1400,1800 \
  --screenshot="$PWD/docs/images/dashboard.png" "file://$page" 2>/dev/null
rm -rf "$work"
echo docs/images/dashboard.png
