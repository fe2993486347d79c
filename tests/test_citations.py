"""Every cited source is one a user has: no file of the project points to a theory note outside the
repository, and every ``theory/<name>.md`` it cites exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED_DIRS = ("simulator", "theory", "experiments", "figures", "tests")
SUFFIXES = (".py", ".md", ".yaml", ".yml")

# Built from pieces so that this file does not match its own patterns.
OUTSIDE_NOTE = re.compile(r"(?<![\w-])" + "theory" + r"\.md\b")  # theory<dot>md, not my_theory<dot>md
OUTSIDE_DIR = re.compile(re.escape(".." + "/shared") + "|" + re.escape("/" + "shared" + "/"))
THEORY_FILE = re.compile(r"\btheory/([\w.-]+\.md)\b")


def project_files() -> list[Path]:
    """Tracked files, plus untracked ones git does not ignore, in the scanned folders and README.md."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *SCANNED_DIRS, "README.md"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.splitlines()
        paths = [ROOT / p for p in out]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the folders
        paths = [p for d in SCANNED_DIRS for p in (ROOT / d).rglob("*")] + [ROOT / "README.md"]
    return sorted(p for p in paths if p.suffix in SUFFIXES and p.is_file() and "__pycache__" not in p.parts)


def problems(text: str, theory_dir: Path) -> list[str]:
    """What is wrong with one file's citations: outside notes, outside folders, missing theory files."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        if OUTSIDE_NOTE.search(line):
            found.append(f"line {n}: cites a theory note that is not in the repository: {line.strip()[:100]}")
        if OUTSIDE_DIR.search(line):
            found.append(f"line {n}: points outside the repository: {line.strip()[:100]}")
        for name in THEORY_FILE.findall(line):
            if not (theory_dir / name).is_file():
                found.append(f"line {n}: cites theory/{name}, which does not exist")
    return found


def test_the_scanner_catches_what_it_should():
    theory_dir = ROOT / "theory"
    bad = [
        "see " + "theory" + ".md §2.5",
        "(" + "theory" + ".md)",
        "read .." + "/sha" + "red/notes.txt",
        "theory/" + "no_such_note.md §1",
    ]
    for text in bad:
        assert problems(text, theory_dir), text
    good = "theory/derivations.md §7; theory/toedit_audit.md §3; theory/curation.md §4; my_" + "theory" + ".md"
    assert problems(good, theory_dir) == []


def test_the_derivation_files_exist():
    for name in ("derivations.md", "toedit_audit.md", "curation.md"):
        assert (ROOT / "theory" / name).is_file(), name


def test_every_citation_is_inside_the_repository():
    files = project_files()
    assert len(files) > 50, f"found only {len(files)} files to scan under {ROOT}"
    report = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        report += [f"{path.relative_to(ROOT)}: {p}" for p in problems(text, ROOT / "theory")]
    if report:
        pytest.fail("\n".join(report))
