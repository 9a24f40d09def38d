"""``RFService``: the product's Python API. The CLI and the MCP tools are thin layers over it, one method per tool.

    async with open_service(load_config("config.toml")) as rf:
        await rf.index("docs", "corpus.jsonl")
        await rf.calibrate("docs", queries)
        result = await rf.search_precision("docs", "my question")

Each operation takes one request model (:mod:`rf_mcp.domain.requests`); the keyword methods build it from their
arguments, so every surface validates the same fields with the same bounds and messages. The adapters (engine,
retriever, feedback model, sparse encoder, trainer) are ports, passed in by the composition root
(:func:`rf_mcp.bootstrap.open_service`); the ones that load models are asked of ``adapters`` when first needed.
``files`` says which server-side files operations may read (any, for the caller's own use; the data roots, for a
server), and ``read_only`` refuses every operation that would change stored state.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Protocol

from rf_mcp.config import Config, QdrantSettings
from rf_mcp.domain import calibration, evaluation, guardrails, indexing, migration, search
from rf_mcp.domain.context import SparseSide, Target, resolve_target
from rf_mcp.domain.datasets import Query, load_vectors, read_qrels, select_queries
from rf_mcp.domain.files import UNRESTRICTED, PathPolicy
from rf_mcp.domain.migration import MigrationReport
from rf_mcp.domain.models import (
    VANILLA,
    CalibrationProfile,
    CalibrationReport,
    CollectionOverview,
    CollectionsOverview,
    DocumentsReport,
    EvaluationReport,
    IndexReport,
    ProfileRef,
    ProfileSummary,
    SearchResult,
    TrainSettings,
)
from rf_mcp.domain.payload import set_path
from rf_mcp.domain.profiles import ProfileStore
from rf_mcp.domain.querylog import QueryLog
from rf_mcp.domain.requests import (
    AddDocumentsRequest,
    CalibrateRequest,
    CollectionsRequest,
    DeleteDocumentsRequest,
    Document,
    EvaluateRequest,
    IndexRequest,
    PrecisionRequest,
    RecallRequest,
    RollbackRequest,
    parse,
    train_settings,
    with_defaults,
)
from rf_mcp.domain.search import GradeRequest, Plan
from rf_mcp.errors import GuardrailError, InputError, ModelError, RFError
from rf_mcp.ports import (
    Engine,
    Filter,
    Progress,
    Retriever,
    Scorer,
    SearchParams,
    SparseEncoder,
    Trainer,
)


class Adapters(Protocol):
    """What the domain asks the composition root for when first needed (building these loads models)."""

    def scorer(self) -> Scorer: ...

    def trainer(self) -> Trainer: ...

    def sparse_encoder(self) -> SparseEncoder: ...

    def engine(self, settings: QdrantSettings) -> Engine: ...


class RFService:
    def __init__(self, config: Config, *, engine: Engine, retriever: Retriever, adapters: Adapters,
                 scorer: Scorer | None = None, trainer: Trainer | None = None,
                 sparse_encoder: SparseEncoder | None = None, files: PathPolicy = UNRESTRICTED,
                 read_only: bool = False) -> None:
        self.config = config
        self.engine = engine
        self.retriever = retriever
        self.adapters = adapters
        self._scorer = scorer
        self._trainer = trainer
        self._sparse_encoder = sparse_encoder
        self.files = files
        self.read_only = read_only
        self.profiles = ProfileStore(self.engine)
        self.query_log = QueryLog(self.engine, enabled=config.server.query_log and not read_only,
                                  size=config.server.query_log_size)

    async def __aenter__(self) -> RFService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self.query_log.flush()
            if self._scorer is not None:
                await self._scorer.aclose()
            await self.retriever.aclose()
        finally:
            await self.engine.close()

    # -- adapters built on first use --------------------------------------------------------------------------
    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = self.adapters.scorer()
        return self._scorer

    @property
    def grades_through_client(self) -> bool:
        """Whether the feedback model is the MCP client's own LLM (sampling), known without building the scorer (so
        listing the tools loads no model runtime)."""
        if self._scorer is not None:
            return self._scorer.out_of_band
        return self.config.feedback.grades_through_client

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            self._trainer = self.adapters.trainer()
        return self._trainer

    @property
    def sparse_encoder(self) -> SparseEncoder:
        if self._sparse_encoder is None:
            self._sparse_encoder = self.adapters.sparse_encoder()
        return self._sparse_encoder

    # -- shared checks ------------------------------------------------------------------------------------------
    def _writable(self, what: str) -> None:
        if self.read_only:
            raise GuardrailError(f"This server is read-only: {what} would change stored data.",
                                 fix="Use a server started without --read-only (or RF_MCP_READ_ONLY) for this.")

    def _collection(self, collection: str | None) -> str:
        name = collection or self.config.collection.default_collection
        if not name:
            raise InputError("No collection given, and no default collection is configured.",
                             fix="Name the collection, or set COLLECTION_NAME ([collection].default_collection).")
        return name

    @staticmethod
    def _new_collection_name(name: str) -> str:
        """A name this product creates: letters, digits, "-" and "_" (no spaces, control or look-alike characters:
        names become folder names and are shown to people), starting with a letter or digit, at most 255 bytes."""
        if not re.fullmatch(r"[^\W_][\w-]*", name) or len(name.encode()) > 255:
            raise InputError(f"{name[:80]!r} is not a name rf-mcp creates collections under.",
                             fix="Use letters, digits, '-' and '_', starting with a letter or digit, at most 255 bytes.")
        return name

    def _vector_name(self, vector_name: str | None) -> str:
        return self.config.collection.vector_name if vector_name is None else vector_name

    def _check_filter(self, flt: Filter | None) -> Filter | None:
        allowed = self.config.collection.filterable_fields
        if flt is not None and allowed:
            for key in sorted(flt.keys()):
                if key not in allowed:
                    raise InputError(f"The filter uses the payload key {key!r}, which is not filterable here.",
                                     fix=f"Filter on one of {sorted(allowed)} ([collection].filterable_fields).")
            for cond in flt.field_conditions():
                problem = guardrails.filter_value_problem(cond, allowed[cond.key])
                if problem:
                    raise InputError(f"The filter's condition on {cond.key!r} {problem}: it would match nothing.",
                                     fix=f"{cond.key!r} is declared {allowed[cond.key]!r} in [collection]."
                                         "filterable_fields: give values of that type.")
        return None if flt is None or flt.is_empty() else flt

    def _feedback_ceiling(self, what: str, estimate: int, detail: str, asked: int | None = None) -> int:
        """The feedback scores one call may cost (``[server] max_feedback_scores``, lowered by the caller's own
        ``max_feedback_scores``); refuses, before any work, a call whose estimate is over it."""
        ceiling = self.config.server.max_feedback_scores
        cap = ceiling if asked is None else min(asked, ceiling)
        if estimate > cap:
            whose = ("your max_feedback_scores" if cap < ceiling else
                     "this server's ceiling ([server] max_feedback_scores)")
            raise InputError(f"{what} would cost about {estimate} feedback-model scores ({detail}), over {whose} of "
                             f"{cap}. Nothing was run.",
                             fix="Use fewer queries or a lower limit (or raise the cap: a call's max_feedback_scores "
                                 "can only lower the server's ceiling).")
        return cap

    async def target(self, collection: str | None, vector_name: str | None = None, *, fusion: str | None = None,
                     filter: Filter | None = None, exact: bool | None = None, hnsw_ef: int | None = None,
                     bind: bool = True) -> Target:
        """The collection, its vectors and models for one operation; ``fusion`` None means the configured one."""
        mode = fusion or self.config.search.fusion
        name = self.config.collection.sparse_vector
        sparse = None
        if mode == "sparse" and not name:
            raise InputError('fusion = "sparse" needs a BM25 sparse vector, and [collection].sparse_vector is empty.',
                             fix='Set [collection].sparse_vector (default "bm25"), or use fusion = "none".')
        if mode != "none" and name:
            sparse = SparseSide(name, self.sparse_encoder)
        c = self.config.collection
        params = self._search_params(exact, hnsw_ef)
        collection = self._collection(collection)
        if params is not None and params.exact:
            await self._check_exact(collection)
        return await resolve_target(self.engine, self.retriever, self.scorer, collection,
                                    self._vector_name(vector_name), c.text_fields, id_field=c.id_field, sparse=sparse,
                                    sparse_required=mode == "sparse", filter=self._check_filter(filter),
                                    hybrid_seeds=self.config.search.fusion_seeds == "hybrid", bind=bind,
                                    text_limit=self.config.search.max_text_chars, params=params)

    async def _check_exact(self, collection: str) -> None:
        """Exact search scans every point: refused above ``[search] max_exact_points``."""
        limit = self.config.search.max_exact_points
        if not await self.engine.exists(collection):
            return  # resolving the target says so
        if (n := (await self.engine.describe(collection)).points_count) > limit:
            raise InputError(f"Exact search on {collection!r} would scan all {n} points, over this server's "
                             f"[search] max_exact_points of {limit}.",
                             fix="Search without exact (the HNSW breadth is chosen for you), or pass hnsw_ef.")

    def _search_params(self, exact: bool | None, hnsw_ef: int | None) -> SearchParams | None:
        """The caller's engine search parameters, else the configured ones, else None (chosen per query)."""
        s = self.config.search
        exact = s.exact if exact is None else exact
        hnsw_ef = s.hnsw_ef if hnsw_ef is None else hnsw_ef
        if hnsw_ef is not None and hnsw_ef > s.max_hnsw_ef:
            raise InputError(f"hnsw_ef={hnsw_ef} is over this server's maximum search breadth, [search] max_hnsw_ef "
                             f"= {s.max_hnsw_ef}.", fix=f"Pass hnsw_ef of at most {s.max_hnsw_ef}, or omit it (chosen "
                                                      "from the collection and the feedback).")
        if exact:
            return SearchParams(exact=True)
        return SearchParams(hnsw_ef=hnsw_ef) if hnsw_ef is not None else None

    # -- operations: one request model each ------------------------------------------------------------------
    async def overview(self, collection: str | None = None) -> CollectionsOverview:
        """Collections with their vectors, sizes and calibration profiles (the ``list_collections`` tool).

        A collection that cannot be read is reported in ``errors``; the others are still listed."""
        r = parse(CollectionsRequest, {"collection": collection})
        names = [r.collection] if r.collection else await self.engine.list_collections()
        overviews, errors = [], []
        for name in names:
            if not await self.engine.exists(name):
                raise InputError(f"Collection {name!r} does not exist.", fix="List collections without a name first.")
            try:
                overviews.append(CollectionOverview(info=await self.engine.describe(name),
                                                    profiles=await self.list_profiles(name)))
            except RFError as exc:
                if r.collection:
                    raise
                errors.append(f"{name}: {exc.problem}")
        notes = [] if overviews or errors else ["No collections yet: create one with the index tool or `rf-mcp index`."]
        return CollectionsOverview(qdrant=self.engine.location, collections=overviews,
                                   configured_retriever=self.config.retriever.model,
                                   configured_feedback=self.scorer.identity, notes=notes, errors=errors)

    async def index(self, collection: str | None = None, path: str | Path | None = None, *,
                    progress: Progress | None = None, **fields: Any) -> IndexReport:
        """Embed and upsert a JSONL corpus (with BM25 sparse vectors), or only (re)write the sparse vectors."""
        return await self.run_index(parse(IndexRequest, {"collection": collection, "input_path": _path(path),
                                                         **_paths(fields)}), progress)

    async def run_index(self, r: IndexRequest, progress: Progress | None = None) -> IndexReport:
        self._writable("indexing")
        name = self._collection(r.collection)
        c = self.config.collection
        sparse_name = c.sparse_vector or None
        if r.sparse_only:  # adds the sparse vector if missing (any collection); "": only the term statistics
            return await indexing.backfill_sparse(self.engine, name, c.text_fields, sparse_name, self.sparse_encoder,
                                                  progress=progress)
        if r.input_path is None:
            raise InputError("No corpus file given.", fix="Pass the JSONL corpus to index (or sparse_only=true).")
        if not await self.engine.exists(name):  # existing collections keep the names other tools gave them
            self._new_collection_name(name)
        else:
            await self._owned(name, r.allow_foreign, "indexing would add points and vectors to",
                              " To add only BM25 vectors for hybrid search, use sparse_only.")
        corpus = self.files.open(r.input_path, "corpus")
        vectors = None if r.vectors_path is None else load_vectors(r.vectors_path, files=self.files)
        report = await indexing.index_file(
            self.engine, self.retriever, name, self._vector_name(r.vector_name), corpus,
            input_id_field=c.input_id_field, id_field=c.id_field, text_fields=c.text_fields, vectors=vectors,
            progress=progress, sparse=(sparse_name, self.sparse_encoder) if sparse_name else None,
            filterable=c.filterable_fields, terms=self.sparse_encoder)
        threshold = self.config.qdrant.hnsw_threshold
        if r.build_index and report.points_count >= threshold:
            if progress is not None:
                await progress(0.0, 1.0, f"building the HNSW index of {report.points_count} points")
            await self.engine.optimize(name)
        report.indexed_vectors = (await self.engine.describe(name)).indexed_vectors
        if not r.build_index and report.points_count >= threshold and (report.indexed_vectors or 0) < report.points_count:
            report.notes.append(
                f"{report.points_count - (report.indexed_vectors or 0)} points are not in an HNSW index yet: they are "
                f"searched exactly, slower as the collection grows. On the embedded edge engine, build the index with "
                f"`rf-mcp optimize -c {name}` (the collection is busy while it builds); a Qdrant server builds it by "
                "itself.")
        return report

    async def _owned(self, name: str, allow_foreign: bool, what: str, more: str = "") -> None:
        """An existing collection this operation may write into: one rf-mcp created, or any when told so
        (``allow_foreign``); refuses another tool's, naming what the write would do."""
        if not allow_foreign and indexing.CREATED_BY_KEY not in await self.engine.get_metadata(name):
            raise GuardrailError(
                f"Collection {name!r} was not created by rf-mcp (it has no {indexing.CREATED_BY_KEY} mark): {what} "
                "another tool's collection. Nothing was written.",
                fix="Use a collection rf-mcp created; or, if writing into this one is intended, pass "
                    f"allow_foreign=true (--allow-foreign).{more}")

    async def add_documents(self, collection: str | None, documents: Sequence[Document | dict[str, Any]],
                            **fields: Any) -> DocumentsReport:
        """Embed and add (or replace, by id) up to 100 documents given inline: ``{"id", "text", "title"?,
        "metadata"?}`` each (mcp-server-qdrant's qdrant-store shape, plus the document's id)."""
        listed = [d.model_dump() if isinstance(d, Document) else d for d in documents]
        return await self.run_add_documents(parse(AddDocumentsRequest, {"collection": collection, "documents": listed,
                                                                        **fields}))

    def _document_payload(self, d: Document) -> dict[str, Any]:
        """A document's payload: its metadata under "metadata", the text at the last configured text field, the
        title at the first (or "title" with a single text field), and the id at the id field."""
        c = self.config.collection
        payload: dict[str, Any] = {}
        if d.metadata is not None:
            payload["metadata"] = dict(d.metadata)
        set_path(payload, c.text_fields[-1], d.text)
        if d.title:
            set_path(payload, c.text_fields[0] if len(c.text_fields) > 1 else "title", d.title)
        set_path(payload, c.id_field, d.id)
        return payload

    async def run_add_documents(self, r: AddDocumentsRequest) -> DocumentsReport:
        self._writable("adding documents")
        name = self._collection(r.collection)
        c = self.config.collection
        vector_name = self._vector_name(None)
        sparse_name = c.sparse_vector or None
        exists = await self.engine.exists(name)
        if not exists:
            self._new_collection_name(name)
        else:
            await self._owned(name, r.allow_foreign, "adding documents would write into")
        if exists and sparse_name and (await self.engine.describe(name)).vector(sparse_name) is None:
            sparse_name = None  # the collection has no BM25 vector: it is not added behind its owner's back
        loaded = [(d.id, self._document_payload(d)) for d in r.documents]
        point_ids = None
        if exists:  # a document indexed before keeps its point (another tool's ids are not rf-mcp's)
            found = await search.points_by_doc_id(self.engine, name, c.id_field, [d.id for d in r.documents])
            point_ids = [found.get(doc_id, indexing.point_id(doc_id)) for doc_id, _ in loaded]
        report = await indexing.write_documents(
            self.engine, self.retriever, name, vector_name, loaded, text_fields=c.text_fields,
            sparse=(sparse_name, self.sparse_encoder) if sparse_name else None, filterable=c.filterable_fields,
            terms=self.sparse_encoder, point_ids=point_ids)
        ids = point_ids or [indexing.point_id(doc_id) for doc_id, _ in loaded]
        notes = report.notes + ([] if report.sparse_vector else [
            f"No BM25 sparse vector written: {name!r} has none (hybrid search and sparse fusion do not see these "
            "documents' words)."] if c.sparse_vector else [])
        return DocumentsReport(collection=name, documents=len(loaded), point_ids=ids, created=report.created,
                               points_count=report.points_count, notes=notes,
                               warnings=await self._drift(name, report.points_count))

    async def delete_documents(self, collection: str | None, ids: Sequence[int | str], **fields: Any
                               ) -> DocumentsReport:
        """Delete up to 100 documents, each named by its point id or its doc_id (ids that match nothing are
        reported, not refused)."""
        return await self.run_delete_documents(parse(DeleteDocumentsRequest, {"collection": collection,
                                                                              "ids": list(ids), **fields}))

    async def run_delete_documents(self, r: DeleteDocumentsRequest) -> DocumentsReport:
        self._writable("deleting documents")
        name = self._collection(r.collection)
        if not await self.engine.exists(name):
            raise InputError(f"Collection {name!r} does not exist.", fix="List collections to see their names.")
        await self._owned(name, r.allow_foreign, "deleting documents would remove points from")
        c = self.config.collection
        found, missing = await search.locate(self.engine, name, c.id_field, r.ids, what="Document id")
        gone, notes = await indexing.delete_points(self.engine, name, list(dict.fromkeys(found)),
                                                   text_fields=c.text_fields, terms=self.sparse_encoder)
        points_count = await self.engine.count(name)
        return DocumentsReport(collection=name, documents=len(gone), point_ids=gone,
                               not_found=missing, points_count=points_count, notes=notes,
                               warnings=await self._drift(name, points_count))

    async def _drift(self, collection: str, points_count: int) -> list[str]:
        """A warning per calibration of ``collection`` fit when it held a point count that differs from
        ``points_count`` by more than ``[search] drift_warning``."""
        out = []
        for s in await self.profiles.summaries(collection):
            if s.profile is not None and (warning := guardrails.drift_warning(
                    s.profile.points_count, points_count, self.config.search.drift_warning)):
                out.append(f"Calibration {s.profile.fingerprint}: {warning} (warned past a change of "
                           f"{self.config.search.drift_warning:.0%}, [search] drift_warning)")
        return out

    async def _queries(self, collection: str, queries: Sequence[Query] | None, path: str | None,
                       max_queries: int | None, ids: Sequence[str] | None, from_log: Literal["train", "test"] | None
                       ) -> list[Query]:
        if from_log is not None:
            out = [Query(text=q) for q in await self.query_log.queries(collection, from_log)]
        elif queries is not None:
            out = list(queries)
        else:
            assert path is not None  # the request model requires exactly one source
            return select_queries(path, ids=None if ids is None else set(ids), limit=max_queries, files=self.files)
        return out[:max_queries] if max_queries else out

    async def calibrate(self, collection: str | None = None, queries: Sequence[str] | None = None,
                        settings: TrainSettings | None = None, *, progress: Progress | None = None,
                        **fields: Any) -> CalibrationReport:
        """Fit the formula weights on ``queries`` (inline), the queries of a file (``query_ids`` selects some), or
        the calibration side of the query log, with seeds from the search mode's source (``fusion``)."""
        given = {} if settings is None else settings.model_dump()
        return await self.run_calibrate(parse(CalibrateRequest, {
            "collection": collection, "queries": None if queries is None else list(queries), **given,
            **_paths(fields)}), progress)

    async def run_calibrate(self, r: CalibrateRequest, progress: Progress | None = None) -> CalibrationReport:
        self._writable("calibrating (it replaces the current calibration)")
        name = self._collection(r.collection)
        inline = None if r.queries is None else [Query(text=q) for q in r.queries]
        qs = await self._queries(name, inline, r.queries_path, r.max_queries, r.query_ids,
                                 "train" if r.from_query_log else None)
        settings = train_settings(r)
        cap = self._feedback_ceiling("Calibration", len(qs) * settings.limit,
                                     f"{len(qs)} queries x limit {settings.limit}", r.max_feedback_scores)
        if self.scorer.needs_term_stats:  # counted once, offline (a collection written by another tool)
            await indexing.ensure_term_stats(self.engine, name, self.config.collection.text_fields, self.sparse_encoder)
        target = await self.target(name, r.vector_name, fusion=r.fusion)
        return await calibration.calibrate(target, self.trainer, [q.text for q in qs], settings,
                                           self.profiles, progress, cap,
                                           pairing=self.config.calibration.pairing)

    async def evaluate(self, collection: str | None = None, queries: Sequence[Query] | None = None, *,
                       progress: Progress | None = None, **fields: Any) -> EvaluationReport:
        """Evaluate the current calibration on held-out queries; with judgments (``qrels``), the ground-truth gate,
        stored in the profile unless ``store`` is False (a read-only server reports without storing) or the stored
        verdict rests on more judged queries (``replace=True`` stores it anyway). With judgments and no usable
        calibration: the rows that need none (baselines), stored nowhere.

        From a file, only the queries with judgments are read when judgments are given."""
        listed = None if queries is None else [q.model_dump() if isinstance(q, Query) else q for q in queries]
        return await self.run_evaluate(parse(EvaluateRequest, {"collection": collection, "queries": listed,
                                                               **_paths(fields)}), progress)

    async def run_evaluate(self, r: EvaluateRequest, progress: Progress | None = None) -> EvaluationReport:
        store = (not self.read_only) if r.store is None else r.store
        if store:
            self._writable("storing an evaluation")
        name = self._collection(r.collection)
        qrels = r.qrels
        if qrels is None and r.qrels_path is not None:
            qrels = read_qrels(r.qrels_path, files=self.files)
        query_ids: Sequence[str] | None = r.query_ids
        if qrels is not None and r.queries is None and r.queries_path is not None:
            query_ids = sorted(set(qrels) if query_ids is None else set(query_ids) & set(qrels))
        inline = None if r.queries is None else [Query(id=q.id, text=q.text) for q in r.queries]
        qs = await self._queries(name, inline, r.queries_path, r.max_queries, query_ids,
                                 "test" if r.from_query_log else None)
        judged = 0 if qrels is None else sum(q.id is not None and q.id in qrels for q in qs)
        self._feedback_ceiling("Evaluation", evaluation.feedback_estimate(len(qs), judged),
                               f"{len(qs)} queries, {judged} of them judged")
        target = await self.target(name, r.vector_name, fusion=r.fusion)
        try:
            profile = await self.profiles.current(target.parts)
            unusable = None if profile.usable else f"the calibration is unusable: {'; '.join(profile.reasons)}"
        except GuardrailError as exc:
            if qrels is None:
                raise GuardrailError(exc.problem, fix=f"{exc.fix} With relevance judgments (qrels), evaluate measures "
                                                      "the rows that need no calibration.") from None
            unusable = exc.problem.rstrip(".")
        s = self.config.search
        hybrid = target if target.sparse is not None else None
        sparse_name = self.config.collection.sparse_vector
        if hybrid is None and sparse_name and (vec := target.info.vector(sparse_name)) is not None and vec.kind == "sparse":
            hybrid = replace(target, sparse=SparseSide(sparse_name, self.sparse_encoder))
        if unusable is not None and qrels is not None:  # baselines first: the rows that need no calibration
            return await evaluation.baselines(target, qs, qrels, why=unusable, seeds=s.seeds, budget=s.recall_budget,
                                              progress=progress, hybrid=hybrid)
        return await evaluation.evaluate(target, self.trainer, profile, qs, self.profiles, qrels=qrels, at_n=r.at_n,
                                         eval_context_limit=r.eval_context_limit, seeds=s.seeds,
                                         budget=s.recall_budget, progress=progress, hybrid=hybrid, store=store,
                                         replace=r.replace)

    async def _search_profile(self, target: Target, vanilla: bool) -> tuple[ProfileRef, list[str]]:
        if vanilla:
            note = ("Vanilla mode (a=1, b=0, c=0): plain vector search through the RF API, no feedback used."
                    if target.sparse is None else
                    "Plain hybrid search (dense + BM25, reciprocal rank fusion): no feedback used.")
            return ProfileRef(fingerprint="vanilla", weights=VANILLA, created_at="-", vanilla_mode=True,
                              seed_source=target.seed_source), [note]
        profile = await self.profiles.resolve(target.parts, target.fusion)
        warnings = []
        drift = guardrails.drift_warning(profile.points_count, target.info.points_count,
                                         self.config.search.drift_warning)
        if drift:
            warnings.append(drift)
        ev = profile.evaluation(target.fusion)
        if ev is None:
            warnings.append(f"This calibration has not been evaluated with fusion={target.fusion}: run evaluate on "
                            "held-out queries.")
        elif ev.verdict == "unverified":
            warnings.append("This calibration was evaluated without relevance judgments: gains are unverified.")
        elif ev.verdict == "inconclusive":
            warnings.append(f"This calibration's evaluation with fusion={target.fusion} was inconclusive on "
                            f"{ev.judged_queries()} judged queries ({'; '.join(ev.reasons)}): evaluate on more judged "
                            "queries to decide.")
        return ProfileRef(fingerprint=profile.fingerprint, weights=profile.weights, created_at=profile.created_at,
                          seed_source=profile.seed_source, pairing=profile.pairing), warnings

    async def search_precision(self, collection: str | None = None, query: str | None = None,
                               **fields: Any) -> SearchResult:
        """RF precision search (5 feedback scores); ``vanilla`` spends none (plain search, or hybrid with fusion).
        ``exact`` / ``hnsw_ef``: engine search parameters (default: the config's, else chosen per query)."""
        return await self.search(parse(PrecisionRequest, {"collection": collection, "query": query, **fields}))

    async def search_recall(self, collection: str | None = None, query: str | None = None,
                            **fields: Any) -> SearchResult:
        """RF recall search: seeds + budget feedback scores in two rounds. ``seed_ids`` may be point ids or doc_ids."""
        return await self.search(parse(RecallRequest, {"collection": collection, "query": query, **fields}))

    async def search(self, request: PrecisionRequest | RecallRequest) -> SearchResult:
        """A search whose feedback scores come from this server's own feedback model."""
        if self.grades_through_client:
            raise ModelError("This server's feedback model is the MCP client's own LLM (sampling): its grades come "
                             "through an MCP client.", fix='Search through the MCP server, or configure a feedback '
                                                           'model that scores here ([feedback] transport = "http").')
        return await search.run(self.plan(request), self.scorer.score)

    async def plan(self, request: PrecisionRequest | RecallRequest) -> Plan:
        """The search as a plan that stops for feedback scores (:class:`GradeRequest`) and is resumed with them; the
        protocol layer answers them with the client's LLM. Refuses (before any grading) what the search would."""
        r = with_defaults(request, self.config)
        vanilla = isinstance(r, PrecisionRequest) and r.vanilla
        assert r.seeds is not None  # with_defaults filled it
        if isinstance(r, RecallRequest):
            assert r.budget is not None
            self._feedback_ceiling("This recall search", r.seeds + r.budget, f"{r.seeds} seeds + budget {r.budget}")
        elif not vanilla:
            self._feedback_ceiling("This precision search", r.seeds, f"{r.seeds} seeds")
        target = await self.target(r.collection, r.vector_name, fusion=r.fusion, filter=r.filter, exact=r.exact,
                                   hnsw_ef=r.hnsw_ef)
        ref, warnings = await self._search_profile(target, vanilla)
        inner: Plan
        if isinstance(r, PrecisionRequest):
            assert r.limit is not None
            inner = search.precision(target, r.query, ref, seeds=r.seeds, limit=r.limit, score_seeds=not vanilla)
        else:
            assert r.budget is not None
            ids = None if not r.seed_ids else await search.resolve_seed_ids(target, r.seed_ids)
            inner = search.recall(target, r.query, ref, seeds=r.seeds, budget=r.budget, limit=r.limit, seed_ids=ids)
        try:
            step = await inner.__anext__()
            while isinstance(step, GradeRequest):
                step = await inner.asend((yield step))
        finally:
            await inner.aclose()
        step.warnings = warnings + step.warnings
        await self.query_log.record(target.collection, step.query)
        yield step

    async def list_profiles(self, collection: str | None = None) -> list[ProfileSummary]:
        names = [collection] if collection else await self.engine.list_collections()
        out: list[ProfileSummary] = []
        for name in names:
            if not await self.engine.exists(name):
                raise InputError(f"Collection {name!r} does not exist.", fix="List collections without a name first.")
            try:
                configured = (await self.target(name, bind=False)).parts  # identity only: no corpus read
            except RFError:  # a collection this config cannot search still lists its profiles
                configured = None
            out.extend(await self.profiles.summaries(name, configured))
        return out

    async def optimize(self, collection: str | None) -> IndexReport:
        """Build the engine's HNSW index now (edge; a server does this by itself)."""
        self._writable("building the index")
        name = self._collection(collection)
        t0 = time.perf_counter()
        info = await self.engine.describe(name)
        await self.engine.optimize(name)
        return IndexReport(collection=name, vector_name=self._vector_name(None), documents=0, created=False,
                           points_count=info.points_count, seconds=round(time.perf_counter() - t0, 3),
                           indexed_vectors=(await self.engine.describe(name)).indexed_vectors)

    async def migrate(self, collection: str | None, to: QdrantSettings, *, vector_name: str | None = None,
                      progress: Progress | None = None) -> MigrationReport:
        """Copy a collection and its calibration profiles to another Qdrant (a server URL or another folder)."""
        name = self._collection(collection)
        _check_destination(to, self.config.qdrant)
        destination = self.adapters.engine(to)
        try:
            report = await migration.migrate(self.engine, destination, name, self._vector_name(vector_name),
                                             progress=progress)
            sparse = self.config.collection.sparse_vector
            source_info = await self.engine.describe(name)
            if sparse and source_info.vector(sparse) is not None:  # rebuilt from the payload text
                await indexing.backfill_sparse(destination, name, self.config.collection.text_fields, sparse,
                                               self.sparse_encoder, progress=progress)
            return report
        finally:
            await destination.close()

    async def rollback(self, collection: str | None = None, **fields: Any) -> CalibrationProfile:
        return await self.run_rollback(parse(RollbackRequest, {"collection": collection, **fields}))

    async def run_rollback(self, r: RollbackRequest) -> CalibrationProfile:
        self._writable("rolling back (it replaces the current calibration)")
        target = await self.target(r.collection, r.vector_name, fusion=r.fusion)
        return await self.profiles.rollback(target.collection, target.parts.fingerprint)


def _path(value: str | Path | None) -> str | None:
    return None if value is None else str(value)


def _paths(fields: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments as a request takes them: paths as strings, id sets as sorted lists."""
    return {k: (str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, set | frozenset) else v)
            for k, v in fields.items()}


def _check_destination(to: QdrantSettings, source: QdrantSettings) -> None:
    """A migration goes to a server, or to a folder that is not a file and not the source's own folder."""
    if to.url or to.path in (None, ":memory:"):
        return
    folder = Path(to.data_path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"The destination {folder} is a file, not a folder.",
                         fix="Give --to a folder (new or holding other collections) or a server URL.")
    if not source.url and folder.resolve() == Path(source.data_path).expanduser().resolve():
        raise InputError("The destination folder is the source folder.", fix="Give --to another folder, or a server URL.")
