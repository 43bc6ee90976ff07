"""The project's live model as an MLflow pyfunc model, for `bench_serving.py`'s MLflow peer.

MLflow's "models from code": `mlflow.pyfunc.save_model(python_model=<this file>)` copies it
into the saved model, and `mlflow models serve` runs it there. Needs MLflow
(benchmarks/requirements-serving.txt), never the app. The project's packages reach it as the
saved model's `code_paths`, and it loads the same skops artifact with the same
`classifier.model.artifacts.load_model` as the app: the model is identical, only the server differs.

The type hints on `predict` make MLflow pass the request's `{"inputs": [...]}` list through
as it is (no pandas DataFrame), its leanest JSON path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel, PythonModelContext


class TriageModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        from benchmarks.bench_api import answer
        from classifier.model.artifacts import load_model

        meta = json.loads(Path(context.artifacts["meta"]).read_text())
        data = Path(context.artifacts["model"]).read_bytes()
        self._pipeline = load_model(data, expected_sha256=meta["sha256"],
                                    name=f"version {meta['version']}")
        self._classes = [str(c) for c in self._pipeline.classes_]
        self._answer = answer

    def predict(self, model_input: list[str], params: dict[str, Any] | None = None,
                ) -> list[dict[str, Any]]:
        return [self._answer(self._pipeline, self._classes, text) for text in model_input]


mlflow.models.set_model(TriageModel())
