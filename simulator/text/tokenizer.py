"""Tokenisers for the text worlds: a byte-level one, and an optional BPE.

Every tokeniser has the same tiny interface (:class:`Tokenizer`):

- ``vocab_size``: ids lie in ``[0, vocab_size)``;
- ``encode(text) -> (T,) int32``;
- ``decode(ids) -> str``, replacing byte sequences that are not UTF-8 with
  U+FFFD (a model may sample any byte sequence);
- ``save(directory) -> path``: writes ``directory/tokenizer.json``, read back
  by :func:`load_tokenizer`, so a run's tokeniser is saved beside its results.

:class:`ByteTokenizer` (vocab 256, one id per UTF-8 byte) needs nothing and
is the default.  On the shipped corpus, which is pure ASCII, one byte is one
character.  :func:`train_bpe` trains a byte-level BPE with the HuggingFace
``tokenizers`` library, an optional dependency: without it, it raises an
``ImportError`` that says ``pip install tokenizers``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

FILENAME = "tokenizer.json"
_INSTALL_HINT = (
    "the BPE tokenizer needs the optional HuggingFace `tokenizers` library, "
    "which is not installed: pip install tokenizers"
)


@runtime_checkable
class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> np.ndarray: ...

    def decode(self, ids: np.ndarray) -> str: ...

    def save(self, directory: str | Path) -> Path: ...


def _ids_1d(ids, vocab_size: int) -> np.ndarray:
    """Checks ids are a 1-D integer array inside the vocabulary."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"decode expects a 1-D array of ids, got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"decode expects integer ids, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size}); got min {ids.min()}, max {ids.max()}")
    return ids


class ByteTokenizer:
    """One token per UTF-8 byte: ``vocab_size = 256``, no special tokens."""

    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)

    def decode(self, ids: np.ndarray) -> str:
        ids = _ids_1d(ids, self.vocab_size)
        return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"type": "byte", "vocab_size": 256}) + "\n")
        return path

    def __repr__(self) -> str:
        return "ByteTokenizer(vocab_size=256)"


def _require_tokenizers():
    try:
        import tokenizers
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return tokenizers


class BPETokenizer:
    """A byte-level BPE (HuggingFace ``tokenizers``), built by :func:`train_bpe`
    or :func:`load_tokenizer`.  Byte-level, so every string is encodable."""

    def __init__(self, hf_tokenizer):
        self._tok = hf_tokenizer
        self.vocab_size = int(hf_tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._tok.encode(text).ids, dtype=np.int32)

    def decode(self, ids: np.ndarray) -> str:
        ids = _ids_1d(ids, self.vocab_size)
        # the ByteLevel decoder decodes bytes lossily: invalid UTF-8 -> U+FFFD
        return self._tok.decode(ids.tolist(), skip_special_tokens=False)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(path))
        return path

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def train_bpe(texts: Iterable[str], vocab_size: int = 1024) -> BPETokenizer:
    """Trains a byte-level BPE on ``texts`` (pass the *training* split only,
    so validation and test text do not shape the vocabulary).

    The vocabulary starts from the 256 byte symbols, so ``vocab_size`` must be
    at least 256; merges fill the rest.  There are no special tokens.
    """
    if vocab_size < 256:
        raise ValueError(f"a byte-level BPE needs vocab_size >= 256, got {vocab_size}")
    tk = _require_tokenizers()
    byte_level = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = byte_level
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return BPETokenizer(tok)


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Reads the tokeniser that ``save(directory)`` wrote."""
    path = Path(directory) / FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"no {FILENAME} in {directory}")
    spec = json.loads(path.read_text())
    if spec.get("type") == "byte":
        return ByteTokenizer()
    tk = _require_tokenizers()
    return BPETokenizer(tk.Tokenizer.from_file(str(path)))
