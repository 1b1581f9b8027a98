#!/bin/sh
# The browser tests drive Debian's chromium with chromium-driver (no browser download).
# Installs them where missing and apt-get can (as root or with sudo); otherwise says so, and
# those tests are skipped with that reason. Always exits 0.
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
if [ "$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then
    ($SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
        chromium chromium-driver) >/dev/null 2>&1 && exit 0
fi
echo "note: chromium and chromium-driver are not installed; the browser tests will be skipped" >&2
exit 0
