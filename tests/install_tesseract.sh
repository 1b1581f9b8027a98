#!/bin/sh
# The OCR tests run Debian's tesseract-ocr (English data) on scanned pages. Installs it where
# missing and apt-get can (as root or with sudo); otherwise says so, and those tests are
# skipped with that reason. Always exits 0.
command -v tesseract >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
if [ "$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then
    ($SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
        tesseract-ocr tesseract-ocr-eng) >/dev/null 2>&1 && exit 0
fi
echo "note: tesseract-ocr is not installed; the OCR tests will be skipped" >&2
exit 0
