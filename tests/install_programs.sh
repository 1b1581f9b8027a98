#!/bin/sh
# Debian programs the tests run: tesseract-ocr (English data) for OCR of scanned pages, mandoc
# for manual pages, pandoc for LaTeX sources. Installs what is missing where apt-get can (as
# root or with sudo); otherwise says so, and those tests are skipped with that reason. Always
# exits 0.
missing=
command -v tesseract >/dev/null 2>&1 || missing="$missing tesseract-ocr tesseract-ocr-eng"
command -v mandoc >/dev/null 2>&1 || missing="$missing mandoc"
command -v pandoc >/dev/null 2>&1 || missing="$missing pandoc"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
if [ "$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then
    ($SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
        $missing) >/dev/null 2>&1 && exit 0
fi
echo "note: not installed:$missing; the OCR, manual page and LaTeX tests will be skipped" >&2
exit 0
