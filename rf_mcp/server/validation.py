"""Tool arguments checked against the tools' own input models before the SDK sees them.

The SDK would answer bad arguments with pydantic's raw text; this middleware answers with a tool
error that names each problem and the fix, in the same words as every other refusal.
"""

from __future__ import annotations

from typing import Any

from mcp_types import CallToolResult, TextContent
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
    """Server middleware: validate ``tools/call`` arguments with the tool's input model."""

    def __init__(self, models: dict[str, type[BaseModel]]) -> None:
        self.models = models

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
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
        return await call_next(ctx)
