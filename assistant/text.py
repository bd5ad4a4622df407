"""French text analysis shared by BM25, theme detection and premise detection.

Stemming runs on the accented word (Snowball French expects accents), then accents are folded so
that "eclairage" typed without accents meets "éclairage" in a card.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import Stemmer

TOKEN = re.compile(r"[0-9a-zà-öø-ÿœæ]+", re.IGNORECASE)
# Question words that carry no topic; kept short so that topical verbs ("rénover") survive.
EXTRA_STOPWORDS = {
    "a", "ai", "est", "comment", "quel", "quelle", "quels", "quelles", "peut", "peux", "pouvons",
    "veut", "veux", "voulons", "souhaite", "souhaitons", "faire", "fait", "cela", "ça", "ca", "cette",
    "cet", "donc", "aussi", "tout", "tous", "toute", "toutes", "plus", "très", "bien", "est-ce", "si",
    "d'un", "d'une", "qu'est", "ya", "svp", "merci", "bonjour", "avoir", "être", "il", "existe",
}


def _bm25s_french_stopwords() -> tuple[str, ...]:
    """bm25s's French stop words (bm25s/stopwords.py, a module without imports), read from its file:
    `import bm25s.stopwords` would run the package's __init__, which imports numba and SciPy, start-up
    time the server does not need (it scores BM25 itself: assistant/bm25.py)."""
    package = importlib.util.find_spec("bm25s")  # locates the package without importing it
    spec = importlib.util.spec_from_file_location("_bm25s_stopwords", Path(package.origin).with_name("stopwords.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.STOPWORDS_FRENCH


STOPWORDS = {w.lower() for w in _bm25s_french_stopwords()} | EXTRA_STOPWORDS
_stemmer = Stemmer.Stemmer("french")


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lowercase and strip accents: 'Éclairage' -> 'eclairage'. Memoised: a turn folds its message
    in a dozen stages, and the words of the corpus's lexicon again and again."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("œ", "oe").replace("æ", "ae"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return [w.lower() for w in TOKEN.findall(text.replace("’", "'"))]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return fold(_stemmer.stemWord(word))


def analyze(text: str) -> list[str]:
    """Tokens for BM25: words, minus stop words, stemmed, accent-folded."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and len(w) > 1]


FOLDED_STOPWORDS = {fold(w) for w in STOPWORDS}


def match_terms(text: str) -> list[str]:
    """Tokens for matching phrases (themes, premises): folded before stemming, so that a word typed
    with or without its accents gives the same term (« mobilité » and « mobilite » -> « mobilit »).
    Both sides of a comparison must use it; BM25 keeps `analyze`, its index is built with it."""
    return [stem(w) for w in words(fold(text)) if w not in FOLDED_STOPWORDS and len(w) > 1]


def char_wb_grams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams inside word boundaries, each word padded with one space: exactly
    scikit-learn's `char_wb` analyzer (same grams, same order, a word shorter than n counted once),
    without importing scikit-learn at run time (tests/test_text_and_chunking.py compares them).
    Example: ("pont", (2, 3)) -> [" p", "po", "on", "nt", "t ", " po", "pon", "ont", "nt "]."""
    low_high = tuple(ngram_range)
    return [gram for word in text.split() for gram in word_char_grams(word, low_high)]


def word_char_grams(word: str, ngram_range: tuple[int, int]) -> list[str]:
    """The char_wb n-grams of one word (no whitespace in it), in char_wb's order. A text's are its
    words' in order: no gram spans two words, so a model may compute what it reads of a gram once
    per word and memoise it (assistant.scope.features, assistant.everyday)."""
    low, high = ngram_range
    padded = f" {word} "
    length = len(padded)
    grams: list[str] = []
    for n in range(low, high + 1):
        if length <= n:  # the whole padded word, once
            grams.append(padded)
            break
        grams.extend(padded[i : i + n] for i in range(length - n + 1))
    return grams


WORD_MEMO = 16384  # words whose n-gram features a model keeps (a question's words recur from one to the next)


LETTERS = re.compile(r"[^\W\d_]+")


def spelling_counts(text: str) -> Counter:
    """How often each spelling of a word (letters only, NFC) occurs in a text: what Lexicon counts."""
    return Counter(LETTERS.findall(unicodedata.normalize("NFC", text)))


class Lexicon:
    """The corpus's own spelling of each word, to read a question the same however it was typed.

    Built from texts (the offer cards of an index generation): for each word folded (lowercase, no
    accent), the spelling the texts use most often, accents and case included (« école », « DETR »,
    « Cerema »; ties: the first in code-point order). `canonical` rewrites a question word by word
    with those spellings, so that « ÉCOLE », « ecole » and « école » (composed or not) all read
    « école », for BM25 and for the dense encoder alike (the encoder is sensitive to case: a question
    in capitals must not read differently).
    """

    def __init__(self, texts: Iterable[str]):
        spellings = Counter()  # each spelling counted once over all texts (C loop), then grouped by folded form
        for text in texts:
            spellings.update(spelling_counts(text))
        self.spelling = self.from_counts(spellings).spelling

    @classmethod
    def from_counts(cls, spellings: dict[str, int]) -> Lexicon:
        """The lexicon of texts whose spellings were counted (sum of their `spelling_counts`): the
        indexer keeps these counts with each index generation and updates them with the changed cards."""
        counts: dict[str, dict[str, int]] = {}
        for word, n in spellings.items():
            if n > 0:
                counts.setdefault(fold(word), {})[word] = n
        lexicon = cls.__new__(cls)
        lexicon.spelling = {key: min(c, key=lambda w: (-c[w], w)) for key, c in counts.items()}
        return lexicon

    def canonical(self, text: str) -> str:
        """The text in the corpus's spelling, one sentence capital (str -> str).

        Each word known to the corpus takes its spelling there, any other word is folded (lowercase,
        no accent); the first letter of each sentence is a capital. Variants of one question that
        differ only by case, accents or Unicode form give the same string.
        Example: "RENOVER L'ECOLE A Laveissière ? la DETR" -> "Rénover l'école à laveissiere ? La DETR".
        """

        last = getattr(self, "_last", None)  # a turn reads its query so three times (scope, retrieval, catalogue)
        if last is not None and last[0] == text:
            return last[1]

        def spell(match: re.Match) -> str:
            key = fold(match.group())
            return self.spelling.get(key, key)

        spelled = LETTERS.sub(spell, unicodedata.normalize("NFC", text))
        canonical = SENTENCE_START.sub(lambda m: m.group().upper(), spelled)
        self._last = (text, canonical)  # one tuple, replaced at once: safe across threads
        return canonical


SENTENCE_START = re.compile(r"(?:^|(?<=[.!?\n]\s)|(?<=[.!?\n]))\s*[^\W\d_]")


MARKUP = re.compile(r"([\\`*_\[\]<>])")
URL_SCHEME = re.compile(r":(?=//)")


def literal(text: str) -> str:
    """User-supplied text made inert inside an answer's Markdown (README, « Contrat du champ answer »):
    each markup character (\\ ` * _ [ ] < >) is backslash-escaped and « :// » becomes « \\:// », so a
    link or URL typed by the user (in « » or as profile.name) never becomes a clickable link.
    Example: "[ici](https://x.fr)" -> "\\[ici\\](https\\://x.fr)"."""
    return URL_SCHEME.sub(r"\\:", MARKUP.sub(r"\\\1", text))
