"""Search tools whose feedback model is the MCP client's own LLM (sampling).

A search is a plan (:func:`rf_mcp.domain.service.RFService.plan`) that stops when it needs grades. Here its grade
requests are answered by the client: each round's documents are graded in one listwise ``sampling/createMessage``
request, so a precision search costs one round trip and a recall search two (one more for each reply that has to
be asked again). The plan embeds the query and chooses its seeds once, whatever the protocol era:

* handshake era (up to 2025-11-25): the request goes to the client in the middle of the call and the plan waits for
  the reply; the whole call is bounded by :attr:`ClientGrading.deadline`.
* 2026-07-28: the call answers ``InputRequiredResult`` with the request; the client calls again with the reply. The
  suspended plan waits here, under a random key carried in ``requestState`` (which the SDK seals and binds to the
  call's arguments), for one request of one client: at most :data:`MAX_PENDING` plans, each for at most the deadline.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    CallToolRequestParams,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    InputRequiredResult,
    ModelHint,
    ModelPreferences,
    SamplingMessage,
    TextContent,
)
from mcp_types.version import is_version_at_least

from rf_mcp.domain.models import SearchResult
from rf_mcp.domain.search import GradeRequest, Plan
from rf_mcp.errors import InputError, ModelError, UnusableGrades
from rf_mcp.ports import GradeReplyError, SampledScorer

Context = ServerRequestContext[Any, Any]
MODERN = "2026-07-28"
MAX_PENDING = 256
"""Plans waiting for a client's grades at once (the oldest is dropped first)."""
KEY = "grades"

NO_SAMPLING = ("This server's feedback model is the MCP client's own LLM (sampling), but this client does not "
               "support sampling.")
NO_SAMPLING_FIX = ('Use a client with sampling, or configure the HTTP judge ([feedback] type = "llm", transport = '
                   '"http", base_url, model) or another feedback model.')


def _text(result: CreateMessageResult) -> str:
    content: Any = result.content  # one block, or a list of blocks in newer protocol versions
    if isinstance(content, list):
        return " ".join(getattr(c, "text", "") for c in content)
    return str(getattr(content, "text", ""))


@dataclass
class _Round:
    """One grade request asked of the client: its attempt (a reply that cannot be used is asked again once)."""

    request: GradeRequest
    attempt: int = 0
    messages: list[SamplingMessage] = field(default_factory=list)


@dataclass
class _Pending:
    plan: Plan
    round: _Round
    expires: float
    models: set[str]


