"""A small OpenAI-compatible chat-completions server for tests (127.0.0.1 only), grading by simple rules.

It reads the judge's prompt the way a model would see it (query line, ``<doc id=N>`` blocks) and grades
each document by how many query words it contains. Modes let tests inject faults.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.asgi import ServedApp

DOC = re.compile(r"<doc id=(\d+)>\n(.*?)\n</doc>", re.S)
WORD = re.compile(r"[a-z0-9]{4,}")


def read_prompt(prompt: str) -> tuple[str, list[tuple[int, str]]]:
    query = html.unescape(prompt.split("\n", 1)[0].removeprefix("Query: "))
    docs = [(int(i), html.unescape(t)) for i, t in DOC.findall(prompt)]
    return query, docs


def rule_grades(prompt: str) -> dict[int, int]:
    query, docs = read_prompt(prompt)
    words = set(WORD.findall(query.lower()))
    return {i: min(10, len(words & set(WORD.findall(text.lower())))) for i, text in docs}


def rule_reply(prompt: str) -> str:
    return json.dumps({"grades": [{"id": i, "grade": g} for i, g in rule_grades(prompt).items()]})


@dataclass
class FakeLLM:
    # ok | garbage_once | garbage | out_of_range | slow | error_once | bad_request | incomplete (no grade for the
    # last document of a batch of several)
    # | reject_schema (400 naming response_format to a request that carries one, as servers without structured output)
    # | json_object_only (500 naming response_format to a json_schema one, as llama-cpp-python's server; takes
    #   json_object with a schema)
    mode: str = "ok"
    garbage_queries: set[str] = field(default_factory=set)  # these queries get garbage every time, in any mode
    delay: float = 0.0
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    prompts: list[str] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)  # every request body, as sent

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests += 1
        self.headers.append(dict(request.headers))
        self.bodies.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                import anyio
                await anyio.sleep(self.delay)
            if self.mode == "error_once" and self.requests == 1:
                return JSONResponse({"error": "overloaded"}, status_code=503)
            if self.mode == "bad_request":
                return JSONResponse({"error": "SECRET-BODY: the provider's own text, with account details"},
                                    status_code=400)
            if self.mode == "reject_schema" and "response_format" in body:
                return JSONResponse({"error": {"message": "Unrecognized request argument: response_format",
                                               "type": "invalid_request_error"}}, status_code=400)
            if self.mode == "json_object_only" and body.get("response_format", {}).get("type") == "json_schema":
                return JSONResponse({"error": {"message": "1 validation error: ('body', 'response_format', 'type') "
                                               "Input should be 'text' or 'json_object'"}}, status_code=500)
            user = [m["content"] for m in body["messages"] if m["role"] == "user"]
            prompt = user[0]
            self.prompts.append(prompt)
            retrying = len(user) > 1
            if (self.mode == "garbage" or (self.mode == "garbage_once" and not retrying)
                    or read_prompt(prompt)[0] in self.garbage_queries):
                content = "I think they are all quite relevant!"
            elif self.mode == "incomplete" and len(read_prompt(prompt)[1]) > 1:  # a small model's habit: the last one lost
                content = json.dumps({"grades": [{"id": i, "grade": g} for i, g in rule_grades(prompt).items()][:-1]})
            elif self.mode == "out_of_range":
                content = json.dumps({"grades": [{"id": i, "grade": 42} for i in rule_grades(prompt)]})
            else:
                content = rule_reply(prompt)
            return JSONResponse({"id": "x", "object": "chat.completion", "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": content}}]})
        finally:
            self.in_flight -= 1


class Served(ServedApp):
    """Runs a FakeLLM on a free 127.0.0.1 port in a background thread."""

    def __init__(self, llm: FakeLLM) -> None:
        self.llm = llm
        super().__init__(Starlette(routes=[Route("/v1/chat/completions", llm.chat, methods=["POST"])]))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"
