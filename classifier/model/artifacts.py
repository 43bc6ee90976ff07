"""Model files: skops bytes (no pickle, so loading a file cannot run code), with sha256.

Loading refuses bytes whose sha256 does not match the registry and any object type outside
a short allowlist, so a tampered or foreign file is rejected before it can serve.
"""

from __future__ import annotations

import hashlib
import zipfile

import skops.io as sio
from sklearn.pipeline import Pipeline

from feedback.errors import SupportTriageError

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


def dump_model(pipeline: Pipeline) -> bytes:
    """Serialise a fitted pipeline to compressed skops bytes."""
    return sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)


def load_model(data: bytes, *, expected_sha256: str, name: str = "model") -> Pipeline:
    """Check the hash, then the contained types, then load.

    Raises ArtifactError naming `name` when any check fails.
    """
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
    return model