class ClientGrading:
    """Answers plans' grade requests with the client's LLM, on either protocol era."""

    def __init__(self, judge: SampledScorer, deadline: float) -> None:
        self.judge = judge
        self.deadline = deadline
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    # -- one grading round ------------------------------------------------------------------------------------
    def _first(self, request: GradeRequest) -> _Round:
        prompt = self.judge.prompt(request.query, list(request.texts))
        return _Round(request, 0, [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))])

    def _params(self, rnd: _Round) -> CreateMessageRequestParams:
        return CreateMessageRequestParams(
            messages=rnd.messages, max_tokens=self.judge.max_tokens(len(rnd.request.texts)),
            system_prompt=self.judge.system_prompt, temperature=0.0,
            model_preferences=ModelPreferences(hints=[ModelHint(name=self.judge.model)]))

    def _answer(self, rnd: _Round, reply: Any, models: set[str]) -> list[float] | _Round:
        """The grades in ``reply``, or the round asked again (once) when the reply cannot be used."""
        if not isinstance(reply, CreateMessageResult):
            raise ModelError("No grades were received for this round.", fix="Retry the call.")
        if len(models) < 8:  # a client naming a new model on every reply does not grow this (or the warnings)
            models.add(str(reply.model)[:100])
        text = _text(reply)
        try:
            return self.judge.parse(text, len(rnd.request.texts))
        except GradeReplyError as exc:
            if rnd.attempt >= 1:
                raise UnusableGrades(f"The client's LLM gave unusable grades twice ({exc}).",
                                     fix="Retry, or use a model that follows the JSON format.") from None
            return _Round(rnd.request, rnd.attempt + 1, [
                *rnd.messages, SamplingMessage(role="assistant", content=TextContent(type="text", text=text)),
                SamplingMessage(role="user", content=TextContent(type="text", text=self.judge.retry_prompt(str(exc))))])

    def _warnings(self, result: SearchResult, models: set[str]) -> SearchResult:
        other = sorted(m for m in models if m and m != self.judge.model)
        if other:
            result.warnings.append(f"The client's LLM graded as {other}, but the calibration is for "
                                   f"{self.judge.model!r}: weights are tied to the feedback model; calibrate for the "
                                   "model the client uses.")
        return result

    # -- driving a plan ---------------------------------------------------------------------------------------
    async def run_local(self, plan: Plan) -> SearchResult:
        """A plan that asks for no grades (vanilla search)."""
        try:
            step = await plan.__anext__()
            if isinstance(step, GradeRequest):
                raise ModelError("This search needed grades where none were expected.", fix="Report this as a bug.")
            return step
        finally:
            await plan.aclose()

    async def run(self, ctx: Context, params: CallToolRequestParams,
                  start: Callable[[], Plan]) -> SearchResult | InputRequiredResult:
        caps = ctx.session.client_capabilities
        if caps is None or caps.sampling is None:
            raise ModelError(NO_SAMPLING, fix=NO_SAMPLING_FIX)
        if is_version_at_least(ctx.protocol_version, MODERN):
            return await self._modern(params, start)
        with anyio.move_on_after(self.deadline) as scope:
            return await self._legacy(ctx, start())
        assert scope.cancelled_caught
        raise ModelError(f"No grades within {self.deadline:g} s: the client's LLM did not answer the grading request.",
                         fix="Retry, or raise [feedback].timeout.")

    async def _legacy(self, ctx: Context, plan: Plan) -> SearchResult:
        """Handshake era: each round is a request to the client in the middle of this call."""
        models: set[str] = set()
        try:
            step = await plan.__anext__()
            while isinstance(step, GradeRequest):
                answer: list[float] | _Round = self._first(step)
                while isinstance(answer, _Round):
                    rnd = answer
                    reply = await ctx.session.send_request(
                        CreateMessageRequest(params=self._params(rnd)), CreateMessageResult,
                        metadata=ServerMessageMetadata(related_request_id=ctx.request_id))
                    answer = self._answer(rnd, reply, models)
                step = await plan.asend(answer)
            return self._warnings(step, models)
        finally:
            await plan.aclose()

    async def _modern(self, params: CallToolRequestParams, start: Callable[[], Plan]) -> SearchResult | InputRequiredResult:
        """2026-07-28: each round is an ``InputRequiredResult``; the client calls again with the reply."""
        self._expire()
        resumed = params.request_state is not None
        pending = self._take(params.request_state) if resumed else _Pending(start(), _Round(GradeRequest("", ())), 0.0,
                                                                            set())
        try:  # a plan that fails or is refused here is finalized; one handed back by _ask waits for its reply
            if not resumed:
                step = await pending.plan.__anext__()
            else:
                answer = self._answer(pending.round, (params.input_responses or {}).get(KEY), pending.models)
                if isinstance(answer, _Round):  # asked again: the plan keeps waiting
                    return self._ask(pending, answer)
                step = await pending.plan.asend(answer)
        except BaseException:
            await pending.plan.aclose()
            raise
        if isinstance(step, GradeRequest):
            return self._ask(pending, self._first(step))
        await pending.plan.aclose()
        return self._warnings(step, pending.models)

    def _ask(self, pending: _Pending, rnd: _Round) -> InputRequiredResult:
        key = secrets.token_urlsafe(18)
        pending.round = rnd
        pending.expires = time.monotonic() + self.deadline
        self._pending[key] = pending
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)  # the dropped plan is finalized by the event loop
        return InputRequiredResult(input_requests={KEY: CreateMessageRequest(params=self._params(rnd))},
                                   request_state=json.dumps({"plan": key}))

    def _take(self, state: Any) -> _Pending:
        try:
            key = json.loads(state)["plan"]
        except (ValueError, TypeError, KeyError):
            key = None
        pending = self._pending.pop(key, None) if isinstance(key, str) else None
        if pending is None:
            raise InputError("This search waited too long for its grades (or the server restarted).",
                             fix="Call the tool again from the start.")
        return pending

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, p in self._pending.items() if p.expires < now]:
            del self._pending[key]
