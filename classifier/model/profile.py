"""Reference profile of a model version, and the per-message signals compared against it.

Computed at training time from the training texts and the holdout predictions, stored with
the version; the same `message_signals` run on every live request, so drift compares like
with like. All signals are cheap: no second model, no embeddings.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)
# Character-length bucket edges (upper bounds); the last bucket is open-ended. Chosen around
# support messages: a few words, a sentence, a paragraph, an e-mail body.
LENGTH_EDGES = (20, 40, 60, 80, 120, 160, 240, 400, 800)
CONFIDENCE_EDGES = tuple(round(x, 2) for x in np.linspace(0.1, 0.9, 9))
# Words seen at least this often in training make up the reference vocabulary.
MIN_VOCAB_COUNT = 2
MAX_VOCAB = 20_000


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def length_bucket(chars: int) -> int:
    return next((i for i, edge in enumerate(LENGTH_EDGES) if chars < edge), len(LENGTH_EDGES))


def message_signals(text: str, vocabulary: frozenset[str]) -> dict[str, float]:
    """Share of out-of-vocabulary words, of non-letter characters, and of ASCII letters."""
    words = tokens(text)
    letters = [ch for ch in text if ch.isalpha()]
    visible = [ch for ch in text if not ch.isspace()]
    return {
        "oov_share": (sum(w not in vocabulary for w in words) / len(words)) if words else 1.0,
        "nonletter_share": (1 - len(letters) / len(visible)) if visible else 0.0,
        "ascii_share": (sum(ch.isascii() for ch in letters) / len(letters)) if letters else 0.0,
    }


def _shares(counts: Counter[Any], keys: list[Any]) -> list[float]:
    total = sum(counts.values()) or 1
    return [counts.get(k, 0) / total for k in keys]


def build_profile(train_texts: list[str], holdout_texts: list[str], predicted: list[str],
                  confidences: list[float], labels: list[str],
                  low_confidence: float) -> dict[str, Any]:
    """The reference a live window is compared with (JSON-serialisable)."""
    counts = Counter(w for t in train_texts for w in tokens(t))
    vocab = dict(sorted(((w, n) for w, n in counts.items() if n >= MIN_VOCAB_COUNT),
                        key=lambda kv: -kv[1])[:MAX_VOCAB])
    vocabulary = frozenset(vocab)
    signals = [message_signals(t, vocabulary) for t in holdout_texts]
    conf = np.asarray(confidences)
    conf_bins = Counter(int(np.searchsorted(CONFIDENCE_EDGES, c, side="right")) for c in conf)
    return {
        "n_messages": len(holdout_texts),
        "length_edges": list(LENGTH_EDGES),
        "length_shares": _shares(Counter(length_bucket(len(t)) for t in holdout_texts),
                                 list(range(len(LENGTH_EDGES) + 1))),
        "vocabulary": vocab,
        "vocabulary_total": int(sum(vocab.values())),
        "oov_share": float(np.mean([s["oov_share"] for s in signals])),
        "nonletter_share": float(np.mean([s["nonletter_share"] for s in signals])),
        "ascii_share": float(np.mean([s["ascii_share"] for s in signals])),
        "label_shares": dict(zip(labels, _shares(Counter(predicted), labels), strict=True)),
        "confidence_edges": list(CONFIDENCE_EDGES),
        "confidence_shares": _shares(conf_bins, list(range(len(CONFIDENCE_EDGES) + 1))),
        "mean_confidence": float(conf.mean()),
        "low_confidence_share": float((conf < low_confidence).mean()),
        "low_confidence_threshold": low_confidence,
    }
