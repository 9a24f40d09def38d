"""fastembed feedback models: cross-encoder (logits), dense (cosine) or late interaction (max-sim)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import anyio
import numpy as np

from rf_mcp.adapters import fastembed_models
from rf_mcp.config import FastembedFeedback
from rf_mcp.errors import ConfigError, ModelError
from rf_mcp.ports import Scorer


def _classes() -> dict[str, Any]:
    from fastembed import LateInteractionTextEmbedding, TextEmbedding
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    return {"cross-encoder": TextCrossEncoder, "late-interaction": LateInteractionTextEmbedding,
            "dense": TextEmbedding}


def detect_kind(settings: FastembedFeedback) -> str:
    """The configured kind, else the kind fastembed lists the name under, else the ONNX outputs."""
    if settings.kind != "auto":
        return settings.kind
    for kind, cls in _classes().items():
        if settings.model.lower() in fastembed_models.known_models(cls):
            return kind
    if settings.model_path:
        local = fastembed_models.local_model(settings, "feedback")
        assert local is not None
        try:
            import onnxruntime as ort

            outputs = [o.name for o in ort.InferenceSession(str(local.folder / local.file)).get_outputs()]
        except Exception as exc:
            raise ModelError(f"[feedback] model file {local.file} in {local.folder} cannot be read by onnxruntime: {exc}",
                             fix="Re-export the ONNX model, or point model_path at a valid folder.") from None
        if "logits" in outputs:
            return "cross-encoder"
    raise ConfigError(
        f"Cannot tell what kind of model [feedback].model {settings.model!r} is.",
        fix='Set [feedback].kind to "cross-encoder", "dense" or "late-interaction".',
    )


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    unit: np.ndarray = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
    return unit


class FastembedScorer(Scorer):
    def __init__(self, settings: FastembedFeedback) -> None:
        self.settings = settings
        self.kind = detect_kind(settings)
        local = fastembed_models.local_model(settings, "feedback")
        self.identity = f"fastembed-{self.kind}:{fastembed_models.identity(settings, local)}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                cls = _classes()[self.kind]
                self._model = fastembed_models.load(cls, self.settings, "feedback", embedding=self.kind != "cross-encoder")
            return self._model

    def score_sync(self, query: str, documents: Sequence[str]) -> list[float]:
        model = self._load()
        docs = list(documents)
        if not docs:
            return []
        if self.kind == "cross-encoder":
            return [float(s) for s in model.rerank(query, docs)]
        q = np.asarray(next(iter(model.query_embed([query]))), dtype=np.float32)
        embs = [np.asarray(e, dtype=np.float32) for e in model.embed(docs)]
        if self.kind == "dense":
            qn = _unit(q)
            return [float(np.dot(qn, _unit(e))) for e in embs]
        qn = _unit(q)  # late interaction: sum over query tokens of the best document token
        return [float((qn @ _unit(e).T).max(axis=1).sum()) for e in embs]

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return await anyio.to_thread.run_sync(self.score_sync, query, documents)
