"""Tool arguments checked against the tools' own input models before the SDK sees them; prompt names and arguments
checked against the registered prompts.

The SDK would answer bad arguments with pydantic's raw text, and an unknown prompt with "Internal server error" and a
traceback in the log; this middleware answers with a tool error (or an invalid-params error) that names each problem
and the fix, in the same words as every other refusal.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent
from pydantic import BaseModel, ValidationError


def describe(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown argument"
        parts.append(f"{where}: {msg}")
    more = f" (and {len(exc.errors()) - limit} more)" if len(exc.errors()) > limit else ""
    return ("invalid_input: Invalid arguments: " + "; ".join(parts) + more +
            ". Fix: correct them as the tool's input schema describes.")


class ArgumentCheck:
    """Server middleware: validate ``tools/call`` arguments with the tool's input model, and ``prompts/get`` names
    and arguments (``prompts``: each prompt's argument names, all required)."""

    def __init__(self, models: dict[str, type[BaseModel]], prompts: dict[str, list[str]] | None = None) -> None:
        self.models = models
        self.prompts = prompts if prompts is not None else {}
        self.deadlines: dict[str, float] = {}
        """Seconds a tool may take at most (the tools that wait on the client's LLM: a reply may never come)."""

    def _check_prompt(self, params: dict[str, Any]) -> None:
        name = str(params.get("name"))[:100]
        if name not in self.prompts:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt {name!r}: this server has {sorted(self.prompts)}.")
        arguments = params.get("arguments") or {}
        missing = [a for a in self.prompts[name] if not isinstance(arguments, dict) or not arguments.get(a)]
        if missing:
            raise MCPError(INVALID_PARAMS, f"Prompt {name!r} needs the argument(s) {missing}.")
        unknown = sorted(str(a)[:40] for a in arguments if a not in self.prompts[name])
        if unknown:
            raise MCPError(INVALID_PARAMS, f"Prompt {name!r} takes only {self.prompts[name]}; unknown: {unknown[:5]}.")

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if ctx.method == "prompts/get" and isinstance(ctx.params, dict):
            self._check_prompt(ctx.params)
        if ctx.method == "tools/call" and isinstance(ctx.params, dict):
            model = self.models.get(str(ctx.params.get("name")))
            arguments = ctx.params.get("arguments")
            if model is not None:
                try:
                    if arguments is not None and not isinstance(arguments, dict):
                        raise TypeError("arguments must be a JSON object")
                    model.model_validate(arguments or {})
                except ValidationError as exc:
                    return CallToolResult(content=[TextContent(type="text", text=describe(exc))], is_error=True)
                except TypeError as exc:
                    return CallToolResult(content=[TextContent(type="text", text=f"invalid_input: {exc}.")],
                                          is_error=True)
            deadline = self.deadlines.get(str(ctx.params.get("name")))
            if deadline is not None:
                with anyio.move_on_after(deadline):
                    return await call_next(ctx)
                return CallToolResult(content=[TextContent(type="text", text=(
                    f"model_error: no grades within {deadline:g} s: the client's LLM did not answer the grading "
                    "request. Fix: retry, or raise [feedback].timeout."))], is_error=True)
        return await call_next(ctx)
