"""Build the faq, changelog and readme corpora of eval/data/informal/ from Debian packages.

Each source file is read from the package's .deb (``apt-get download`` + ``dpkg-deb -x``),
reflowed (hard-wrapped lines of a paragraph or list item joined, runs of spaces collapsed,
rule lines such as ``-----`` dropped) and cut into documents: one question of a FAQ, one
release of a NEWS file or changelog, one README. Every row records the package, its
version, the file and the licence of that file (from the package's copyright file).

    python3 eval/data/informal/build_debian.py --debs runs/debs   # writes the three corpora

The forum and reviews corpora are written by hand and are not touched. The packages are
Debian 12 (bookworm); with other versions the text (and so the questions) may differ: the
script reports the versions it read and check.py reports answers that no longer occur.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_SHARE = 3  # one document in three is test
MAX_WORDS = 1500  # a longer release note or FAQ entry is left out (READMEs are kept whole)

DEBIAN_FAQ_LICENCE = ("Debian FAQ licence: verbatim and modified copies permitted provided the "
                      "copyright notice and the permission notice are preserved "
                      "(Copyright 1996-2021 Software in the Public Interest)")

# register -> [(package, file under usr/share/doc/, how to cut it, options)]
SOURCES = {
    "faq": [
        ("debian-faq", "debian/FAQ/debian-faq.en.txt.gz", "numbered",
         {"start": r"^Chapter 1\.", "name": "Debian FAQ", "licence": DEBIAN_FAQ_LICENCE}),
        ("xz-utils", "xz-utils/faq.txt.gz", "regex", {"at": r"^Q:", "name": "XZ Utils FAQ"}),
        ("zlib1g-dev", "zlib1g-dev/FAQ.gz", "regex", {"at": r"^ ?\d+\. ", "name": "zlib FAQ"}),
        ("valgrind", "valgrind/FAQ.txt.gz", "numbered", {"name": "Valgrind FAQ"}),
        ("chrony", "chrony/FAQ.gz", "numbered", {"start": r"^1\. chrony", "name": "chrony FAQ"}),
        ("mdadm", "mdadm/FAQ.gz", "regex", {"at": r"^\d+[a-z]?\. \S", "name": "Debian mdadm FAQ"}),
        ("screen", "screen/FAQ.gz", "regex", {"at": r"^Q:", "name": "screen FAQ"}),
        ("procps", "procps/FAQ.gz", "regex", {"at": r"^[A-Z][^\t]*\?\s*$", "name": "procps FAQ"}),
        ("man-db", "man-db/FAQ", "regex", {"at": r"^\S.*\n=+$", "name": "man-db FAQ"}),
        ("base-files", "base-files/FAQ", "whole",
         {"name": "base-files FAQ", "licence": "GPL-2+ (base-files copyright file)"}),
        ("ncurses-base", "ncurses-base/FAQ", "whole", {"name": "ncurses FAQ"}),
    ],
    "changelog": [
        *[(p, f"{p}/NEWS.Debian.gz", "debian", {"limit": 12}) for p in (
            "apt", "openssh-client", "make", "libc6", "systemd", "adduser", "libpam0g",
            "grep", "findutils", "tmux", "git", "coreutils", "postgresql-common", "sudo",
            "rsync", "chrony", "fail2ban", "unattended-upgrades", "mutt", "mdadm",
            "cryptsetup-bin", "nginx-common", "apache2", "borgbackup", "cron")],
        ("grep", "grep/NEWS.gz", "regex",
         {"at": r"^\* Noteworthy changes in release", "limit": 6, "name": "GNU grep NEWS"}),
        ("sed", "sed/NEWS.gz", "regex",
         {"at": r"^\* Noteworthy changes in release", "limit": 5, "name": "GNU sed NEWS"}),
        ("gzip", "gzip/NEWS.gz", "regex",
         {"at": r"^\* Noteworthy changes in release", "limit": 5, "name": "GNU gzip NEWS"}),
        ("diffutils", "diffutils/NEWS.gz", "regex",
         {"at": r"^\* Noteworthy changes in release", "limit": 4, "name": "GNU diffutils NEWS"}),
        ("wget", "wget/NEWS.gz", "regex",
         {"at": r"^\* (Noteworthy changes in release|Changes in Wget)", "limit": 6,
          "name": "GNU Wget NEWS"}),
        ("xz-utils", "xz-utils/NEWS.gz", "regex",
         {"at": r"^\d+\.\d+\.\d+ \(\d{4}-", "limit": 6, "name": "XZ Utils release notes"}),
        ("less", "less/NEWS.gz", "regex",
         {"at": r"^\s*Major changes between", "limit": 6, "name": "less NEWS"}),
        ("chrony", "chrony/NEWS.gz", "regex",
         {"at": r"^New in version", "limit": 6, "name": "chrony NEWS"}),
        *[(p, f"{p}/changelog.Debian.gz", "debian", {"limit": 5}) for p in (
            "tmux", "less", "logrotate", "htop", "ncdu")],
    ],
    "readme": [
        *[(p, f"{p}/{f}", "whole", {}) for p, f in (
            ("apache2", "README.Debian.gz"), ("apt-listchanges", "README.Debian.gz"),
            ("borgbackup", "README.Debian"), ("ca-certificates", "README.Debian"),
            ("chrony", "README.Debian"), ("cron", "README.Debian"), ("cron", "README"),
            ("dbus", "README.Debian"), ("dirmngr", "README.Debian"),
            ("distro-info-data", "README.Debian"), ("fail2ban", "README.Debian.gz"),
            ("file", "README.Debian"), ("fontconfig", "README.Debian"),
            ("gnupg", "README.Debian"), ("gpg-agent", "README.Debian"),
            ("groff-base", "README.Debian"), ("libcap2-bin", "README.Debian"),
            ("libkrb5-3", "README.Debian"), ("libldap-2.5-0", "README.Debian"),
            ("libnss-mdns", "README.Debian"), ("libreadline8", "README.Debian"),
            ("libsasl2-2", "README.Debian"), ("libsqlite3-0", "README.Debian"),
            ("libxml2", "README.Debian"), ("mc", "README.Debian"), ("mutt", "README.Debian"),
            ("nftables", "README.Debian"), ("openssl", "README.Debian"),
            ("passwd", "README.Debian"), ("perl", "README.Debian"),
            ("pinentry-curses", "README.Debian"), ("postfix", "README.Debian.gz"),
            ("python3-pip", "README.Debian"), ("python3.11-minimal", "README.Debian.gz"),
            ("rsync", "README.Debian"), ("screen", "README.Debian.gz"),
            ("sgml-base", "README.Debian"), ("smartmontools", "README.Debian"),
            ("sudo", "README.Debian"), ("tzdata", "README.Debian"), ("ufw", "README.Debian"),
            ("vim-common", "README.Debian"), ("xkb-data", "README.Debian"),
            ("xml-core", "README.Debian"), ("bash", "README.Debian.gz"),
            ("systemd", "README.Debian.gz"), ("tar", "README.Debian"),
            ("procps", "README.Debian"), ("xz-utils", "README.Debian"),
            ("git", "README.Debian"), ("less", "README.Debian"),
            ("debsums", "README"), ("smartmontools", "README"), ("wget", "README"),
            ("needrestart", "README.md"), ("needrestart", "README.batch.md"),
            ("sudo", "README.md"), ("htop", "README.gz"),
            ("unattended-upgrades", "README.md.gz"), ("fail2ban", "README.md.gz"),
            ("ufw", "README.gz"), ("etckeeper", "README.mdwn.gz"),
            ("mdadm", "README.recipes.gz"), ("w3m", "README.cookie"),
            ("apache2", "README.multiple-instances"), ("grep", "README"),
            ("gzip", "README.gz"), ("e2fsprogs", "README"), ("coreutils", "README.Debian"))],
    ],
}

# The copyright files of these packages are not machine-readable (DEP-5): stated by hand.
LICENCES = {
    "base-files": "GPL-2+ (base-files copyright file)",
    "fail2ban": "GPL-2+ (fail2ban copyright file)",
    "fontconfig": "MIT-style (fontconfig copyright file)",
    "groff-base": "GPL-3+ (groff copyright file); Debian packaging GPL-2+",
    "libc6": "LGPL-2.1+ (glibc copyright file)",
    "libkrb5-3": "MIT Kerberos licence (BSD-style, krb5 copyright file)",
    "postfix": "IPL-1.0 or EPL-2.0 (postfix copyright file)",
    "python3.11-minimal": "PSF-2.0 (Python copyright file)",
    "wget": "GPL-3+ (wget copyright file)",
    "xkb-data": "MIT/X11-style (xkeyboard-config copyright file)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debs", default="runs/debs", help="where to download the .deb files")
    ap.add_argument("--only", choices=sorted(SOURCES), action="append")
    args = ap.parse_args()
    debs = Path(args.debs)
    debs.mkdir(parents=True, exist_ok=True)
    for register in args.only or sorted(SOURCES):
        rows = []
        for package, path, how, opts in SOURCES[register]:
            root, version = unpack(package, debs)
            text = read(root / "usr/share/doc" / path)
            licence = opts.get("licence") or licence_of(root, package, path)
            for title, body in cut(text, how, opts, package, path):
                rows.append({"title": title, "text": body, "package": package,
                             "version": version, "file": f"/usr/share/doc/{path}",
                             "licence": licence})
        for i, row in enumerate(rows, 1):
            row["id"] = f"{register}-{i:04d}"
        assign_splits(rows)
        out = HERE / f"{register}.corpus.jsonl"
        with open(out, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps({k: row[k] for k in ("id", "title", "text", "split",
                                   "package", "version", "file", "licence")},
                                   ensure_ascii=False) + "\n")
        print(f"{out.name}: {len(rows)} documents", file=sys.stderr)


def assign_splits(rows: list[dict]) -> None:
    """One document in TEST_SHARE is test: the first third in order of the SHA-1 of the id
    (stable when documents are added elsewhere in the file), the rest dev."""
    order = sorted(rows, key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
    test = {r["id"] for r in order[:len(order) // TEST_SHARE]}
    for row in rows:
        row["split"] = "test" if row["id"] in test else "dev"


def unpack(package: str, debs: Path) -> tuple[Path, str]:
    """(the unpacked package, its version), downloading the .deb once."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True,
                       capture_output=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    deb = found[-1]
    root = debs / "unpacked" / package
    if not root.exists():
        root.parent.mkdir(exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    return root, version


def read(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def licence_of(root: Path, package: str, path: str) -> str:
    """The License of the copyright stanza covering the file: ``debian/*`` for Debian's own
    files (README.Debian, NEWS.Debian, changelog.Debian, debian/FAQ), ``*`` for upstream's."""
    if package in LICENCES:
        return LICENCES[package]
    copyright_ = (root / "usr/share/doc" / package / "copyright")
    if not copyright_.exists():  # a package whose doc directory is a link to another's
        copyright_ = next((root / "usr/share/doc").glob("*/copyright"))
    stanzas = [dict(re.findall(r"^(Files|License):[ \t]*(.*)$", s, re.M))
               for s in copyright_.read_text(errors="replace").split("\n\n")]
    debian_file = "Debian" in path or "changelog.Debian" in path or package == "mdadm"
    wanted = "debian/*" if debian_file else "*"
    for s in stanzas:
        if "Files" in s and wanted in s["Files"].split() and s.get("License"):
            return s["License"]
    for s in stanzas:  # no stanza for debian/*: the upstream one covers everything
        if "Files" in s and "*" in s["Files"].split() and s.get("License"):
            return s["License"]
    raise SystemExit(f"{package}: no licence found in {copyright_}; add it to LICENCES")


def cut(text: str, how: str, opts: dict, package: str, path: str):
    """(title, text) of each document in one source file."""
    name = opts.get("name") or f"{package} {Path(path).name.removesuffix('.gz')}"
    if opts.get("start"):
        m = re.search(opts["start"], text, re.M)
        text = text[m.start():] if m else text
    if how == "whole":
        yield name, reflow(text)
        return
    if how == "debian":
        pieces = re.split(r"(?m)^(?=\S+ \([^)]+\) .*urgency=)", text)
        pieces = [p for p in pieces if p.strip()][:opts.get("limit")]
        for p in pieces:
            head = re.match(r"(\S+) \(([^)]+)\)", p)
            kind = "NEWS.Debian" if "NEWS" in path else "Debian changelog"
            yield f"{head.group(1)} {head.group(2)} ({kind})", reflow(p)
        return
    at = {"numbered": r"^\d+(?:\.\d+)+\.\s+\S"}.get(how, opts.get("at"))
    starts = [m.start() for m in re.finditer(at, text, re.M)]
    pieces = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    if how == "numbered":  # sections: drop a chapter heading caught at the end of one
        pieces = [re.sub(r"\n(Chapter )?\d+\. [^\n]*\n*$", "\n", p) for p in pieces]
    for p in pieces[:opts.get("limit")]:
        body = reflow(p)
        if not 8 <= len(body.split()) <= MAX_WORDS:
            continue
        first = body.split("\n", 1)[0].removeprefix("Q:").strip(" *")
        yield f"{name}: {first[:120]}", body


RULE = re.compile(r"^\s*([-=~*_]|=-){3,}[-=~*_]*\s*$")
ITEM = re.compile(r"^\s*([*+o-]|\d+[.)]|\*\*|Q:|A:|[A-Z][a-z]+:$)\s")


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph and list item; keep short lines
    (commands, headings, tables) as they are; drop rule lines; collapse runs of spaces;
    no-break spaces become spaces."""
    out: list[str] = []
    prev_indent = 0
    for raw in text.replace("\xa0", " ").expandtabs(8).split("\n"):
        if RULE.match(raw):
            raw = ""
        line = raw.rstrip()
        indent = len(line) - len(line.lstrip())
        if out and out[-1].strip() and line.strip() and not ITEM.match(line) and (
                indent > prev_indent or (indent == prev_indent and len(out[-1]) >= 55)):
            sep = "" if re.search(r"https?:/*$|\S/$", out[-1]) else " "  # a path or URL
            out[-1] = out[-1] + sep + line.strip()
            continue
        out.append(line)
        prev_indent = indent
    text = "\n".join(re.sub(r"(?<=\S) {2,}", " ", ln) for ln in out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


if __name__ == "__main__":
    main()
