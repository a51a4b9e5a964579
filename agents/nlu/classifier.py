"""The intent classifier: word and character n-gram TF-IDF, a linear SVM, sigmoid-calibrated probabilities.

The field's standard baseline for short texts (Rasa's default pipeline is the
same idea): two ``TfidfVectorizer`` (word 1–2-grams, character 2–5-grams
inside word boundaries, sublinear tf), concatenated, feeding a ``LinearSVC``
wrapped in ``CalibratedClassifierCV(method="sigmoid", cv=3, ensemble=False)``
so each intent gets a probability (Platt scaling, fitted on held-out folds).

It is trained at process start from :data:`TRAINING_DATA` (examples per intent,
written for this repository) plus the tenant's FAQ questions and keywords
(and the tenant's own ``nlu_examples`` when its config has them); training
takes about 0.1 s, so no model file is ever written or loaded. One classifier
is kept per distinct tenant training set (:func:`classifier_for`).

Scoring one message through scikit-learn's ``predict_proba`` costs about
2 ms of per-call validation and sparse-matrix overhead, more than the whole
NLU budget. :meth:`IntentClassifier.rank` therefore evaluates the *same*
fitted model directly: the vectorizers' own analyzers, vocabularies and idf
weights, the SVM's coefficients and the calibrators' ``a_``/``b_``; the unit
tests check it against ``predict_proba``.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml

from agents.nlu.models import INTENTS
from state.tenant_config import TenantConfig

TRAINING_DATA: Final = Path(__file__).with_name("intents.yaml")
"""The repository's labelled examples (``intents: {intent: [text, …]}``)."""

CLASSIFIER_INTENTS: Final[tuple[str, ...]] = tuple(i for i in INTENTS if i != "unclear")
"""Intents the classifier is trained on (``unclear`` is a threshold, not a class)."""

WORD_NGRAMS: Final = (1, 2)
CHAR_NGRAMS: Final = (2, 5)
"""Character n-gram lengths (``char_wb``: inside word boundaries), the typo- and accent-tolerant features."""
SVM_C: Final = 0.5
"""Regularisation of the linear SVM (smaller: smoother, less sure)."""
CALIBRATION_FOLDS: Final = 3
CACHE_SIZE: Final = 32
"""Most distinct tenant classifiers kept in a process."""

