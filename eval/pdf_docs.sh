#!/bin/sh
# The real documents eval/bench_pdf.py measures PDF extraction on: Debian documentation
# packages (Debian 12 "bookworm", main) that ship a manual as PDF and as HTML, a two-column
# newsletter with its LaTeX source, and a manual with many tables. Never the R manuals
# (r-doc-*): they are reserved for acceptance runs.
#
#   sh eval/pdf_docs.sh [DIR]        (default runs/debdocs; each package unpacked in DIR/NAME)
set -eu
dir=${1:-runs/debdocs}
mkdir -p "$dir"
for spec in octave-doc=7.3.0-2 debmake-doc=1.17-7 gnuplot-doc=5.4.4+dfsg1-2 \
        texlive-latex-base-doc=2022.20230122-3 python-reportlab-doc=3.6.12-1+deb12u1 \
        bash-doc=5.2.15-2; do
    name=${spec%%=*}
    [ -d "$dir/$name" ] && continue
    (cd "$dir" && apt-get download -q "$spec" >&2)
    dpkg-deb -x "$dir/${name}_$(echo "${spec#*=}" | sed 's/^[0-9]*://')_all.deb" "$dir/$name"
done
echo "documents in $dir"
