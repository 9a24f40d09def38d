"""A resolved target: one collection's dense vector, with the retriever and the feedback model for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rf_mcp.domain import guardrails
from rf_mcp.domain.fingerprint import FingerprintParts
from rf_mcp.domain.payload import payload_text
from rf_mcp.errors import InputError
from rf_mcp.ports import CollectionInfo, Engine, Retriever, Scorer, VectorInfo


@dataclass
class Target:
    engine: Engine
    retriever: Retriever
    scorer: Scorer
    info: CollectionInfo
    vector: VectorInfo
    text_fields: list[str]
    scored: int = field(default=0)

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
                                retriever=self.retriever.identity, feedback=self.scorer.identity)

    def text(self, payload: dict[str, Any] | None) -> str:
        return payload_text(payload, self.text_fields)

    async def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Feedback scores, validated (one finite float per text); counts what it cost."""
        if not texts:
            return []
        raw = await self.scorer.score(query, list(texts))
        self.scored += len(texts)
        return guardrails.finite_scores(raw, len(texts), self.scorer.identity)

    async def corpus_texts(self) -> list[str]:
        out: list[str] = []
        offset = None
        while True:
            page, offset = await self.engine.scroll(self.collection, offset=offset, limit=1024)
            out.extend(self.text(p.payload) for p in page)
            if offset is None:
                return out


async def resolve_target(engine: Engine, retriever: Retriever, scorer: Scorer, collection: str,
                         vector_name: str, text_fields: Sequence[str]) -> Target:
    """Introspect the collection and apply the vector guardrails (exists, dense, right size)."""
    info = await engine.describe(collection)
    await retriever.load()
    vec = guardrails.dense_vector(info, vector_name, retriever.dim)
    if info.points_count == 0:
        raise InputError(f"Collection {collection!r} has no points.", fix="Index documents into it first (rf-mcp index).")
    target = Target(engine, retriever, scorer, info, vec, list(text_fields))
    await scorer.bind(collection, target.corpus_texts)
    return target
