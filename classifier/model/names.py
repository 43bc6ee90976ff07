"""The models a version can be trained as, by name: light enough for the registry, the CLI's
argument parser and the dashboards, which must not import scikit-learn to read a name."""

from __future__ import annotations

from typing import Any

from feedback.errors import InvalidInputError

# Model name -> the sentence encoder it adds to the TF-IDF features (None: TF-IDF alone).
MODELS: dict[str, str | None] = {"tfidf": None, "tfidf+minilm": "minilm"}
DEFAULT_MODEL = "tfidf+minilm"
# Versions registered before models had names were all TF-IDF.
LEGACY_MODEL = "tfidf"


def check_model(name: str) -> str:
    """`name` if it is a known model; raises InvalidInputError naming the choices."""
    if name not in MODELS:
        raise InvalidInputError(f"Unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    return name


def model_name(params: dict[str, Any]) -> str:
    """The model a version was trained as (versions from before the choice were TF-IDF)."""
    return str(params.get("model", LEGACY_MODEL))
