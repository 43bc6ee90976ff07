"""The sentence-embedding feature block: frozen encoder vectors beside the TF-IDF features.

The fitted block stores only the encoder's name, package version and hashes (so artifacts
stay small and skops-safe); the weights are loaded from the installed package on first use
and must match what the model was trained with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from classifier.model.embedding_cache import get_cache
from classifier.model.encoder import EncoderError, SentenceEncoder, get_encoder
from feedback.settings import load_settings

# Below this many texts a call is a live request: encode directly, never touch the cache.
CACHE_MIN_TEXTS = 32


_data_dir: ContextVar[Path | None] = ContextVar("encoder_data_dir", default=None)


def encoder_folder() -> Path:
    """Derived encoder files and cached vectors live in DATA_DIR, beside the database: the
    one `using_data_dir` set for this context (training, gate, retrain), else the
    environment's (serving)."""
    return (_data_dir.get() or load_settings().data_dir) / "encoders"


@contextmanager
def using_data_dir(data_dir: Path) -> Iterator[None]:
    """Keep the encoder's files in `data_dir` for the code run inside (one thread)."""
    token = _data_dir.set(data_dir)
    try:
        yield
    finally:
        _data_dir.reset(token)


class SentenceEmbedding(TransformerMixin, BaseEstimator):
    """Texts to `weight` x unit-length sentence vectors of encoder `encoder`."""

    def __init__(self, encoder: str = "minilm", weight: float = 1.0) -> None:
        self.encoder = encoder
        self.weight = weight

    def _encoder(self) -> SentenceEncoder:
        return get_encoder(self.encoder, encoder_folder)

    def fit(self, texts: Any, y: Any = None) -> SentenceEmbedding:
        self.encoder_identity_ = self._encoder().identity()
        return self

    def transform(self, texts: Any) -> np.ndarray:
        encoder = self._encoder()
        trained = getattr(self, "encoder_identity_", None)
        if trained is None:
            raise EncoderError("The embedding block is not fitted.")
        if trained["derived_sha256"] != encoder.spec.derived_sha256:
            raise EncoderError(
                f"This model was trained with encoder graph {trained['derived_sha256'][:12]}… "
                f"but this install derives {encoder.spec.derived_sha256[:12]}…; install the "
                "pinned requirements.txt or retrain.")
        texts = list(texts)
        if len(texts) >= CACHE_MIN_TEXTS:
            name = f"{encoder.spec.name}-{encoder.spec.derived_sha256[:12]}-vectors.npz"
            vectors = get_cache(encoder_folder() / name).encode(encoder, texts)
        else:
            vectors = encoder.encode(texts)
        return vectors * np.float32(self.weight)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"{self.encoder}_{i}" for i in range(self._encoder().spec.dimension)])
