"""Calibration profiles stored in the collection's own Qdrant metadata.

One top-level metadata key per fingerprint (``rf_mcp:<fingerprint>``) holding
``{"current": profile, "previous": profile | None}``. Qdrant merges metadata shallowly, so writing
one key never touches another profile; the previous calibration is kept until a newer one is
complete, and can be restored with :meth:`ProfileStore.rollback`. The store lives where the vectors
live, so it survives restarts and is shared by every process using the same Qdrant.

Every profile is validated when it is read (schema, finite weights, b >= 0, identity matching its key and
collection, consistency of the usable flag): a hand-edited or corrupt entry is refused, never served.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
from pydantic import ValidationError

from rf_mcp.domain import guardrails
from rf_mcp.domain.fingerprint import PROFILE_KEY_PREFIX, FingerprintParts
from rf_mcp.domain.models import (
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    CalibrationProfile,
    Evaluation,
    FusionMode,
    ProfileSummary,
    VerdictSummary,
    stored_form,
)
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.ports import Engine


class InvalidProfile(ValueError):
    """A stored profile that must not be served; the message says why."""


def check_profile(raw: Any, collection: str, key: str) -> CalibrationProfile:
    """Parse and validate one stored profile, or :class:`InvalidProfile` with the reason."""
    if not isinstance(raw, dict):
        raise InvalidProfile("it is not a JSON object")
    version = raw.get("schema_version")
    if version not in READABLE_SCHEMA_VERSIONS or isinstance(version, bool):
        raise InvalidProfile(f"schema_version {version!r} is not one this version reads "
                             f"({', '.join(map(str, READABLE_SCHEMA_VERSIONS))}; written by another version of rf-mcp, "
                             "or edited)")
    unknown = sorted(set(raw) - set(CalibrationProfile.model_fields))
    if unknown:
        raise InvalidProfile(f"it has fields this version never writes: {unknown[:5]}")
    try:
        p = CalibrationProfile.model_validate(raw, strict=True)  # a number stays a number: no "0.4" or true
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidProfile(f"field {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    w = p.weights.as_tuple()
    if problems := guardrails.weight_problems(*w, usable=False):
        raise InvalidProfile(problems[0])
    parts = FingerprintParts(collection=p.collection, vector_name=p.vector_name, retriever=p.retriever,
                             feedback=p.feedback, seed_source=p.seed_source, strategy=p.strategy,
                             text_fields=tuple(p.text_fields))
    if p.collection != collection:
        raise InvalidProfile(f"it names collection {p.collection!r}, not {collection!r}")
    if parts.fingerprint != p.fingerprint or PROFILE_KEY_PREFIX + p.fingerprint != key:
        raise InvalidProfile("its fingerprint does not match its retriever, feedback model, vector, text fields and key")
    if p.usable:
        if p.reasons:
            raise InvalidProfile("it is marked usable but lists reasons not to use it")
        if problems := guardrails.weight_problems(*w):
            raise InvalidProfile(problems[0])
        if p.signal.disagreement < guardrails.MIN_DISAGREEMENT:
            raise InvalidProfile(f"it is marked usable with a {p.signal.disagreement:.0%} signal (the minimum is "
                                 f"{guardrails.MIN_DISAGREEMENT:.0%})")
    elif not p.reasons:
        raise InvalidProfile("it is marked unusable without a reason")
    for fusion, ev in p.evaluations.items():
        if ev.fusion != fusion or (ev.verdict == "passed" and ev.reasons) or (
                ev.verdict in ("failed", "inconclusive") and not ev.reasons):
            raise InvalidProfile("its evaluation verdicts and reasons disagree")
        if version == 3 and ev.verdict == "inconclusive":
            raise InvalidProfile("it is of schema 3, which has no inconclusive verdict")
    return p


def supersedes(new: Evaluation, old: Evaluation | None, replace: bool) -> tuple[bool, str]:
    """Whether ``new`` replaces the stored verdict ``old`` of its fusion, and why: when there is none, when it rests on
    at least as many judged queries, or when the caller asks (``replace``)."""
    if old is None:
        return True, f"stored: the first evaluation of this calibration with fusion={new.fusion}"
    n, o = new.judged_queries(), old.judged_queries()
    when = f", {old.evaluated_at}" if old.evaluated_at else ""
    if n >= o:
        return True, (f"stored: it rests on {n} judged queries, at least the {o} of the {old.verdict} verdict it "
                      "replaces")
    if replace:
        return True, f"stored (replace=true): it replaces the {old.verdict} verdict on {o} judged queries{when}"
    return False, (f"not stored: the stored {old.verdict} verdict with fusion={new.fusion} rests on {o} judged "
                   f"queries{when}, more than this one's {n}; it stands and searches follow it (pass replace=true to "
                   "store this one instead)")


class ProfileStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)

    def lock(self, collection: str, key: str) -> anyio.Lock:
        """Serialises writers of one profile in this process."""
        return self._locks[f"{collection}/{key}"]

    async def _entry(self, collection: str, key: str) -> dict[str, Any] | None:
        meta = await self.engine.get_metadata(collection)
        entry = meta.get(key)
        return entry if isinstance(entry, dict) else None

    def _refuse(self, collection: str, key: str, exc: InvalidProfile) -> GuardrailError:
        return GuardrailError(
            f"The stored calibration {key} of {collection!r} ({self.engine.location}) is invalid: {exc}. It is not used.",
            fix="Recalibrate (calibrate stores a new one); the invalid entry is left in place for inspection.")

    def _checked(self, raw: Any, collection: str, key: str) -> CalibrationProfile:
        try:
            return check_profile(raw, collection, key)
        except InvalidProfile as exc:
            raise self._refuse(collection, key, exc) from None

    async def save(self, profile: CalibrationProfile) -> str:
        key = PROFILE_KEY_PREFIX + profile.fingerprint
        async with self.lock(profile.collection, key):
            entry = await self._entry(profile.collection, key)
            previous = entry.get("current") if entry else None
            await self.engine.set_metadata(profile.collection, {key: {
                "current": stored_form(profile), "previous": previous}})
        return key

    async def get(self, collection: str, fingerprint: str) -> CalibrationProfile | None:
        """The current profile of this fingerprint (validated), or None when there is none."""
        key = PROFILE_KEY_PREFIX + fingerprint
        entry = await self._entry(collection, key)
        if not entry or entry.get("current") is None:
            return None
        return self._checked(entry["current"], collection, key)

    async def set_evaluation(self, collection: str, fingerprint: str, evaluation: Evaluation, *, replace: bool = False,
                             evaluated: CalibrationProfile | None = None) -> tuple[bool, str]:
        """Store ``evaluation`` in the current profile when :func:`supersedes` says so (and, given ``evaluated``, only
        if the current profile is still the one evaluated); returns whether it was stored, and why."""
        key = PROFILE_KEY_PREFIX + fingerprint
        async with self.lock(collection, key):
            entry = await self._entry(collection, key)
            if not entry or not entry.get("current"):
                raise InputError(f"No calibration {fingerprint} in {collection!r}.", fix="Run calibrate first.")
            current = self._checked(entry["current"], collection, key)
            if evaluated is not None and (current.created_at, current.weights) != (evaluated.created_at,
                                                                                   evaluated.weights):
                return False, ("not stored: the calibration was replaced while this evaluation ran (it measured the "
                               "weights before); evaluate again")
            stored, why = supersedes(evaluation, current.evaluation(evaluation.fusion), replace)
            if stored:
                current.evaluations = {**current.evaluations, evaluation.fusion: evaluation}
                current.schema_version = SCHEMA_VERSION  # its evaluations may now use schema 4
                await self.engine.set_metadata(collection, {key: {
                    "current": stored_form(current), "previous": entry.get("previous")}})
            return stored, why

    async def rollback(self, collection: str, fingerprint: str) -> CalibrationProfile:
        key = PROFILE_KEY_PREFIX + fingerprint
        async with self.lock(collection, key):
            entry = await self._entry(collection, key)
            if not entry or not entry.get("previous"):
                raise InputError(f"Calibration {fingerprint} of {collection!r} has no previous version.",
                                 fix="Nothing to roll back to; recalibrate instead.")
            previous = self._checked(entry["previous"], collection, key)
            await self.engine.set_metadata(collection, {key: {
                "current": entry["previous"], "previous": entry.get("current")}})
            return previous

    async def summaries(self, collection: str, configured: FingerprintParts | None = None) -> list[ProfileSummary]:
        meta = await self.engine.get_metadata(collection)
        now = datetime.now(UTC)
        out = []
        for key, entry in sorted(meta.items()):
            if not key.startswith(PROFILE_KEY_PREFIX):
                continue
            try:
                if not isinstance(entry, dict) or entry.get("current") is None:
                    raise InvalidProfile("no current profile")
                current = check_profile(entry["current"], collection, key)
                previous = None if entry.get("previous") is None else check_profile(entry["previous"], collection, key)
            except InvalidProfile as exc:
                out.append(ProfileSummary(collection=collection, key=key, status="invalid", error=str(exc)[:300]))
                continue
            try:
                age: float | None = (now - datetime.fromisoformat(current.created_at)).total_seconds() / 3600
            except (TypeError, ValueError):
                age = None
            verdicts = [VerdictSummary(fusion=f, verdict=ev.verdict, judged_queries=ev.judged_queries(),
                                       evaluated_at=ev.evaluated_at, reasons=ev.reasons,
                                       differences=[] if ev.ground_truth is None else ev.ground_truth.differences)
                        for f, ev in sorted(current.evaluations.items())]
            out.append(ProfileSummary(
                collection=collection, key=key, status=status_of(current), verdicts=verdicts, profile=current,
                previous=previous,
                matches_config=configured is not None and configured.fingerprint == current.fingerprint,
                age_hours=None if age is None else round(age, 3)))
        return out

    async def current(self, parts: FingerprintParts) -> CalibrationProfile:
        """The stored profile of exactly this fingerprint, usable or not (to evaluate it); refuses when there is none."""
        profile = await self.get(parts.collection, parts.fingerprint)
        if profile is None:
            await self.resolve(parts)  # raises the precise refusal
        assert profile is not None
        return profile

    async def resolve(self, parts: FingerprintParts, fusion: FusionMode = "none") -> CalibrationProfile:
        """The usable profile for exactly this fingerprint (not failed in this fusion), or a refusal saying why."""
        profile = await self.get(parts.collection, parts.fingerprint)
        if profile is None:
            others = [s.profile for s in await self.summaries(parts.collection) if s.profile is not None]
            same_vec = [p for p in others if p.vector_name == parts.vector_name]
            diffs = []
            for p in same_vec:
                if p.feedback != parts.feedback:
                    diffs.append(f"feedback model {p.feedback!r} (configured: {parts.feedback!r})")
                if p.retriever != parts.retriever:
                    diffs.append(f"retriever {p.retriever!r} (configured: {parts.retriever!r})")
                if tuple(p.text_fields) != parts.text_fields:
                    diffs.append(f"[collection] text_fields {p.text_fields} (configured: {list(parts.text_fields)}: "
                                 "the feedback model would read other text)")
                if p.feedback == parts.feedback and p.retriever == parts.retriever and p.seed_source != parts.seed_source:
                    diffs.append(f"seeds from {p.seed_source!r} (this search: {parts.seed_source!r}; calibrate with "
                                 "the fusion the search uses)")
            if diffs:
                raise GuardrailError(
                    f"Collection {parts.collection!r} was calibrated for a different setup: "
                    + "; ".join(sorted(set(diffs)))
                    + ". Weights are tied to the feedback model, retriever and search mode they were trained with.",
                    fix="Calibrate for the configured models and this search mode, or switch back to the calibrated ones.",
                )
            raise GuardrailError(
                f"Collection {parts.collection!r} (vector {parts.vector_name or '(default)'!r}) has no calibration "
                f"for retriever {parts.retriever!r}, feedback model {parts.feedback!r} and seeds from "
                f"{parts.seed_source!r}: untrained weights give arbitrary results.",
                fix="Run calibrate with 50-200 real queries first (or ask explicitly for vanilla mode, a=1 b=0 c=0).",
            )
        if not profile.usable:
            raise GuardrailError(
                f"The calibration of {parts.collection!r} is unusable: {'; '.join(profile.reasons)}.",
                fix="Recalibrate with other queries or parameters, or a feedback model that disagrees usefully "
                    "with the retriever.",
            )
        ev = profile.evaluation(fusion)
        if ev is not None and ev.verdict == "failed":
            alt = (" For this collection the evaluation advises: " + ev.ground_truth.advice) if ev.ground_truth else ""
            raise GuardrailError(
                f"The calibration of {parts.collection!r} failed its ground-truth evaluation with fusion={fusion}: "
                f"{'; '.join(ev.reasons)}.{alt}",
                fix="Follow the advice, or use a feedback model that improves ranking as a plain reranker, then "
                    "calibrate and evaluate again.",
            )
        return profile


def status_of(p: CalibrationProfile) -> Literal["usable", "unusable", "failed-evaluation"]:
    if not p.usable:
        return "unusable"
    if p.evaluations and all(ev.verdict == "failed" for ev in p.evaluations.values()):
        return "failed-evaluation"
    return "usable"
