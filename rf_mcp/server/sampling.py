"""Search tools whose feedback model is the MCP client's own LLM (sampling).

The SDK's resolvers ask the client: ``Annotated[..., Resolve(fn)]`` parameters run before the tool body
and may return ``Sample(...)``; the SDK sends ``sampling/createMessage`` (standalone requests on the
handshake-era protocol, ``InputRequiredResult`` rounds on 2026-07-28) and injects the reply. Each round
grades all its documents in one listwise request, so a precision search costs one round trip and a
recall search two (one more for each reply that has to be asked again). The grades are filed under the
client's own key (:data:`rf_mcp.ports.grading_client`: the MCP session), and the ordinary domain search then
runs unchanged and reads them from there: one client's grades never serve another client's search.

(No ``from __future__ import annotations`` here: the SDK reads the resolvers' ``Resolve`` annotations,
which name local functions, at registration.)
"""


import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, Resolve, Sample
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CreateMessageResult, ModelHint, ModelPreferences, SamplingMessage, TextContent

from rf_mcp.domain.service import RFService
from rf_mcp.errors import RFError
from rf_mcp.ports import Filter, GradeReplyError, SampledScorer, grading_client

NO_SAMPLING = ("This server's feedback model is the MCP client's own LLM (sampling), but this client does not "
               "support sampling. Fix: use a client with sampling, or configure the HTTP judge "
               '([feedback] type = "llm", transport = "http", base_url, model) or another feedback model.')


def client_key(ctx: Context) -> str:
    """Who is grading: the MCP session (its id over HTTP, the session object otherwise)."""
    headers = ctx.headers or {}
    session_id = headers.get("mcp-session-id")
    return f"mcp-session:{session_id}" if session_id else f"session:{id(ctx.session)}"


