"""The rules of Qdrant's RF guide, as checks that raise a clear error. Every front end goes through them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rf_mcp.errors import GuardrailError, InputError, ModelError
from rf_mcp.ports import CollectionInfo, FieldCondition, VectorInfo

MIN_SEEDS = 2
MAX_WEIGHT = 1e6
"""Largest |a|, |b|, |c| of a usable calibration (calibrations give a ~ 0.1, b ~ 0.4, c ~ 0.01)."""
MAX_EXPONENT = 10.0
"""Largest b of a usable calibration (calibrations give b ~ 0.4-1.5): (s_i - s_j)^b overflows beyond."""
UNTRAINED = (1.0, 1.0, 1.0)
"""The training library's initial a, b, c: weights left there learned nothing."""
MAX_SEEDS = 20
MIN_TRAIN_QUERIES = 10
RECOMMENDED_TRAIN_QUERIES = (50, 200)
MIN_DISAGREEMENT = 0.10
MAX_SKIPPED_SHARE = 0.10
"""Largest share of a calibration's (or an evaluation's) queries that may be skipped because the feedback model's
grades for them stayed unusable after its retry (an LLM judge's malformed replies); past it the operation fails."""


def max_skipped(total: int) -> int:
    """How many of ``total`` queries may be skipped: at most :data:`MAX_SKIPPED_SHARE` of them."""
    return math.floor(MAX_SKIPPED_SHARE * total + 1e-9)


def dense_vector(info: CollectionInfo, vector_name: str, retriever_dim: int | None = None) -> VectorInfo:
    """RF runs in the retriever's dense vector space: refuse sparse, multi or missing vectors."""
    vec = info.vector(vector_name)
    label = repr(vector_name) if vector_name else "the unnamed default vector"
    if vec is None:
        names = [v.name or "(default)" for v in info.vectors]
        raise InputError(
            f"Collection {info.name!r} has no vector {label} (it has: {names}).",
            fix='Set [collection].vector_name to one of them ("" for the unnamed default vector).',
        )
    if vec.kind == "sparse":
        raise GuardrailError(
            f"Vector {label} of {info.name!r} is sparse: Relevance Feedback works on dense vectors only.",
            fix="Point [collection].vector_name at the collection's dense retriever vector.",
        )
    if vec.kind == "multi":
        raise GuardrailError(
            f"Vector {label} of {info.name!r} is a multivector: this product runs RF on single dense vectors.",
            fix="Use the collection's single dense retriever vector.",
        )
    if retriever_dim is not None and vec.dim != retriever_dim:
        raise InputError(
            f"Vector {label} of {info.name!r} has {vec.dim} dimensions but the retriever makes {retriever_dim}.",
            fix="Configure the retriever that built this collection ([retriever].model / model_path).",
        )
    return vec


def sparse_vector(info: CollectionInfo, name: str) -> VectorInfo:
    """fusion = "sparse" needs the collection's BM25 sparse vector (RF itself stays on the dense one)."""
    vec = info.vector(name)
    if vec is None or vec.kind != "sparse":
        have = [v.name for v in info.vectors if v.kind == "sparse"]
        raise InputError(
            f"Collection {info.name!r} has no sparse vector {name!r} (sparse vectors: {have or 'none'}): fusion with "
            "BM25 needs one.",
            fix=f'`rf-mcp index --sparse-only -c {info.name}` (or the index tool with sparse_only) adds it and writes '
                'it into every point, on any collection (another tool\'s keeps working as before; Qdrant server 1.18+); '
                'or name the collection\'s own in [collection].sparse_vector, or search with fusion = "none".')
    return vec


def seed_count(n: int) -> None:
    if n < MIN_SEEDS:
        raise GuardrailError(
            f"{n} seed(s) is too few: RF needs at least {MIN_SEEDS} scored seeds for a contrast.",
            fix="Use 5 seeds (the guide's default), and a collection with at least that many points.",
        )
    if n > MAX_SEEDS:
        raise InputError(
            f"{n} seeds is too many (at most {MAX_SEEDS}); more seeds add noise and cost, not quality.",
            fix="Use 5 seeds.",
        )


