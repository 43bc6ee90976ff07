"""Model files: skops bytes (no pickle, so loading a file cannot run code), with sha256.

Loading refuses bytes whose sha256 does not match the registry and any object type outside
a short allowlist, so a tampered or foreign file is rejected before it can serve.

The vectorisers' vocabularies (tens of thousands of n-grams) are stored as one array of
terms each, in index order, instead of a dict: skops writes a dict entry by entry into its
JSON schema, which made saving a Banking77 model take seconds and loading it (every start,
gate, canary and rollback) several more. Loading turns the array back into the dict;
files written before this still load as they are.

skops and scikit-learn are imported by the functions that write and read files, not with
this module: the registry only hashes, and `python -m classifier users ...` or `models` should
not spend seconds importing them.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from feedback.errors import SupportTriageError

if TYPE_CHECKING:  # skops and scikit-learn load when a file is written or read (see below)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline

# Types skops does not trust by default but our pipeline is allowed to contain: our own two
# steps, which hold only labels, numbers and the encoder's name and hashes (never weights).
EXTRA_TRUSTED_TYPES: frozenset[str] = frozenset({
    "classifier.model.features.SentenceEmbedding",
    "classifier.model.rollup.RollupClassifier",
})


class ArtifactError(SupportTriageError):
    """A model file is corrupt, tampered with, or not a model of ours."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _vectorizers(model: Any) -> Iterator[TfidfVectorizer]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline

    steps = model.steps if isinstance(model, Pipeline) else []
    for _, step in steps:
        if isinstance(step, FeatureUnion):
            for _, block in step.transformer_list:
                if isinstance(block, TfidfVectorizer):
                    yield block


@contextmanager
def _vocabularies_as_arrays(pipeline: Pipeline) -> Iterator[None]:
    """While saving: each fitted vocabulary as an array of its terms in index order."""
    saved = []
    for vectorizer in _vectorizers(pipeline):
        vocabulary = getattr(vectorizer, "vocabulary_", None)
        if isinstance(vocabulary, dict):
            terms = np.empty(len(vocabulary), dtype=object)
            for term, index in vocabulary.items():
                terms[index] = term
            saved.append((vectorizer, vocabulary))
            vectorizer.vocabulary_ = terms.astype(str)
    try:
        yield
    finally:
        for vectorizer, vocabulary in saved:
            vectorizer.vocabulary_ = vocabulary


def _vocabularies_as_dicts(pipeline: Pipeline) -> None:
    for vectorizer in _vectorizers(pipeline):
        terms = getattr(vectorizer, "vocabulary_", None)
        if isinstance(terms, np.ndarray):
            vectorizer.vocabulary_ = {str(term): i for i, term in enumerate(terms.tolist())}


def dump_model(pipeline: Pipeline) -> bytes:
    """Serialise a fitted pipeline to compressed skops bytes (the pipeline is unchanged
    afterwards; it must not be predicting in another thread meanwhile)."""
    import skops.io as sio

    with _vocabularies_as_arrays(pipeline):
        return sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)


def load_model(data: bytes, *, expected_sha256: str, name: str = "model") -> Pipeline:
    """Check the hash, then the contained types, then load.

    Raises ArtifactError naming `name` when any check fails.
    """
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    actual = sha256_of(data)
    if actual != expected_sha256:
        raise ArtifactError(
            f"{name}: artifact sha256 {actual[:12]}... does not match the registered "
            f"{expected_sha256[:12]}...; the stored bytes were changed. Retrain or restore it."
        )
    try:
        untrusted = set(sio.get_untrusted_types(data=data)) - EXTRA_TRUSTED_TYPES
        if untrusted:
            raise ArtifactError(
                f"{name}: artifact contains types that are not allowed: {sorted(untrusted)}"
            )
        model = sio.loads(data, trusted=sorted(EXTRA_TRUSTED_TYPES) or None)
    except ArtifactError:
        raise
    except Exception as exc:  # skops raises many types for a broken zip or schema
        raise ArtifactError(
            f"{name}: artifact cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(model, Pipeline) or not hasattr(model, "predict_proba"):
        raise ArtifactError(f"{name}: artifact is a {type(model).__name__}, not a classifier")
    _vocabularies_as_dicts(model)
    return model