def as_client(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Run a resolver as the calling client (its grades), with RF errors turned into tool errors."""

    @functools.wraps(fn)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = grading_client.set(client_key(kwargs["ctx"]))
        try:
            return await fn(*args, **kwargs)
        except RFError as exc:
            raise ToolError(f"{exc.code}: {exc}") from None
        finally:
            grading_client.reset(token)

    return wrapped


def _require_sampling(ctx: Context) -> None:
    caps = ctx.client_capabilities
    if caps is None or caps.sampling is None:
        raise ToolError(NO_SAMPLING)


def _text(result: CreateMessageResult) -> str:
    content: Any = result.content  # one block, or a list of blocks in newer protocol versions
    if isinstance(content, list):
        return " ".join(getattr(c, "text", "") for c in content)
    return str(getattr(content, "text", ""))


class SamplingRounds:
    """Builds the resolvers and the grade bookkeeping for one judge."""

    def __init__(self, service: RFService, judge: SampledScorer) -> None:
        self.service = service
        self.judge = judge
        self._models: dict[str, set[str]] = {}  # the models each grading client's LLM reported

    def _saw(self, model: str) -> None:
        seen = self._models.setdefault(grading_client.get(), set())
        if len(seen) < 8:  # a client naming a new model on every reply does not grow this (or the warnings)
            seen.add(str(model)[:100])

    def _messages(self, query: str, texts: list[str]) -> list[SamplingMessage]:
        return [SamplingMessage(role="user", content=TextContent(type="text", text=self.judge.prompt(query, texts)))]

    def sample(self, query: str, texts: list[str], extra: list[SamplingMessage] | None = None) -> Sample:
        return Sample(self._messages(query, texts) + (extra or []), max_tokens=self.judge.max_tokens(len(texts)),
                      system_prompt=self.judge.system_prompt, temperature=0.0,
                      model_preferences=ModelPreferences(hints=[ModelHint(name=self.judge.model)]))

    def grades_or_retry(self, query: str, texts: list[str], reply: CreateMessageResult) -> list[float] | Sample:
        self._saw(reply.model)
        try:
            return self.judge.parse(_text(reply), len(texts))
        except GradeReplyError as exc:
            return self.sample(query, texts, [
                SamplingMessage(role="assistant", content=TextContent(type="text", text=_text(reply))),
                SamplingMessage(role="user", content=TextContent(type="text", text=self.judge.retry_prompt(str(exc))))])

    def file(self, query: str, texts: list[str], value: Any) -> None:
        """Put a round's grades in the cache; a second unusable reply fails the call (no invented grade)."""
        if isinstance(value, CreateMessageResult):
            self._saw(value.model)
            try:
                value = self.judge.parse(_text(value), len(texts))
            except GradeReplyError as exc:
                raise ToolError(f"model_error: the client's LLM gave unusable grades twice ({exc}). Fix: retry, or "
                                "use a model that follows the JSON format.") from None
        if not isinstance(value, list) or len(value) != len(texts):
            raise ToolError("model_error: no grades were received for this round. Fix: retry the call.")
        self.judge.accept(query, texts, value)

    def model_warnings(self) -> list[str]:
        other = sorted(m for m in self._models.get(grading_client.get(), set()) if m and m != self.judge.model)
        if other:
            return [f"The client's LLM graded as {other}, but the calibration is for {self.judge.model!r}: "
                    "weights are tied to the feedback model; calibrate for the model the client uses."]
        return []

    # -- precision: one round -------------------------------------------------------------------------------
    def precision_resolvers(self) -> dict[str, Callable[..., Any]]:
        svc = self.service

        async def seeds_of(collection: str | None, query: str, seeds: int | None, fusion: Any, filter: Filter | None,
                           vector_name: str | None, exact: bool | None, hnsw_ef: int | None) -> list[str]:
            return await svc.plan_precision(collection, query, seeds=seeds, fusion=fusion, filter=filter,
                                            vector_name=vector_name, exact=exact, hnsw_ef=hnsw_ef)

        @as_client
        async def seed_request(collection: str | None, query: str, seeds: int | None, vanilla: bool, fusion: Any,
                               filter: Filter | None, vector_name: str | None, exact: bool | None,
                               hnsw_ef: int | None, ctx: Context) -> Any:
            if vanilla:
                return None
            _require_sampling(ctx)
            return self.sample(query, await seeds_of(collection, query, seeds, fusion, filter, vector_name, exact, hnsw_ef))

        @as_client
        async def seed_grades(collection: str | None, query: str, seeds: int | None, vanilla: bool, fusion: Any,
                              filter: Filter | None, vector_name: str | None, exact: bool | None,
                              hnsw_ef: int | None, ctx: Context,
                              reply: Annotated[Any, Resolve(seed_request)]) -> Any:
            if vanilla:
                return None
            texts = await seeds_of(collection, query, seeds, fusion, filter, vector_name, exact, hnsw_ef)
            return self.grades_or_retry(query, texts, reply)

        return {"seed_grades": seed_grades}

    async def before_precision(self, args: Any, resolved: dict[str, Any]) -> None:
        if not args.vanilla:
            texts = await self.service.plan_precision(args.collection, args.query, seeds=args.seeds, fusion=args.fusion,
                                                      filter=args.filter, vector_name=args.vector_name,
                                                      exact=args.exact, hnsw_ef=args.hnsw_ef)
            self.file(args.query, texts, resolved["seed_grades"])

    # -- recall: two rounds ---------------------------------------------------------------------------------
    def recall_resolvers(self) -> dict[str, Callable[..., Any]]:
        svc = self.service

        async def seeds_of(collection: str | None, query: str, seeds: int | None, seed_ids: Any, fusion: Any,
                           filter: Filter | None, vector_name: str | None, exact: bool | None,
                           hnsw_ef: int | None) -> list[str]:
            return await svc.plan_recall_seeds(collection, query, seeds=seeds, seed_ids=seed_ids, fusion=fusion,
                                               filter=filter, vector_name=vector_name, exact=exact, hnsw_ef=hnsw_ef)

        async def new_of(collection: str | None, query: str, seeds: int | None, budget: int | None, seed_ids: Any,
                         fusion: Any, filter: Filter | None, vector_name: str | None, exact: bool | None,
                         hnsw_ef: int | None) -> list[str]:
            return await svc.plan_recall_new(collection, query, seeds=seeds, budget=budget, seed_ids=seed_ids,
                                             fusion=fusion, filter=filter, vector_name=vector_name, exact=exact,
                                             hnsw_ef=hnsw_ef)

        @as_client
        async def seed_request(collection: str | None, query: str, seeds: int | None, seed_ids: Any, fusion: Any,
                               filter: Filter | None, vector_name: str | None, exact: bool | None,
                               hnsw_ef: int | None, ctx: Context) -> Any:
            _require_sampling(ctx)
            return self.sample(query, await seeds_of(collection, query, seeds, seed_ids, fusion, filter, vector_name, exact, hnsw_ef))

        @as_client
        async def seed_grades(collection: str | None, query: str, seeds: int | None, seed_ids: Any, fusion: Any,
                              filter: Filter | None, vector_name: str | None, exact: bool | None,
                              hnsw_ef: int | None, ctx: Context,
                              reply: Annotated[Any, Resolve(seed_request)]) -> Any:
            texts = await seeds_of(collection, query, seeds, seed_ids, fusion, filter, vector_name, exact, hnsw_ef)
            return self.grades_or_retry(query, texts, reply)

        @as_client
        async def new_request(collection: str | None, query: str, seeds: int | None, budget: int | None, seed_ids: Any,
                              fusion: Any, filter: Filter | None, vector_name: str | None, exact: bool | None,
                              hnsw_ef: int | None, ctx: Context,
                              grades: Annotated[Any, Resolve(seed_grades)]) -> Any:
            self.file(query, await seeds_of(collection, query, seeds, seed_ids, fusion, filter, vector_name, exact, hnsw_ef), grades)
            texts = await new_of(collection, query, seeds, budget, seed_ids, fusion, filter, vector_name, exact, hnsw_ef)
            return self.sample(query, texts) if texts else []

        @as_client
        async def new_grades(collection: str | None, query: str, seeds: int | None, budget: int | None, seed_ids: Any,
                             fusion: Any, filter: Filter | None, vector_name: str | None, exact: bool | None,
                             hnsw_ef: int | None, ctx: Context,
                             reply: Annotated[Any, Resolve(new_request)]) -> Any:
            if isinstance(reply, list):
                return reply
            texts = await new_of(collection, query, seeds, budget, seed_ids, fusion, filter, vector_name, exact, hnsw_ef)
            return self.grades_or_retry(query, texts, reply)

        return {"seed_grades": seed_grades, "new_grades": new_grades}

    async def before_recall(self, args: Any, resolved: dict[str, Any]) -> None:
        svc = self.service
        seeds = await svc.plan_recall_seeds(args.collection, args.query, seeds=args.seeds, seed_ids=args.seed_ids,
                                            fusion=args.fusion, filter=args.filter, vector_name=args.vector_name,
                                            exact=args.exact, hnsw_ef=args.hnsw_ef)
        self.file(args.query, seeds, resolved["seed_grades"])
        new = await svc.plan_recall_new(args.collection, args.query, seeds=args.seeds, budget=args.budget,
                                        seed_ids=args.seed_ids, fusion=args.fusion, filter=args.filter,
                                        vector_name=args.vector_name, exact=args.exact, hnsw_ef=args.hnsw_ef)
        self.file(args.query, new, resolved["new_grades"])