_DIGITS = re.compile(r"\d")
_SPACES = re.compile(r"\s+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})


class TrainingDataError(ValueError):
    """The labelled examples are malformed (not a mapping of intent to a list of strings, or an unknown intent)."""


def preprocess(text: str) -> str:
    """Return ``text`` as the vectorizers see it: NFKC, case-folded, accents stripped, digits as ``0``.

    ``"¿Cuánto cuesta 500k?"`` gives ``"¿cuanto cuesta 000k?"``: Spanish typed
    without accents matches, and numbers generalise by shape.
    """
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SPACES.sub(" ", _DIGITS.sub("0", text)).strip()


def _as_is(text: str) -> str:
    """The vectorizers' preprocessor: texts reach them already :func:`preprocess`-ed."""
    return text


@lru_cache(maxsize=4)
def load_examples(path: Path = TRAINING_DATA) -> tuple[tuple[str, str], ...]:
    """Return the labelled examples of ``path`` as ``(text, intent)`` pairs, in file order.

    Raises:
        TrainingDataError: the file is not ``{intents: {intent: [str, …]}}``,
            names an intent outside :data:`CLASSIFIER_INTENTS`, or an intent has
            fewer than :data:`CALIBRATION_FOLDS` examples.
    """
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    intents = doc.get("intents") if isinstance(doc, dict) else None
    if not isinstance(intents, dict):
        raise TrainingDataError(f"{path}: expected a mapping with 'intents'")
    pairs: list[tuple[str, str]] = []
    for intent, texts in intents.items():
        if intent not in CLASSIFIER_INTENTS:
            raise TrainingDataError(f"{path}: unknown intent {intent!r}")
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise TrainingDataError(f"{path}: intents.{intent} must be a list of non-empty strings (quote yes/no/numbers)")
        if len(texts) < CALIBRATION_FOLDS:
            raise TrainingDataError(f"{path}: intents.{intent} needs at least {CALIBRATION_FOLDS} examples")
        pairs.extend((t, intent) for t in texts)
    return tuple(pairs)


def tenant_examples(tenant: TenantConfig) -> tuple[tuple[str, str], ...]:
    """Return the tenant's own training examples as ``(text, intent)`` pairs.

    Each FAQ entry (the tenant's ``faq`` and, when the config has
    ``translations``, each language's ``faq``) gives its question and one
    example of its keywords joined with spaces, labelled ``faq``. A tenant
    config with ``nlu_examples`` (``{intent: [text, …]}``) adds those.
    """
    pairs: list[tuple[str, str]] = []
    entries = list(tenant.faq)
    for pack in (getattr(tenant, "translations", None) or {}).values():
        entries.extend(getattr(pack, "faq", None) or ())
    for entry in entries:
        pairs.append((entry.question, "faq"))
        if entry.keywords:
            pairs.append((" ".join(entry.keywords), "faq"))
    for intent, texts in (getattr(tenant, "nlu_examples", None) or {}).items():
        if intent in CLASSIFIER_INTENTS:
            pairs.extend((t, intent) for t in texts if isinstance(t, str) and t.strip())
    return tuple(pairs)


class IntentClassifier:
    """A trained intent classifier (see the module docstring).

    Args:
        examples: ``(text, intent)`` pairs; every intent needs at least
            :data:`CALIBRATION_FOLDS` examples.

    Attributes:
        classes: the intents it can return, in the model's order.
        pipeline: the fitted scikit-learn objects (``word``, ``char``,
            ``model``), for :meth:`sklearn_proba`.
    """

    def __init__(self, examples: Sequence[tuple[str, str]]) -> None:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        texts = [preprocess(t) for t, _ in examples]  # once per text, not once per vectorizer
        labels = [i for _, i in examples]
        word = TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, sublinear_tf=True, preprocessor=_as_is,
                               token_pattern=r"(?u)\b\w+\b")  # fmt: skip
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, preprocessor=_as_is)
        from scipy.sparse import hstack

        features = hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()
        model = CalibratedClassifierCV(
            LinearSVC(C=SVM_C, class_weight="balanced"), method="sigmoid", cv=CALIBRATION_FOLDS, ensemble=False
        ).fit(features, labels)
        self.pipeline: dict[str, Any] = {"word": word, "char": char, "model": model}
        self.classes: tuple[str, ...] = tuple(str(c) for c in model.classes_)
        calibrated = model.calibrated_classifiers_[0]
        svm = calibrated.estimator
        order = [self.classes.index(str(c)) for c in svm.classes_]
        self._coef = np.asarray(svm.coef_, dtype=np.float64)  # (classes, features)
        self._intercept = np.asarray(svm.intercept_, dtype=np.float64)
        self._order = np.asarray(order)
        self._a = np.array([c.a_ for c in calibrated.calibrators], dtype=np.float64)
        self._b = np.array([c.b_ for c in calibrated.calibrators], dtype=np.float64)
        self._parts = []
        offset = 0
        for vectorizer in (word, char):
            vocabulary = vectorizer.vocabulary_
            idf = [float(v) for v in vectorizer.idf_]  # Python floats: numpy scalars are slow one at a time
            self._parts.append((vectorizer.build_analyzer(), vocabulary, idf, offset))
            offset += len(vocabulary)

    def _features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(column indices, values)`` of ``text``'s TF-IDF row, as the fitted vectorizers compute it."""
        columns: list[int] = []
        values: list[float] = []
        text = preprocess(text)
        for analyzer, vocabulary, idf, offset in self._parts:
            counts: dict[int, int] = {}
            for gram in analyzer(text):
                index = vocabulary.get(gram)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            if not counts:
                continue
            part = [(1.0 + math.log(n)) * idf[i] for i, n in counts.items()]  # sublinear tf × idf
            norm = math.sqrt(sum(v * v for v in part))
            columns.extend(offset + i for i in counts)
            values.extend(v / norm for v in part)
        return np.asarray(columns, dtype=np.intp), np.asarray(values, dtype=np.float64)

    def proba(self, text: str) -> np.ndarray:
        """Return the calibrated probability of each of :attr:`classes` for ``text`` (sums to 1)."""
        columns, values = self._features(text)
        decision = self._coef[:, columns] @ values + self._intercept if len(columns) else self._intercept.copy()
        calibrated = 1.0 / (1.0 + np.exp(self._a * decision + self._b))  # expit(-(a·d + b))
        proba = np.zeros(len(self.classes))
        proba[self._order] = calibrated
        total = proba.sum()
        return proba / total if total > 0 else np.full(len(self.classes), 1.0 / len(self.classes))

    def rank(self, text: str, top: int = 4) -> tuple[tuple[str, float], ...]:
        """Return the ``top`` intents for ``text`` with their probabilities (0–1), best first."""
        proba = self.proba(text)
        best = np.argsort(-proba, kind="stable")[:top]
        return tuple((self.classes[i], float(proba[i])) for i in best)

    def sklearn_proba(self, text: str) -> np.ndarray:
        """Return scikit-learn's own ``predict_proba`` for ``text`` (the reference :meth:`proba` must equal)."""
        from scipy.sparse import hstack

        word, char, model = self.pipeline["word"], self.pipeline["char"], self.pipeline["model"]
        text = preprocess(text)
        row = hstack([word.transform([text]), char.transform([text])]).tocsr()
        return model.predict_proba(row)[0]


