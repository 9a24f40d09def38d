"""The engine port: a Qdrant engine (``ClientEngine``: qdrant-client, embedded or a server; ``EdgeEngine``: qdrant-edge;
``MemoryEngine``: the in-memory double; ``ProcessEngine``: any of them in a child process). The congruence tests
hold them to the same results."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from rf_mcp.ports.queries import CollectionInfo, CollectionSpec, Filter, Point, PointId, PointInput, QueryRequest


# -- the engine port ----------------------------------------------------------------------------------------
class Engine(ABC):
    """A Qdrant engine. Every method is async; blocking engines run their calls in worker threads.

    Errors: a missing collection is an ``InputError`` naming the existing ones; anything the engine rejects is an
    ``EngineError`` (never a raw exception of the underlying library).
    """

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the data lives, safe to show (no credentials)."""

    @abstractmethod
    async def list_collections(self) -> list[str]: ...

    @abstractmethod
    async def exists(self, collection: str) -> bool: ...

    @abstractmethod
    async def describe(self, collection: str) -> CollectionInfo: ...

    @abstractmethod
    async def create_collection(self, collection: str, spec: CollectionSpec) -> None:
        """Create a collection; refuses (``InputError``) if it, or data under its name, already exists."""

    @abstractmethod
    async def add_sparse_vector(self, collection: str, name: str) -> None:
        """Declare a BM25 sparse vector (IDF modifier) on an existing collection, keeping its points (they have none
        until ``update_vectors`` gives them one). A sparse vector of that name already there: nothing to do; a dense
        one: ``InputError``."""

    @abstractmethod
    async def upsert(self, collection: str, points: Sequence[PointInput]) -> None: ...

    @abstractmethod
    async def update_vectors(self, collection: str, points: Sequence[PointInput]) -> None:
        """Add or replace the given named vectors of existing points (their payload is kept)."""

    @abstractmethod
    async def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        """Delete the points with these ids (ids that do not exist are ignored)."""

    @abstractmethod
    async def count(self, collection: str) -> int: ...

    @abstractmethod
    async def query(self, collection: str, request: QueryRequest) -> list[Point]: ...

    @abstractmethod
    async def retrieve(self, collection: str, ids: Sequence[PointId], *, with_vector: str | None = None) -> list[Point]:
        """The points with these ids that exist (in no particular order)."""

    @abstractmethod
    async def scroll(self, collection: str, *, offset: PointId | None = None, limit: int = 256,
                     with_vector: str | None = None, filter: Filter | None = None) -> tuple[list[Point], PointId | None]:
        """One page of points (matching ``filter``) and the offset of the next page (None at the end)."""

    @abstractmethod
    async def create_payload_index(self, collection: str, key: str,
                                   schema: Literal["keyword", "integer", "float", "bool"]) -> None: ...

    @abstractmethod
    async def optimize(self, collection: str) -> bool:
        """Build the HNSW index now, where the engine leaves that to the caller (False: nothing to do)."""

    @abstractmethod
    async def get_metadata(self, collection: str) -> dict[str, Any]: ...

    @abstractmethod
    async def set_metadata(self, collection: str, entries: dict[str, Any]) -> None:
        """Merge top-level keys into the collection's metadata; a key set to None is removed."""

    @abstractmethod
    async def close(self) -> None: ...


