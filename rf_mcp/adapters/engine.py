"""Qdrant engine adapter: one sync ``QdrantClient`` (embedded folder or server), async methods.

Every blocking call runs in a worker thread (``anyio.to_thread``) behind one lock, so a server
stays responsive and the embedded engine (not thread-safe) sees one call at a time. The training
library needs a sync client: :attr:`QdrantEngine.sync_client` gives it the same locked client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import numpy as np
from pydantic import BaseModel
from qdrant_client import QdrantClient, models

from rf_mcp.config import DEFAULT_LOCAL_PATH, QdrantSettings
from rf_mcp.errors import EngineError, InputError

T = TypeVar("T")
PointId = int | str


class VectorInfo(BaseModel):
    name: str  # "" for the unnamed default vector
    kind: Literal["dense", "sparse", "multi"]
    dim: int | None = None
    distance: str | None = None


class CollectionInfo(BaseModel):
    name: str
    points_count: int
    vectors: list[VectorInfo]

    def vector(self, name: str) -> VectorInfo | None:
        return next((v for v in self.vectors if v.name == name), None)


class _LockedClient:
    """Forwards every method call of a QdrantClient under one lock (thread-safe facade)."""

    def __init__(self, client: QdrantClient, lock: threading.RLock) -> None:
        self._client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return locked


def similarity(distance: str, u: np.ndarray, v: np.ndarray) -> float:
    """The score Qdrant reports for query ``u`` against stored ``v``.

    Computed as the engine does: the stored vector in float32 (unit-normalised for cosine),
    the query in float64.
    """
    q = np.asarray(u, dtype=np.float64)
    s = np.asarray(v, dtype=np.float32)
    if distance == "Cosine":
        ns = np.linalg.norm(s)
        s = s / (ns if ns else np.float32(1e-12))
        nq = np.linalg.norm(q)
        return float(np.dot(s, q / (nq if nq else 1e-12)))
    if distance == "Dot":
        return float(np.dot(s, q))
    if distance == "Euclid":
        return float(np.linalg.norm(s - q))
    if distance == "Manhattan":
        return float(np.sum(np.abs(s - q)))
    raise ValueError(f"unknown distance {distance}")


def _using(vector_name: str) -> str | None:
    return vector_name or None


class QdrantEngine:
    """Async facade over one Qdrant client."""

    def __init__(self, settings: QdrantSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._client: QdrantClient | None = None

    # -- connection -------------------------------------------------------------------------
    @property
    def location(self) -> str:
        return self.settings.location

    def _connect(self) -> QdrantClient:
        with self._lock:
            if self._client is None:
                s = self.settings
                try:
                    if s.url:
                        key = s.api_key.get_secret_value() if s.api_key else None
                        self._client = QdrantClient(url=s.url, api_key=key, timeout=max(1, int(s.timeout)))
                    elif s.path == ":memory:":  # nothing persisted (benchmarks, experiments)
                        self._client = QdrantClient(location=":memory:")
                    else:
                        path = Path(s.path or DEFAULT_LOCAL_PATH)
                        path.mkdir(parents=True, exist_ok=True)
                        self._client = QdrantClient(path=str(path))
                except RuntimeError as exc:  # the embedded folder is locked by another process
                    raise EngineError(
                        f"Cannot open the embedded Qdrant folder {s.path or DEFAULT_LOCAL_PATH}: {exc}",
                        fix="Stop the other rf-mcp process using it, or run a Qdrant server and set QDRANT_URL.",
                    ) from None
            return self._client

    @property
    def sync_client(self) -> Any:
        """A thread-safe sync client for libraries that need a ``QdrantClient``."""
        return _LockedClient(self._connect(), self._lock)

    def _call_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        client = self._connect()
        with self._lock:
            try:
                return fn(client, *args, **kwargs)
            except (InputError, EngineError):
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to one clear error type
                raise self._map_error(exc) from None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(client, *args, **kwargs)`` in a worker thread."""
        return await anyio.to_thread.run_sync(partial(self._call_sync, fn, *args, **kwargs))

    def _map_error(self, exc: Exception) -> EngineError:
        text = str(exc) or type(exc).__name__
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        if key:
            text = text.replace(key, "***")
        if self.settings.url and any(
            k in type(exc).__name__ for k in ("ResponseHandling", "Connect", "Timeout", "RpcError")
        ):
            return EngineError(
                f"Qdrant at {self.location} did not answer: {text}",
                fix="Check that the server runs and QDRANT_URL / QDRANT_API_KEY are right.",
            )
        return EngineError(f"Qdrant refused the request: {text}", fix="Check the collection and arguments.")

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await anyio.to_thread.run_sync(client.close)

    # -- collections --------------------------------------------------------------------------
    async def list_collections(self) -> list[str]:
        res = await self.run(lambda c: c.get_collections())
        return sorted(col.name for col in res.collections)

    async def exists(self, collection: str) -> bool:
        return await self.run(lambda c: c.collection_exists(collection))

    async def describe(self, collection: str) -> CollectionInfo:
        """Introspect a collection: its vectors (named or default, dense or sparse) and size."""

        def _describe(c: QdrantClient) -> CollectionInfo:
            if not c.collection_exists(collection):
                names = [col.name for col in c.get_collections().collections]
                raise InputError(
                    f"Collection {collection!r} does not exist (existing: {names or 'none'}).",
                    fix="Create it with `rf-mcp index`, or name an existing collection.",
                )
            info = c.get_collection(collection)
            params = info.config.params
            vectors: list[VectorInfo] = []
            raw = params.vectors
            items = {"": raw}.items() if isinstance(raw, models.VectorParams) else (raw or {}).items()
            for name, vp in items:
                kind = "multi" if vp.multivector_config is not None else "dense"
                vectors.append(VectorInfo(name=name, kind=kind, dim=vp.size, distance=vp.distance.value))
            for name in (params.sparse_vectors or {}):
                vectors.append(VectorInfo(name=name, kind="sparse"))
            count = info.points_count
            if count is None:
                count = c.count(collection, exact=True).count
            return CollectionInfo(name=collection, points_count=count, vectors=vectors)

        return await self.run(_describe)

    async def create_collection(self, collection: str, vector_name: str, dim: int, distance: str = "Cosine",
                                sparse: Sequence[str] = ()) -> None:
        params = models.VectorParams(size=dim, distance=models.Distance(distance))
        vectors: Any = {vector_name: params} if vector_name else params
        sparse_cfg = {name: models.SparseVectorParams() for name in sparse} or None
        await self.run(lambda c: c.create_collection(collection, vectors_config=vectors,
                                                     sparse_vectors_config=sparse_cfg))

    async def upsert(self, collection: str, vector_name: str, ids: Sequence[PointId],
                     vectors: Sequence[Sequence[float]], payloads: Sequence[dict[str, Any]]) -> None:
        points = [
            models.PointStruct(id=i, vector={vector_name: list(map(float, v))} if vector_name else list(map(float, v)),
                               payload=p)
            for i, v, p in zip(ids, vectors, payloads, strict=True)
        ]
        await self.run(lambda c: c.upsert(collection, points=points, wait=True))

    async def count(self, collection: str) -> int:
        return await self.run(lambda c: c.count(collection, exact=True).count)

    # -- search ---------------------------------------------------------------------------------
    async def nearest(self, collection: str, vector_name: str, vector: Sequence[float], limit: int,
                      *, with_vectors: bool = False, exclude: Sequence[PointId] = ()) -> list[models.ScoredPoint]:
        flt = models.Filter(must_not=[models.HasIdCondition(has_id=list(exclude))]) if exclude else None
        res = await self.run(lambda c: c.query_points(
            collection, query=list(map(float, vector)), using=_using(vector_name), limit=limit,
            with_payload=True, with_vectors=with_vectors, query_filter=flt))
        return res.points

    async def relevance_feedback(self, collection: str, vector_name: str, target: Sequence[float],
                                 feedback: Sequence[tuple[PointId | Sequence[float], float]],
                                 weights: tuple[float, float, float], limit: int,
                                 *, exclude: Sequence[PointId] = ()) -> list[models.ScoredPoint]:
        """Qdrant's RelevanceFeedbackQuery with the naive strategy and the given a, b, c."""
        a, b, c_ = weights
        query = models.RelevanceFeedbackQuery(relevance_feedback=models.RelevanceFeedbackInput(
            target=list(map(float, target)),
            feedback=[models.FeedbackItem(example=ex if isinstance(ex, (int, str)) else list(map(float, ex)),
                                          score=float(s)) for ex, s in feedback],
            strategy=models.NaiveFeedbackStrategy(naive=models.NaiveFeedbackStrategyParams(a=a, b=b, c=c_)),
        ))
        flt = models.Filter(must_not=[models.HasIdCondition(has_id=list(exclude))]) if exclude else None
        res = await self.run(lambda c: c.query_points(
            collection, query=query, using=_using(vector_name), limit=limit, with_payload=True,
            query_filter=flt))
        return res.points

    async def retrieve(self, collection: str, ids: Sequence[PointId], *, with_vectors: bool = False) -> list[models.Record]:
        return await self.run(lambda c: c.retrieve(collection, ids=list(ids), with_payload=True, with_vectors=with_vectors))

    async def scroll_payloads(self, collection: str, batch: int = 512) -> list[dict[str, Any]]:
        """Every point's payload (used to build lexical statistics)."""

        def _scroll(c: QdrantClient) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            offset = None
            while True:
                points, offset = c.scroll(collection, limit=batch, offset=offset, with_payload=True, with_vectors=False)
                out.extend(p.payload or {} for p in points)
                if offset is None:
                    return out

        return await self.run(_scroll)

    async def optimize(self, collection: str) -> bool:
        """Index building is the engine's own business here (a server builds HNSW by itself)."""
        return False

    async def indexed_vectors(self, collection: str) -> int:
        info = await self.run(lambda c: c.get_collection(collection))
        return int(info.indexed_vectors_count or 0)

    async def scroll_points(self, collection: str, vector_name: str, offset: Any = None,
                            batch: int = 256) -> tuple[list[tuple[PointId, list[float], dict[str, Any]]], Any]:
        """One page of (id, vector, payload) and the next offset (None at the end)."""

        def page(c: QdrantClient) -> tuple[list[tuple[PointId, list[float], dict[str, Any]]], Any]:
            points, nxt = c.scroll(collection, limit=batch, offset=offset, with_payload=True,
                                   with_vectors=[vector_name] if vector_name else True)
            out = [(p.id, list(p.vector[vector_name] if vector_name else p.vector), p.payload or {}) for p in points]
            return out, nxt

        return await self.run(page)

    # -- metadata ------------------------------------------------------------------------------
    async def get_metadata(self, collection: str) -> dict[str, Any]:
        info = await self.run(lambda c: c.get_collection(collection))
        return dict(info.config.metadata or {})

    async def set_metadata(self, collection: str, entries: dict[str, Any]) -> None:
        """Merge top-level keys into the collection metadata (a key set to None is removed)."""
        await self.run(lambda c: c.update_collection(collection, metadata=entries))


def open_engine(settings: QdrantSettings) -> Any:
    """The engine for ``[qdrant]``: a Qdrant server (url), qdrant-client's embedded mode, or qdrant-edge."""
    if settings.backend == "edge" or (settings.backend == "auto" and not settings.url):  # edge: the embedded default
        from rf_mcp.adapters.edge_engine import EdgeEngine

        return EdgeEngine(settings)
    return QdrantEngine(settings)
