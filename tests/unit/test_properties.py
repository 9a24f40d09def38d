"""Property-based tests: argument parsing never crashes, scorer output validation never lets a bad value by."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rf_mcp.adapters.scorers.llm_judge import parse as parse_reply
from rf_mcp.domain import guardrails
from rf_mcp.domain.requests import CalibrateRequest, EvaluateRequest, PrecisionRequest, RecallRequest, parse
from rf_mcp.errors import GuardrailError, InputError, ModelError
from rf_mcp.ports import GradeReplyError as JudgeReplyError

MODELS = [PrecisionRequest, RecallRequest, CalibrateRequest, EvaluateRequest]
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=10)
field_names = st.sampled_from(["collection", "query", "limit", "seeds", "budget", "seed_ids", "vanilla", "queries",
                               "queries_path", "at_n", "vector_name", "epochs", "extra"])
arguments = st.dictionaries(field_names, json_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from(MODELS), args=arguments | json_values)
def test_any_arguments_become_a_request_or_one_input_error(model, args):
    """Whatever a client sends, the request model answers with a request or one InputError naming the problem (the
    same text on every surface), never another exception."""
    try:
        request = parse(model, args)
    except InputError as exc:
        assert exc.problem.startswith("Invalid arguments") and exc.fix
        return
    assert isinstance(request, model) and (args is None or isinstance(args, dict))


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
        grades = parse_reply(reply, n)
    except JudgeReplyError:
        return
    assert len(grades) == n and all(0 <= g <= 10 for g in grades)