_cache: OrderedDict[str, IntentClassifier] = OrderedDict()
_cache_lock = threading.Lock()
_by_config: dict[int, tuple[weakref.ref, IntentClassifier]] = {}
"""``id(config) -> (weak reference to it, classifier)``: a config object's classifier, found without hashing."""


def training_set(tenant: TenantConfig | None) -> tuple[tuple[str, str], ...]:
    """Return the full training set for ``tenant``: the repository's examples plus :func:`tenant_examples`."""
    base = load_examples()
    return base + tenant_examples(tenant) if tenant is not None else base


def fingerprint(examples: Iterable[tuple[str, str]]) -> str:
    """Return the SHA-256 hex of a training set (the cache key: equal sets share one classifier)."""
    digest = hashlib.sha256()
    for text, intent in examples:
        digest.update(f"{intent}\x1f{text}\x1e".encode())
    return digest.hexdigest()


def classifier_for(tenant: TenantConfig | None) -> IntentClassifier:
    """Return the classifier trained for ``tenant``'s training set, training it on first use.

    Classifiers are cached per :func:`fingerprint` of the training set (at most
    :data:`CACHE_SIZE`, least recently used dropped), so a tenant config that
    changes its FAQ gets a new one and an unchanged config never retrains.
    The same config *object* is recognised without hashing its FAQ again
    (config objects are not changed in place; a changed config is a new object).
    Thread-safe; training holds a lock (about 0.1 s).
    """
    if tenant is not None:
        known = _by_config.get(id(tenant))
        if known is not None and known[0]() is tenant:
            return known[1]
    own = tenant_examples(tenant) if tenant is not None else ()
    key = fingerprint(own)  # the repository's examples are fixed for the process
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
    if found is not None:
        _remember(tenant, found)
        return found
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            return found
        classifier = IntentClassifier(load_examples() + own)
        _cache[key] = classifier
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    _remember(tenant, classifier)
    return classifier


def _remember(tenant: TenantConfig | None, classifier: IntentClassifier) -> None:
    """Map this very config object to its classifier (skips hashing its FAQ on the next turns of the same object)."""
    if tenant is None:
        return
    if len(_by_config) >= CACHE_SIZE * 4:
        _by_config.clear()
    _by_config[id(tenant)] = (weakref.ref(tenant), classifier)
