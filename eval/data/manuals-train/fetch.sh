#!/bin/sh
# Fetch the training manuals (Debian 12 "bookworm", main) into DEST/pdf and DEST/html,
# the folders eval/train_manuals_reader.sh indexes, and check them against SHA256SUMS.
#
#   sh eval/data/manuals-train/fetch.sh [DEST]       (default: runs/manuals-train)
#
# Needs apt-get (download only: nothing is installed) and dpkg-deb. The versions are pinned;
# a package updated since (mutt, git-doc, postgresql-doc-15, sqlite3-doc, ffmpeg-doc, apache2-doc
# and vim-doc come from bookworm-security or a point release)
# may be gone from the mirrors: then the newer version's file differs from SHA256SUMS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
dest=${1:-$root/runs/manuals-train}
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
mkdir -p "$dest/pdf"
for d in git mutt postgres sqlite ffmpeg cmake apache rust vim; do mkdir -p "$dest/html/$d"; done

unpack() {  # unpack PACKAGE VERSION -> prints the folder it was unpacked into
    (cd "$debs" && apt-get download -q "$1=$2" >&2)
    dpkg-deb -x "$debs/$1"_*.deb "$debs/$1"
    echo "$debs/$1/usr/share"
}

d=$(unpack zsh-doc 5.9-4);              cp "$d/doc/zsh-common/zsh.pdf" "$dest/pdf/"
d=$(unpack debian-reference-en 2.100);  cp "$d/debian-reference/debian-reference.en.pdf" "$dest/pdf/"
d=$(unpack asymptote-doc 2.85+ds-1);    cp "$d/doc/asymptote/asymptote.pdf" "$dest/pdf/"
d=$(unpack glpk-doc 5.0-1);             cp "$d/doc/glpk-doc/glpk.pdf" "$dest/pdf/"
d=$(unpack lilypond-doc-pdf 2.24.1-2)
cp "$d/doc/lilypond/html/Documentation/usage.pdf" "$dest/pdf/lilypond-usage.pdf"
d=$(unpack git-doc 1:2.39.5-0+deb12u3); cp "$d/doc/git-doc/user-manual.html" "$dest/html/git/"
d=$(unpack mutt 2.2.12-0.1~deb12u2);    cp "$d/doc/mutt/html/manual.html" "$dest/html/mutt/"
d=$(unpack postgresql-doc-15 15.20-0+deb12u1)
cp "$d/doc/postgresql-doc-15/html/"tutorial*.html "$dest/html/postgres/"
d=$(unpack texlive-latex-recommended-doc 2022.20230122-3)
cp "$d/doc/texlive-doc/latex/beamer/beameruserguide.pdf" "$d/doc/texlive-doc/latex/memoir/memman.pdf" \
    "$dest/pdf/"
d=$(unpack developers-reference 12.18)
cp "$d/developers-reference/developers-reference.pdf" "$dest/pdf/"
d=$(unpack sqlite3-doc 3.40.1-2+deb12u2)
for f in cli datatype3 lang_createtable pragma fts5 lang_upsert lang_with json1; do
    cp "$d/doc/sqlite3/$f.html" "$dest/html/sqlite/"
done
d=$(unpack ffmpeg-doc 7:5.1.9-0+deb12u1); cp "$d/doc/ffmpeg/manual/ffmpeg.html" "$dest/html/ffmpeg/"
d=$(unpack cmake-doc 3.25.1-1);         cp "$d/doc/cmake-data/html/guide/tutorial/"*.html "$dest/html/cmake/"
d=$(unpack apache2-doc 2.4.71-1~deb12u1)
m="$d/doc/apache2-doc/manual/en"
for f in access auth cgi htaccess public_html reverse_proxy ssi; do cp "$m/howto/$f.html" "$dest/html/apache/"; done
for f in configuring custom-error logs urlmapping bind; do cp "$m/$f.html" "$dest/html/apache/"; done
for f in intro remapping flags; do cp "$m/rewrite/$f.html" "$dest/html/apache/"; done
cp "$m/vhosts/examples.html" "$dest/html/apache/vhosts-examples.html"
d=$(unpack rust-doc 1.63.0+dfsg1-2);    cp "$d/doc/rust-doc/html/book/"ch*.html "$dest/html/rust/"
d=$(unpack vim-doc 2:9.0.1378-2+deb12u2); cp "$d/doc/vim/html/"usr_*.html "$dest/html/vim/"
(cd "$dest" && sha256sum -c --quiet "$here/SHA256SUMS")
echo "training manuals in $dest (pdf/, html/)"
