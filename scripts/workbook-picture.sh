#!/usr/bin/env bash
# Renders the consolidated weekly workbook as a spreadsheet program shows it, for the README:
# demo ledger → `mailproc report weekly` → LibreOffice (headless) → PDF → PNG.
# Needs Debian's libreoffice-calc-nogui, poppler-utils and fonts-noto-cjk (not needed by tests).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
.venv/bin/mailproc demo "$work/demo" >/dev/null
book=$(.venv/bin/mailproc report weekly --period 2019-06-13 --config "$work/demo/config.toml")
cp "$book" "$work/weekly.xlsx"
(cd "$work" && soffice --headless --convert-to pdf weekly.xlsx >/dev/null 2>&1)
pdftoppm -r 110 -png -f 1 -l 1 -x 40 -y 100 -W 1210 -H 620 "$work/weekly.pdf" "$work/page"
cp "$work"/page*.png docs/images/weekly-workbook.png
rm -rf "$work"
echo docs/images/weekly-workbook.png
