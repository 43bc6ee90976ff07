"""The model: word and character n-gram TF-IDF into a multinomial logistic regression.

Why this model: on Banking77 it reaches about 91.5 % test accuracy on the 77 intents (the
published fine-tuned BERT reaches 93.7 %) while training in seconds on two CPU cores and
answering in about a millisecond, with calibrated-enough probabilities for a confidence
display. Text normalisation (Unicode accent stripping, lower-casing) is part of the
vectorisers, so the saved pipeline normalises exactly as training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

SEED = 42
# Chosen on Banking77's training set; see benchmarks/ and the README for the measurements.
DEFAULT_PARAMS: dict[str, Any] = {
    "word_ngram_max": 2,
    "char_ngram_min": 2,
    "char_ngram_max": 5,
    "char_min_df": 2,
    "C": 30.0,
    "max_iter": 3000,
}


def build_pipeline(params: dict[str, Any] | None = None) -> Pipeline:
    """A fresh, unfitted pipeline; `params` override DEFAULT_PARAMS."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    common = {"lowercase": True, "strip_accents": "unicode", "sublinear_tf": True,
              "dtype": np.float32}
    features = FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, p["word_ngram_max"]), **common)),
        ("chars", TfidfVectorizer(analyzer="char_wb", min_df=p["char_min_df"],
                                  ngram_range=(p["char_ngram_min"], p["char_ngram_max"]),
                                  **common)),
    ])
    model = LogisticRegression(C=p["C"], max_iter=p["max_iter"], random_state=SEED)
    return Pipeline([("features", features), ("model", model)])


def slim(pipeline: Pipeline) -> Pipeline:
    """Drop the fitted vectorisers' `stop_words_` (every pruned n-gram): it is only for
    introspection and can double the artifact size."""
    for _, vectorizer in pipeline.named_steps["features"].transformer_list:
        if hasattr(vectorizer, "stop_words_"):
            del vectorizer.stop_words_
    return pipeline
