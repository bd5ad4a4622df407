"""French text analysis shared by BM25, theme detection and premise detection.

Stemming runs on the accented word (Snowball French expects accents), then accents are folded so
that "eclairage" typed without accents meets "éclairage" in a card.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_FRENCH

TOKEN = re.compile(r"[0-9a-zà-öø-ÿœæ]+", re.IGNORECASE)
# Question words that carry no topic; kept short so that topical verbs ("rénover") survive.
EXTRA_STOPWORDS = {
    "a", "ai", "est", "comment", "quel", "quelle", "quels", "quelles", "peut", "peux", "pouvons",
    "veut", "veux", "voulons", "souhaite", "souhaitons", "faire", "fait", "cela", "ça", "ca", "cette",
    "cet", "donc", "aussi", "tout", "tous", "toute", "toutes", "plus", "très", "bien", "est-ce", "si",
    "d'un", "d'une", "qu'est", "ya", "svp", "merci", "bonjour", "avoir", "être", "il", "existe",
}
STOPWORDS = {w.lower() for w in STOPWORDS_FRENCH} | EXTRA_STOPWORDS
_stemmer = Stemmer.Stemmer("french")


def fold(text: str) -> str:
    """Lowercase and strip accents: 'Éclairage' -> 'eclairage'."""
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


MARKUP = re.compile(r"([\\`*_\[\]<>])")
URL_SCHEME = re.compile(r":(?=//)")


def literal(text: str) -> str:
    """User-supplied text made inert inside an answer's Markdown (README, « Contrat du champ answer »):
    each markup character (\\ ` * _ [ ] < >) is backslash-escaped and « :// » becomes « \\:// », so a
    link or URL typed by the user (in « » or as profile.name) never becomes a clickable link.
    Example: "[ici](https://x.fr)" -> "\\[ici\\](https\\://x.fr)"."""
    return URL_SCHEME.sub(r"\\:", MARKUP.sub(r"\\\1", text))
