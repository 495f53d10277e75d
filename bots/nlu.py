"""Intent classification, trained at load time from a bot's example phrases.

| piece | what |
| --- | --- |
| ``Classifier`` | the seam: ``fit(examples)`` then ``rank(text)`` -> intents best first, scores 0..1 |
| ``ExampleClassifier`` | the default, pure Python: TF-IDF (rarity among examples and among intents) over words, word pairs and character n-grams, one-edit typo correction, scored by cosine similarity to the closest example and each intent's centroid |
| ``Prediction`` | what a bot reads: the best intent, its score, the ranking |

The score is the square root of a similarity, not a probability: about 0.9 for an
example itself (1.0 when the intent's examples all say the same), 0.5 to 0.8 for a
paraphrase, below 0.4 usually for something the bot was not taught.
A bot compares it with its ``threshold`` and answers with its fallback below it, so
out-of-scope messages need no examples of their own. A stronger backend (a scikit-learn
model, an embedding model) is any object with the same two methods.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bots.text import deletions, features, words

# How much each kind of feature counts, relative to the character n-grams: a whole word
# or word pair is much stronger evidence than one of the many n-grams it spans.
WEIGHTS = {"w": 1.0, "b": 2.0, "c": 1.0}
MIN_TYPO_LENGTH = 4
MAX_TEXT = 2000  # characters read of a message (a long email is judged by its start)
# A feature's weight is its rarity among the examples (idf ** idf_power) times its rarity
# among the intents (** INTENT_POWER): "human" in five examples of one intent still tells
# more than "you" in examples of every intent. UNSEEN: see _vector.
UNSEEN = 1.0
INTENT_POWER = 0.5


@dataclass(frozen=True, slots=True)
class Prediction:
    intent: str | None
    score: float
    ranking: Sequence[tuple[str, float]] = field(default_factory=tuple)


class Classifier(Protocol):
    """Learns intents from examples, then ranks the intents for a text."""

    def fit(self, examples: Sequence[tuple[str, str]]) -> None:
        """``examples`` are ``(text, intent)`` pairs; called again when they change."""
        ...

    def rank(self, text: str) -> Sequence[tuple[str, float]]:
        """Every known intent with its score in 0..1, best first."""
        ...


Vector = dict[str, float]


def _unit(vector: Vector) -> Vector:
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {k: v / norm for k, v in vector.items()} if norm else {}


class Speller:
    """Replaces a word the examples never used by a known word one edit away."""

    def __init__(self, vocabulary: Counter[str]) -> None:
        self._known = vocabulary
        self._by_deletion: dict[str, list[str]] = defaultdict(list)
        for word in vocabulary:
            if len(word) >= MIN_TYPO_LENGTH - 1:
                for short in deletions(word):
                    self._by_deletion[short].append(word)

    def correct(self, word: str) -> str:
        if word in self._known or len(word) < 3 or word.isdigit():
            return word
        if len(word) < MIN_TYPO_LENGTH:  # short words: only a doubled letter ("hii")
            for short in deletions(word):
                if short in self._known and short[-1:] == word[-1:]:
                    return short
            return word
        candidates: set[str] = set()
        if word in self._by_deletion:  # a letter missing: "opning"
            candidates.update(self._by_deletion[word])
        for short in deletions(word):
            if short in self._known:  # a letter too many: "opeening"
                candidates.add(short)
            candidates.update(self._by_deletion.get(short, ()))  # swapped or replaced
        if not candidates:
            return word
        return max(sorted(candidates), key=lambda c: self._known[c])


class ExampleClassifier:
    """Nearest examples and centroids in a TF-IDF space; pure Python, no download.

    ``neighbours`` is the weight of the closest example against the intent's centroid.
    """

    def __init__(self, neighbours: float = 0.4, idf_power: float = 1.5) -> None:
        self.neighbours = neighbours
        self.idf_power = idf_power
        self._idf: dict[str, float] = {}
        self._postings: dict[str, list[tuple[int, float]]] = {}
        self._labels: list[str] = []
        self._centroids: dict[str, Vector] = {}
        self._speller = Speller(Counter())
        self._unseen = 0.0

    def fit(self, examples: Sequence[tuple[str, str]]) -> None:
        vocabulary: Counter[str] = Counter()
        tokenised = []
        for text, intent in examples:
            tokens = words(text)
            vocabulary.update(tokens)
            tokenised.append((tokens, intent))
        self._speller = Speller(vocabulary)
        bags = [features(tokens) for tokens, _ in tokenised]
        document_frequency: Counter[str] = Counter()
        intents_with: dict[str, set[str]] = defaultdict(set)
        for bag, (_, intent) in zip(bags, tokenised):
            document_frequency.update(bag.keys())
            for key in bag:
                intents_with[key].add(intent)
        n = len(bags)
        m = len({intent for _, intent in tokenised})
        self._idf = {
            k: (math.log((n + 1) / (df + 1)) + 1.0) ** self.idf_power
            * (math.log((m + 1) / (len(intents_with[k]) + 1)) + 1.0) ** INTENT_POWER
            for k, df in document_frequency.items()
        }
        self._unseen = (
            (math.log(n + 1) + 1.0) ** self.idf_power * (math.log(m + 1) + 1.0) ** INTENT_POWER * UNSEEN
        )
        self._labels = [intent for _, intent in tokenised]
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        sums: dict[str, Vector] = defaultdict(dict)
        for index, bag in enumerate(bags):
            vector = self._vector(bag)
            total = sums[self._labels[index]]
            for key, value in vector.items():
                postings[key].append((index, value))
                total[key] = total.get(key, 0.0) + value
        self._postings = dict(postings)
        self._centroids = {intent: _unit(total) for intent, total in sums.items()}

    def _vector(self, bag: Vector) -> Vector:
        # A feature no example has weighs as much as the rarest: words the bot was never
        # taught lower the similarity, which is what sends out-of-scope messages to the
        # fallback.
        unseen = self._unseen
        weighted = {}
        for key, count in bag.items():
            idf = self._idf.get(key, unseen)
            weighted[key] = (1.0 + math.log(count)) * idf * WEIGHTS[key[0]]
        return _unit(weighted)

    def rank(self, text: str) -> list[tuple[str, float]]:
        tokens = [self._speller.correct(w) for w in words(text[:MAX_TEXT])]
        query = self._vector(features(tokens))
        closest: dict[str, float] = dict.fromkeys(self._centroids, 0.0)
        if query:
            similarity: dict[int, float] = defaultdict(float)
            for key, value in query.items():
                for index, weight in self._postings.get(key, ()):
                    similarity[index] += value * weight
            for index, value in similarity.items():
                label = self._labels[index]
                closest[label] = max(closest[label], value)
        scores = []
        for intent, centroid in self._centroids.items():
            centre = sum(v * centroid.get(k, 0.0) for k, v in query.items())
            score = self.neighbours * closest[intent] + (1 - self.neighbours) * centre
            scores.append((intent, math.sqrt(min(1.0, max(0.0, score)))))
        scores.sort(key=lambda pair: -pair[1])
        return scores


def predict(classifier: Classifier, text: str, threshold: float) -> Prediction:
    """The best intent when its score reaches ``threshold``, else ``intent=None``."""
    ranking = tuple(sorted(classifier.rank(text), key=lambda pair: -pair[1]))
    if not ranking:
        return Prediction(None, 0.0, ranking)
    intent, score = ranking[0]
    return Prediction(intent if score >= threshold else None, score, ranking)
