#!/bin/sh
# Rebuild eval/data/manuals/pdf and eval/data/manuals/html from the Debian packages they
# come from (Debian 12 "bookworm", main), then check them against SHA256SUMS.
#
#   sh eval/data/manuals/fetch.sh [DEBS_DIR]
#
# DEBS_DIR holds the .deb files (downloaded there with `apt-get download` when missing;
# default: a fresh temporary folder). Needs dpkg-deb, python3 and, for the Octave page cut,
# a python with pypdf (PYTHON=..., default: the project's .venv/bin/python, else python3).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
debs=${1:-$(mktemp -d)}
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
mkdir -p "$debs"

unpack() {  # unpack PACKAGE VERSION -> prints the folder it was unpacked into
    deb="$debs/$1_$(echo "$2" | sed 's/^[0-9]*://')_all.deb"
    [ -f "$deb" ] || (cd "$debs" && apt-get download -q "$1=$2" >&2)
    dpkg-deb -x "$deb" "$debs/$1"
    echo "$debs/$1/usr/share/doc"
}

rm -rf "$here/pdf" "$here/html"
mkdir -p "$here/pdf" "$here/html/octave" "$here/html/gnuplot" "$here/html/debmake-doc" \
    "$here/html/bashref"

# GNU Octave manual: physical pages 1-166 (title, copyright, contents, preface,
# chapters 1-7: printed pages 1-150), and the HTML nodes of the same part.
d=$(unpack octave-doc 7.3.0-2)
"$py" "$here/cut_pdf.py" "$d/octave/octave.pdf" 1 166 "$here/pdf/octave.pdf"
python3 - "$d/octave/octave.html" "$here/html/octave" <<'PY'
import re, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
toc = open(f"{src}/index.html", encoding="utf-8").read()
pages = list(dict.fromkeys(re.findall(r'href="([^"#/]+\.html)', toc)))
keep = ["index.html"] + pages[pages.index("Preface.html"):pages.index("Expressions.html")]
for name in keep:
    shutil.copy(f"{src}/{name}", f"{dst}/{name}")
PY

# gnuplot 5.4 manual, whole (311 pages), and its LaTeX2HTML pages (no images).
d=$(unpack gnuplot-doc 5.4.4+dfsg1-2)
cp "$d/gnuplot/gnuplot.pdf" "$here/pdf/gnuplot.pdf"
cp "$d/gnuplot/htmldocs/index.html" "$d"/gnuplot/htmldocs/node*.html "$here/html/gnuplot/"

# Guide for Debian Maintainers (debmake-doc), English, whole (143 pages).
d=$(unpack debmake-doc 1.17-7)
cp "$d/debmake-doc/debmake-doc.en.pdf" "$here/pdf/debmake-doc.pdf"
cp "$d"/debmake-doc/html/*.en.html "$here/html/debmake-doc/"

# GNU Bash Reference Manual, whole (196 pages): the held-out test manual.
d=$(unpack bash-doc 5.2.15-2)
cp "$d/bash/bashref.pdf" "$here/pdf/bashref.pdf"
cp "$d/bash/bashref.html" "$here/html/bashref/bashref.html"

chmod 644 "$here"/pdf/*.pdf "$here"/html/*/*.html
cd "$here" && sha256sum -c --quiet SHA256SUMS && echo "manuals rebuilt and checked: $here"
