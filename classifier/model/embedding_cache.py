"""Vectors of texts already encoded, kept on disk by the sha256 of the text.

Why: encoding Banking77 takes about 15 s on two cores, the regression fit about as long; a
retrain, the readiness gate and every evaluation see the same base and holdout texts again,
so with this cache they cost little more than the fit. One file per derived encoder graph,
so vectors from another graph are never mixed in. Only batches go through it (training,
evaluation); single live messages never do, so it cannot grow with traffic.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from classifier.model.encoder import SentenceEncoder

KEY_BYTES = 16  # 128 bits of sha256: collisions are out of reach for any dataset here
# About 150 MB on disk for 384-dimensional vectors; beyond it new texts are encoded, not kept.
MAX_ROWS = 100_000


class EmbeddingCache:
    """Thread-safe; the file is replaced atomically, so concurrent processes never read half
    a file (the last writer's additions win, the others are only re-encoded later)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: dict[bytes, int] = {}
        self._vectors: np.ndarray | None = None
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.path.exists():
            with np.load(self.path) as stored:
                keys, self._vectors = stored["keys"], stored["vectors"]
            self._keys = {bytes(k): i for i, k in enumerate(keys)}

    def _save(self) -> None:
        assert self._vectors is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.part.npz")
        keys = np.frombuffer(b"".join(self._keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        np.savez(partial, keys=keys, vectors=self._vectors)
        os.replace(partial, self.path)

    def encode(self, encoder: SentenceEncoder, texts: list[str]) -> np.ndarray:
        """Vectors of `texts`, encoding only those not seen before."""
        keys = [hashlib.sha256(t.encode("utf-8")).digest()[:KEY_BYTES] for t in texts]
        with self._lock:
            self._load()
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._keys}
            fresh = encoder.encode(list(missing.values())) if missing else None
            if fresh is not None and len(self._keys) + len(missing) <= MAX_ROWS:
                start = len(self._keys)
                self._keys.update((k, start + i) for i, k in enumerate(missing))
                self._vectors = fresh if self._vectors is None else np.vstack(
                    [self._vectors, fresh])
                self._save()
            elif fresh is not None:  # full: answer from memory without keeping them
                extra = dict(zip(missing, fresh, strict=True))
                kept = self._vectors  # None only while no key is kept: then all are in extra
                return np.stack([extra[k] if kept is None or k in extra else kept[self._keys[k]]
                                 for k in keys])
            assert self._vectors is not None
            return self._vectors[[self._keys[k] for k in keys]]


_caches: dict[Path, EmbeddingCache] = {}
_caches_lock = threading.Lock()


def get_cache(path: Path) -> EmbeddingCache:
    """The process's one cache object for `path`."""
    with _caches_lock:
        return _caches.setdefault(path.resolve(), EmbeddingCache(path.resolve()))
