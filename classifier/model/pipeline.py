"""The models: word and character n-gram TF-IDF, optionally beside a frozen sentence
embedding, into a multinomial logistic regression over fine labels (classifier.model.rollup).

Why these: on Banking77's 77 intents, TF-IDF alone reaches 91.5 % test accuracy and trains in
seconds; adding all-MiniLM-L6-v2 vectors as a feature block (`tfidf+minilm`, the default)
reaches 94.1 %, above the published fine-tuned BERT's 93.7 %, at a few milliseconds per
message on two CPU cores (benchmarks/README.md has the measurements). Text normalisation
(Unicode accent stripping, lower-casing) is part of the vectorisers, so the saved pipeline
normalises exactly as training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from classifier.model.features import SentenceEmbedding
from classifier.model.names import DEFAULT_MODEL, MODELS, check_model
from classifier.model.rollup import RollupClassifier

SEED = 42
# Chosen on Banking77's training set; see benchmarks/ and docs/MODELS.md for the measurements.
# embedding_weight 1.0 scored best of 1, 2 and 3 (94.1 / 93.9 / 93.3 % on the 77 intents).
DEFAULT_PARAMS: dict[str, Any] = {
    "model": DEFAULT_MODEL,
    "word_ngram_max": 2,
    "char_ngram_min": 2,
    "char_ngram_max": 5,
    "char_min_df": 2,
    "embedding_weight": 1.0,
    "C": 30.0,
    "max_iter": 3000,
}


def build_pipeline(params: dict[str, Any] | None = None,
                   mapping: dict[str, str] | None = None) -> Pipeline:
    """A fresh, unfitted pipeline; `params` override DEFAULT_PARAMS; `mapping` (fine label ->
    category) makes it answer in categories."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    encoder = MODELS[check_model(p["model"])]
    common = {"lowercase": True, "strip_accents": "unicode", "sublinear_tf": True,
              "dtype": np.float32}
    blocks: list[tuple[str, Any]] = [
        ("words", TfidfVectorizer(ngram_range=(1, p["word_ngram_max"]), **common)),
        ("chars", TfidfVectorizer(analyzer="char_wb", min_df=p["char_min_df"],
                                  ngram_range=(p["char_ngram_min"], p["char_ngram_max"]),
                                  **common)),
    ]
    if encoder is not None:
        blocks.append(("embedding", SentenceEmbedding(encoder, p["embedding_weight"])))
    regression = LogisticRegression(C=p["C"], max_iter=p["max_iter"], random_state=SEED)
    return Pipeline([("features", FeatureUnion(blocks)),
                     ("model", RollupClassifier(regression, mapping))])


def slim(pipeline: Pipeline) -> Pipeline:
    """Drop the fitted vectorisers' `stop_words_` (every pruned n-gram): it is only for
    introspection and can double the artifact size."""
    for _, vectorizer in pipeline.named_steps["features"].transformer_list:
        if hasattr(vectorizer, "stop_words_"):
            del vectorizer.stop_words_
    return pipeline
