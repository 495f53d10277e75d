"""Text normalisation and the features the default intent classifier reads.

``normalise`` folds case, accents and punctuation so "Où est ma COMMANDE ?!" and
"ou est ma commande" are the same words. ``features`` turns normalised text into the
bag the classifier weighs: word unigrams (``w:open``), word bigrams (``b:open|today``)
and character n-grams of 2 to 5 inside each word padded with spaces (``c: op``), which
is what makes a typo ("oppening") still share most of its features with the word.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable

_NON_WORD = re.compile(r"[^a-z0-9]+")
# A few contractions and spellings that carry meaning as whole words.
_REWRITES = {"n't": " not", "'re": " are", "'m": " am", "'ll": " will", "'ve": " have"}
CHAR_NGRAMS = (2, 3, 4, 5)


def fold(text: str) -> str:
    """Lower case without accents: "Crème Brûlée" -> "creme brulee"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise(text: str) -> str:
    """Folded words separated by single spaces, punctuation gone."""
    folded = fold(text).replace("\u2019", "'")
    for short, long in _REWRITES.items():
        folded = folded.replace(short, long)
    return _NON_WORD.sub(" ", folded).strip()


def words(text: str) -> list[str]:
    """The normalised words of ``text``."""
    return normalise(text).split()


def char_ngrams(word: str) -> Iterable[str]:
    padded = f" {word} "
    for n in CHAR_NGRAMS:
        for i in range(len(padded) - n + 1):
            gram = padded[i : i + n]
            if gram.strip():
                yield "c:" + gram


_SUFFIXES = ("ing", "ed", "es", "s")


def stem(word: str) -> str:
    """A crude English stem, enough for "ordered", "orders" and "order" to meet."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def features(tokens: list[str]) -> dict[str, float]:
    """Counts of the features of already normalised words."""
    counts: dict[str, float] = {}
    stems = [stem(token) for token in tokens]
    for token, root in zip(tokens, stems):
        key = "w:" + root
        counts[key] = counts.get(key, 0.0) + 1.0
        for gram in char_ngrams(token):
            counts[gram] = counts.get(gram, 0.0) + 1.0
    for first, second in itertools.pairwise(stems):
        key = f"b:{first}|{second}"
        counts[key] = counts.get(key, 0.0) + 1.0
    return counts


def deletions(word: str) -> set[str]:
    """``word`` with one letter removed, each way: the index of a one-edit typo search."""
    return {word[:i] + word[i + 1 :] for i in range(len(word))}