def finite_scores(scores: Sequence[float], expected: int, who: str) -> list[float]:
    """The feedback model must return one finite float per document."""
    if len(scores) != expected:
        raise ModelError(
            f"The feedback model {who} returned {len(scores)} scores for {expected} documents.",
            fix="Fix the scorer so it returns exactly one score per document, in order.",
        )
    out = []
    for i, s in enumerate(scores):
        try:
            f = float(s)
        except (TypeError, ValueError):
            f = math.nan
        if not math.isfinite(f):
            raise GuardrailError(
                f"The feedback model {who} returned a non-finite score ({s!r}) for document {i}.",
                fix="RF needs finite scores: fix or replace the feedback model (NaN/inf would corrupt the query).",
            )
        out.append(f)
    return out


def seed_contrast(scores: Sequence[float]) -> None:
    seed_count(len(scores))
    if max(scores) - min(scores) <= 0:
        raise GuardrailError(
            f"All {len(scores)} seeds got the same feedback score ({scores[0]:g}): there is no contrast to learn from.",
            fix="Rephrase the query, use more seeds, or a feedback model that separates documents better.",
        )


def drift_warning(calibrated_points: int, current_points: int, threshold: float) -> str | None:
    if calibrated_points <= 0:
        return None
    change = (current_points - calibrated_points) / calibrated_points
    if abs(change) >= threshold:
        return (f"The collection changed from {calibrated_points} to {current_points} points ({change:+.0%}) "
                "since calibration: recalibrate so the weights fit the data.")
    return None


def weight_problems(a: float, b: float, c: float, *, usable: bool = True) -> list[str]:
    """Why weights cannot be served (empty: they can). Always: values the engine or the arithmetic cannot take. For a
    calibration marked usable, also weights that are not one: untrained, or ignoring or inverting the feedback or the
    query. Training (``calibration.judge``) and reading a stored profile (``profiles.check_profile``) apply the same
    rules."""
    w = (a, b, c)
    if not all(math.isfinite(x) for x in w):
        return [f"weights {w} are not finite"]
    out = []
    if any(abs(x) > MAX_WEIGHT for x in w):
        out.append(f"weights {w} are implausibly large (|a|, |b|, |c| at most {MAX_WEIGHT:g})")
    if b < 0:
        out.append(f"b={b:.4g} is negative (Qdrant requires b >= 0)")
    elif b > MAX_EXPONENT:
        out.append(f"b={b:.4g} is above {MAX_EXPONENT:g}: (s_i - s_j)^b would overflow")
    if usable:
        if all(abs(x - u) < 1e-9 for x, u in zip(w, UNTRAINED, strict=True)):
            out.append("the weights are the training library's untouched initial values a=b=c=1 (no training pairs)")
        if a <= 0:
            out.append(f"a={a:.4g}: the query's own similarity would count against a document")
        if c == 0:
            out.append("c=0: the feedback would be ignored (that is vanilla search)")
        elif c < 0:
            out.append(f"c={c:.4g}: results would move toward the documents the feedback model rated lower")
    return out


_VALUE_KINDS = {"keyword": (str,), "integer": (int,), "bool": (bool,)}


def filter_value_problem(cond: FieldCondition, schema: str) -> str | None:
    """Why a condition cannot match a payload key indexed as ``schema`` (keyword, integer, float, bool), or None.
    Qdrant matches keywords, integers and booleans exactly, and compares numbers in ranges."""
    if cond.range is not None:
        return None if schema in ("integer", "float") else f"is a range, but the key holds {schema} values"
    assert cond.match is not None
    if schema == "float":
        return "matches exact values, but the key holds float values (use a range)"
    m = cond.match
    values = [m.value] if m.value is not None else list(m.any or m.except_ or [])
    kinds = _VALUE_KINDS[schema]
    wrong = [v for v in values if not isinstance(v, kinds) or (schema == "integer" and isinstance(v, bool))]
    return f"matches {wrong[0]!r}, but the key holds {schema} values" if wrong else None
