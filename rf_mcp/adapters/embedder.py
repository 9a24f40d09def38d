"""The retriever on fastembed: embeds queries and documents into the collection's dense vector space."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import anyio
import numpy as np

from rf_mcp.adapters import fastembed_models
from rf_mcp.config import RetrieverSettings
from rf_mcp.ports import Retriever


class FastembedRetriever(Retriever):
    """A fastembed ``TextEmbedding``, loaded on first use, with a small query cache."""

    def __init__(self, settings: RetrieverSettings, cache_size: int = 2048) -> None:
        self.settings = settings
        self._model: Any = None
        self._identity: str | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from fastembed import TextEmbedding

                self._model = fastembed_models.load(TextEmbedding, self.settings, "retriever", embedding=True,
                                                    normalize=self.settings.normalize)
            return self._model

    async def load(self) -> None:
        if self._model is None:  # no worker-thread hop once loaded (this runs on every search)
            await anyio.to_thread.run_sync(self._load)

    @property
    def identity(self) -> str:
        """The model's name (and the digest of a local model file): known without loading the model."""
        if self._identity is None:
            local = fastembed_models.local_model(self.settings, "retriever")
            self._identity = fastembed_models.identity(self.settings, local)
        return self._identity

    @property
    def dim(self) -> int:
        return int(self._load().embedding_size)

    def _embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        model = self._load()
        return np.asarray(list(model.embed(list(texts), batch_size=batch_size)), dtype=np.float32)

    def _embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        model = self._load()
        vec = np.asarray(next(iter(model.query_embed([text]))), dtype=np.float32)
        with self._lock:
            self._cache[text] = vec
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vec

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return await anyio.to_thread.run_sync(self._embed_documents, texts)

    async def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            hit = self._cache.get(text)
        if hit is not None:  # cached: no worker-thread hop
            return hit
        return await anyio.to_thread.run_sync(self._embed_query, text)
