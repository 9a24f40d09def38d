"""A resolved target: one collection's dense vector, with the retriever and the feedback model for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rf_mcp.domain import guardrails
from rf_mcp.domain.fingerprint import DENSE_SEEDS, FingerprintParts, hybrid_seeds
from rf_mcp.domain.indexing import read_term_stats
from rf_mcp.domain.payload import DOC_ID, payload_keys, payload_text
from rf_mcp.errors import InputError
from rf_mcp.ports import (
    CollectionInfo,
    Engine,
    Filter,
    Point,
    Retriever,
    Scorer,
    SearchParams,
    SparseEncoder,
    TermStatistics,
    VectorInfo,
)


@dataclass(frozen=True)
class SparseSide:
    """The BM25 side of fusion = "sparse": the collection's sparse vector and the encoder of its queries."""

    name: str
    encoder: SparseEncoder


@dataclass(frozen=True)
class Target:
    """What one operation works on, fixed when it is resolved: nothing is patched onto it later."""

    engine: Engine
    retriever: Retriever
    scorer: Scorer
    info: CollectionInfo
    vector: VectorInfo
    text_fields: list[str]
    id_field: str = DOC_ID
    sparse: SparseSide | None = None
    filter: Filter | None = None
    hybrid_seeds: bool = False
    text_limit: int | None = None  # characters of text shown per hit (the feedback model reads the whole text)
    params: SearchParams | None = None  # the caller's engine search parameters (None: chosen per query)

    @property
    def fusion(self) -> Literal["none", "sparse"]:
        return "none" if self.sparse is None else "sparse"

    @property
    def seed_source(self) -> str:
        if self.sparse is None or not self.hybrid_seeds:
            return DENSE_SEEDS
        return hybrid_seeds(self.sparse.name, self.sparse.encoder.identity)

    @property
    def collection(self) -> str:
        return self.info.name

    @property
    def vector_name(self) -> str:
        return self.vector.name

    @property
    def distance(self) -> str:
        return self.vector.distance or "Cosine"

    @property
    def parts(self) -> FingerprintParts:
        return FingerprintParts(collection=self.collection, vector_name=self.vector_name,
                                retriever=self.retriever.identity, feedback=self.scorer.identity,
                                seed_source=self.seed_source, text_fields=tuple(self.text_fields))

    def text(self, payload: dict[str, Any] | None) -> str:
        return payload_text(payload, self.text_fields)

    def texts(self, points: Sequence[Point]) -> list[str]:
        """The documents' texts; when every one is empty, the text fields are wrong for this collection: say so."""
        out = [self.text(p.payload) for p in points]
        if points and not any(t.strip() for t in out):
            keys = sorted({k for p in points[:20] for k in payload_keys(p.payload)})
            raise InputError(
                f"The configured text fields {self.text_fields} are empty on the points of {self.collection!r} "
                f"(payload keys seen: {keys[:20] or 'none'}): the feedback model would read nothing.",
                fix="Set [collection].text_fields to the payload keys holding the document text (dotted paths are "
                    'fine, e.g. "document" or "metadata.body"), or layout = "mcp-server-qdrant" for its collections.')
        return out

    async def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Feedback scores, validated (one finite float per text)."""
        if not texts:
            return []
        return guardrails.finite_scores(await self.scorer.score(query, list(texts)), len(texts), self.scorer.identity)

    async def term_stats(self) -> TermStatistics | None:  # the stored statistics, no scan
        return await read_term_stats(self.engine, self.collection, self.text_fields)


class Meter:
    """Counts the feedback scores one operation spends (each operation has its own)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.count = 0

    async def score(self, query: str, texts: Sequence[str]) -> list[float]:
        out = await self.target.score(query, texts)
        self.count += len(texts)
        return out


async def resolve_target(engine: Engine, retriever: Retriever, scorer: Scorer, collection: str,
                         vector_name: str, text_fields: Sequence[str], *, id_field: str = DOC_ID,
                         sparse: SparseSide | None = None, sparse_required: bool = False,
                         filter: Filter | None = None, hybrid_seeds: bool = False, bind: bool = True,
                         text_limit: int | None = None, params: SearchParams | None = None) -> Target:
    """Introspect the collection and apply the vector guardrails (exists, dense, right size; sparse side sparse).
    ``bind=False``: only the target's identity is needed (no model loaded, no feedback-model statistics read)."""
    info = await engine.describe(collection)
    if bind:  # an operation that embeds: the model loads now and must fit the collection
        await retriever.load()
    vec = guardrails.dense_vector(info, vector_name, retriever.dim if bind else None)
    if info.points_count == 0:
        raise InputError(f"Collection {collection!r} has no points.", fix="Index documents into it first (rf-mcp index).")
    if sparse is not None:
        lexical = info.vector(sparse.name)
        if sparse_required or (lexical is not None and lexical.kind == "sparse"):
            guardrails.sparse_vector(info, sparse.name)
        else:  # fusion "auto" on a collection without the sparse vector: dense only
            sparse = None
    target = Target(engine, retriever, scorer, info, vec, list(text_fields), id_field, sparse, filter,
                    hybrid_seeds and sparse is not None, text_limit, params)
    if bind:
        await scorer.bind(collection, target.term_stats, info.points_count)
    return target
