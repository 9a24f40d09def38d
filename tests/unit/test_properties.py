"""Property-based tests: tool argument checking never crashes, scorer output validation never lets a bad value by."""

from __future__ import annotations

import math
from types import SimpleNamespace

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rf_mcp.adapters.scorers.llm_judge import parse
from rf_mcp.domain import guardrails
from rf_mcp.errors import GuardrailError, ModelError
from rf_mcp.ports import GradeReplyError as JudgeReplyError
from rf_mcp.server.schemas import CalibrateInput, EvaluateInput, PrecisionInput, RecallInput
from rf_mcp.server.validation import ArgumentCheck

MODELS = {"rf_search_precision": PrecisionInput, "rf_search_recall": RecallInput, "calibrate": CalibrateInput,
          "evaluate": EvaluateInput}
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=10)
field_names = st.sampled_from(["collection", "query", "limit", "seeds", "budget", "seed_ids", "vanilla", "queries",
                               "queries_path", "at_n", "vector_name", "epochs", "extra"])
arguments = st.dictionaries(field_names, json_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(tool=st.sampled_from(sorted(MODELS)), args=arguments | json_values)
def test_argument_check_accepts_exactly_what_the_model_accepts(tool, args):
    check = ArgumentCheck(MODELS)
    passed = []

    async def call_next(ctx):
        passed.append(ctx)
        return "handled"

    ctx = SimpleNamespace(method="tools/call", params={"name": tool, "arguments": args})
    result = anyio.run(check, ctx, call_next)
    try:
        MODELS[tool].model_validate(args if args is not None else {})
        valid = isinstance(args, dict) or args is None
    except (ValidationError, TypeError, ValueError):
        valid = False
    if valid:
        assert result == "handled" and passed
    else:
        assert result.is_error and result.content[0].text.startswith("invalid_input:") and not passed


scores = st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**6, 10**6) | st.none() | st.text(max_size=3),
                  max_size=8)


@settings(max_examples=400, deadline=None)
@given(values=scores, expected=st.integers(0, 8))
def test_scorer_output_is_finite_and_complete_or_refused(values, expected):
    try:
        out = guardrails.finite_scores(values, expected, "prop-scorer")
    except (GuardrailError, ModelError):
        bad = len(values) != expected or any(
            not isinstance(v, (int, float)) or not math.isfinite(float(v)) for v in values)
        assert bad
        return
    assert len(out) == expected == len(values)
    assert all(isinstance(v, float) and math.isfinite(v) for v in out)


@settings(max_examples=400, deadline=None)
@given(reply=st.text(max_size=200) | st.builds(
    lambda items: '{"grades": [' + ",".join(f'{{"id": {i}, "grade": {g}}}' for i, g in items) + "]}",
    st.lists(st.tuples(st.integers(-2, 6), st.integers(-3, 13)), max_size=6)), n=st.integers(1, 5))
def test_judge_reply_parsing_never_invents_a_grade(reply, n):
    try:
        grades = parse(reply, n)
    except JudgeReplyError:
        return
    assert len(grades) == n and all(0 <= g <= 10 for g in grades)
