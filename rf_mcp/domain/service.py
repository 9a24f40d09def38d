"""``RFService``: the product's Python API. The CLI and the MCP tools are thin layers over it.

    async with RFService(load_config("config.toml")) as rf:
        await rf.index("docs", "corpus.jsonl")
        await rf.calibrate("docs", queries)
        result = await rf.search_precision("docs", "my question")
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rf_mcp.adapters.embedder import Embedder
from rf_mcp.adapters.engine import PointId, QdrantEngine, open_engine
from rf_mcp.adapters.rf_library import Progress
from rf_mcp.adapters.scorers import Scorer, build_scorer
from rf_mcp.config import Config, QdrantSettings
from rf_mcp.domain import calibration, evaluation, guardrails, indexing, migration, search
from rf_mcp.domain.context import Target, resolve_target
from rf_mcp.domain.datasets import Query, load_vectors
from rf_mcp.domain.models import (
    VANILLA,
    CalibrationProfile,
    CalibrationReport,
    EvaluationReport,
    IndexReport,
    ProfileRef,
    ProfileSummary,
    SearchResult,
    TrainSettings,
)
from rf_mcp.domain.migration import MigrationReport
from rf_mcp.domain.profiles import ProfileStore
from rf_mcp.errors import InputError


class RFService:
    def __init__(self, config: Config, *, engine: QdrantEngine | None = None, embedder: Embedder | None = None,
                 scorer: Scorer | None = None) -> None:
        self.config = config
        self.engine = engine or open_engine(config.qdrant)
        self.embedder = embedder or Embedder(config.retriever)
        self._scorer = scorer
        self.profiles = ProfileStore(self.engine)

    async def __aenter__(self) -> RFService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.engine.close()

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = build_scorer(self.config.feedback)
        return self._scorer

    def _vector_name(self, vector_name: str | None) -> str:
        return self.config.collection.vector_name if vector_name is None else vector_name

    async def target(self, collection: str, vector_name: str | None = None) -> Target:
        return await resolve_target(self.engine, self.embedder, self.scorer, collection,
                                    self._vector_name(vector_name), self.config.collection.text_fields)

    # -- operations ----------------------------------------------------------------------------
    async def index(self, collection: str, path: str | Path, *, vector_name: str | None = None,
                    vectors_path: str | Path | None = None, progress: Progress | None = None,
                    build_index: bool = False) -> IndexReport:
        c = self.config.collection
        vectors = None if vectors_path is None else load_vectors(vectors_path)
        report = await indexing.index_file(self.engine, self.embedder, collection, self._vector_name(vector_name),
                                           path, id_field=c.id_field, text_fields=c.text_fields, vectors=vectors,
                                           progress=progress)
        if build_index and report.points_count >= self.config.qdrant.hnsw_threshold:
            if progress is not None:
                await progress(0.0, 1.0, f"building the HNSW index of {report.points_count} points")
            await self.engine.optimize(collection)
        report.indexed_vectors = await self.engine.indexed_vectors(collection)
        return report

    async def calibrate(self, collection: str, queries: Sequence[str], settings: TrainSettings | None = None, *,
                        vector_name: str | None = None, progress: Progress | None = None,
                        max_feedback_scores: int | None = None) -> CalibrationReport:
        target = await self.target(collection, vector_name)
        return await calibration.calibrate(target, queries, settings or TrainSettings(), self.profiles, progress,
                                           max_feedback_scores)

    async def current_profile(self, target: Target) -> CalibrationProfile:
        profile = await self.profiles.get(target.collection, target.parts.fingerprint)
        if profile is None:
            await self.profiles.resolve(target.parts)  # raises the precise refusal
        assert profile is not None
        return profile

    async def evaluate(self, collection: str, queries: Sequence[Query], *, qrels: dict[str, dict[str, int]] | None = None,
                       at_n: int = 10, eval_context_limit: int = 3, vector_name: str | None = None,
                       progress: Progress | None = None) -> EvaluationReport:
        target = await self.target(collection, vector_name)
        profile = await self.current_profile(target)
        s = self.config.search
        return await evaluation.evaluate(target, profile, queries, self.profiles, qrels=qrels, at_n=at_n,
                                         eval_context_limit=eval_context_limit, seeds=s.seeds, budget=s.recall_budget,
                                         progress=progress)

    async def _search_profile(self, target: Target, vanilla: bool) -> tuple[ProfileRef, list[str]]:
        if vanilla:
            return ProfileRef(fingerprint="vanilla", weights=VANILLA, created_at="-", vanilla_mode=True), [
                "Vanilla mode (a=1, b=0, c=0): plain vector search through the RF API, no feedback used."]
        profile = await self.profiles.resolve(target.parts)
        warnings = []
        drift = guardrails.drift_warning(profile.points_count, target.info.points_count,
                                         self.config.search.drift_warning)
        if drift:
            warnings.append(drift)
        if profile.evaluation is None:
            warnings.append("This calibration has not been evaluated: run evaluate on held-out queries.")
        elif profile.evaluation.verdict == "unverified":
            warnings.append("This calibration was evaluated without relevance judgments: gains are unverified.")
        return ProfileRef(fingerprint=profile.fingerprint, weights=profile.weights,
                          created_at=profile.created_at), warnings

    async def search_precision(self, collection: str, query: str, *, limit: int | None = None,
                               seeds: int | None = None, vanilla: bool = False,
                               vector_name: str | None = None) -> SearchResult:
        target = await self.target(collection, vector_name)
        ref, warnings = await self._search_profile(target, vanilla)
        s = self.config.search
        result = await search.precision(target, query, ref.weights, ref, seeds=seeds or s.seeds,
                                        limit=limit or s.limit, score_seeds=not vanilla)
        result.warnings = warnings + result.warnings
        return result

    async def search_recall(self, collection: str, query: str, *, budget: int | None = None, limit: int | None = None,
                            seeds: int | None = None, seed_ids: Sequence[PointId] | None = None,
                            vector_name: str | None = None) -> SearchResult:
        target = await self.target(collection, vector_name)
        ref, warnings = await self._search_profile(target, vanilla=False)
        s = self.config.search
        result = await search.recall(target, query, ref.weights, ref, seeds=seeds or s.seeds,
                                     budget=budget or s.recall_budget, limit=limit, seed_ids=seed_ids)
        result.warnings = warnings + result.warnings
        return result

    # -- planning, for feedback models graded out of band (the MCP client's LLM) -----------------
    async def _planned(self, collection: str, vector_name: str | None) -> tuple[Target, ProfileRef]:
        """The target and profile a search would use; refuses first if the search would be refused."""
        target = await self.target(collection, vector_name)
        ref, _ = await self._search_profile(target, vanilla=False)
        return target, ref

    async def plan_precision(self, collection: str, query: str, *, seeds: int | None = None,
                             vector_name: str | None = None) -> list[str]:
        """The seed texts a precision search will score."""
        target, _ = await self._planned(collection, vector_name)
        return await search.precision_seed_texts(target, query, seeds or self.config.search.seeds)

    async def plan_recall_seeds(self, collection: str, query: str, *, seeds: int | None = None,
                                seed_ids: Sequence[PointId] | None = None, vector_name: str | None = None) -> list[str]:
        target, _ = await self._planned(collection, vector_name)
        return await search.recall_seed_texts(target, query, seeds or self.config.search.seeds, seed_ids)

    async def plan_recall_new(self, collection: str, query: str, *, seeds: int | None = None, budget: int | None = None,
                              seed_ids: Sequence[PointId] | None = None, vector_name: str | None = None) -> list[str]:
        target, ref = await self._planned(collection, vector_name)
        s = self.config.search
        return await search.recall_new_texts(target, query, ref.weights, seeds or s.seeds, budget or s.recall_budget,
                                             seed_ids)

    async def list_profiles(self, collection: str | None = None) -> list[ProfileSummary]:
        names = [collection] if collection else await self.engine.list_collections()
        out: list[ProfileSummary] = []
        for name in names:
            if not await self.engine.exists(name):
                raise InputError(f"Collection {name!r} does not exist.", fix="List collections without a name first.")
            configured = None
            try:
                configured = (await self.target(name)).parts
            except Exception:  # noqa: BLE001 - a collection this config cannot search still lists its profiles
                configured = None
            out.extend(await self.profiles.list(name, configured))
        return out

    async def optimize(self, collection: str) -> IndexReport:
        """Build the engine's HNSW index now (edge; a server does this by itself)."""
        t0 = time.perf_counter()
        info = await self.engine.describe(collection)
        await self.engine.optimize(collection)
        return IndexReport(collection=collection, vector_name=self._vector_name(None), documents=0, created=False,
                           points_count=info.points_count, seconds=round(time.perf_counter() - t0, 3),
                           indexed_vectors=await self.engine.indexed_vectors(collection))

    async def migrate(self, collection: str, to: QdrantSettings, *, vector_name: str | None = None,
                      progress: Progress | None = None) -> MigrationReport:
        """Copy a collection and its calibration profiles to another Qdrant (a server URL or another folder)."""
        target = open_engine(to)
        try:
            return await migration.migrate(self.engine, target, collection, self._vector_name(vector_name),
                                           progress=progress)
        finally:
            await target.close()

    async def rollback(self, collection: str, vector_name: str | None = None) -> CalibrationProfile:
        target = await self.target(collection, vector_name)
        return await self.profiles.rollback(collection, target.parts.fingerprint)
