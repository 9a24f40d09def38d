"""Calibration profiles stored in the collection's own Qdrant metadata.

One top-level metadata key per fingerprint (``rf_mcp:<fingerprint>``) holding
``{"current": profile, "previous": profile | None}``. Qdrant merges metadata shallowly, so writing
one key never touches another profile; the previous calibration is kept until a newer one is
complete, and can be restored with :meth:`ProfileStore.rollback`. The store lives where the vectors
live, so it survives restarts and is shared by every process using the same Qdrant.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
from pydantic import ValidationError

from rf_mcp.domain.fingerprint import PROFILE_KEY_PREFIX, FingerprintParts
from rf_mcp.domain.models import CalibrationProfile, Evaluation, ProfileSummary, stored_form
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.ports import Engine


def _parse(raw: Any) -> CalibrationProfile | None:
    return None if raw is None else CalibrationProfile.model_validate(raw)


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

    async def save(self, profile: CalibrationProfile) -> str:
        key = PROFILE_KEY_PREFIX + profile.fingerprint
        async with self.lock(profile.collection, key):
            entry = await self._entry(profile.collection, key)
            previous = entry.get("current") if entry else None
            await self.engine.set_metadata(profile.collection, {key: {
                "current": stored_form(profile), "previous": previous}})
        return key

    async def get(self, collection: str, fingerprint: str) -> CalibrationProfile | None:
        entry = await self._entry(collection, PROFILE_KEY_PREFIX + fingerprint)
        try:
            return _parse(entry.get("current")) if entry else None
        except ValidationError:
            raise InputError(
                f"The stored calibration {fingerprint} of {collection!r} is unreadable (written by another version?).",
                fix="Recalibrate; the unreadable entry is left in place untouched.",
            ) from None

    async def set_evaluation(self, collection: str, fingerprint: str, evaluation: Evaluation) -> None:
        key = PROFILE_KEY_PREFIX + fingerprint
        async with self.lock(collection, key):
            entry = await self._entry(collection, key)
            if not entry or not entry.get("current"):
                raise InputError(f"No calibration {fingerprint} in {collection!r}.", fix="Run calibrate first.")
            current = CalibrationProfile.model_validate(entry["current"])
            current.evaluation = evaluation
            await self.engine.set_metadata(collection, {key: {
                "current": stored_form(current), "previous": entry.get("previous")}})

    async def rollback(self, collection: str, fingerprint: str) -> CalibrationProfile:
        key = PROFILE_KEY_PREFIX + fingerprint
        async with self.lock(collection, key):
            entry = await self._entry(collection, key)
            if not entry or not entry.get("previous"):
                raise InputError(f"Calibration {fingerprint} of {collection!r} has no previous version.",
                                 fix="Nothing to roll back to; recalibrate instead.")
            await self.engine.set_metadata(collection, {key: {
                "current": entry["previous"], "previous": entry.get("current")}})
            return CalibrationProfile.model_validate(entry["previous"])

    async def summaries(self, collection: str, configured: FingerprintParts | None = None) -> list[ProfileSummary]:
        meta = await self.engine.get_metadata(collection)
        now = datetime.now(UTC)
        out = []
        for key, entry in sorted(meta.items()):
            if not key.startswith(PROFILE_KEY_PREFIX):
                continue
            try:
                current = _parse(entry.get("current")) if isinstance(entry, dict) else None
                previous = _parse(entry.get("previous")) if isinstance(entry, dict) else None
                if current is None:
                    raise ValueError("no current profile")
            except (ValidationError, ValueError) as exc:
                out.append(ProfileSummary(collection=collection, key=key, status="corrupt", error=str(exc)[:300]))
                continue
            age = (now - datetime.fromisoformat(current.created_at)).total_seconds() / 3600
            out.append(ProfileSummary(
                collection=collection, key=key, status=status_of(current), profile=current, previous=previous,
                matches_config=configured is not None and configured.fingerprint == current.fingerprint,
                age_hours=round(age, 3)))
        return out

    async def current(self, parts: FingerprintParts) -> CalibrationProfile:
        """The stored profile of exactly this fingerprint, usable or not (to evaluate it); refuses when there is none."""
        profile = await self.get(parts.collection, parts.fingerprint)
        if profile is None:
            await self.resolve(parts)  # raises the precise refusal
        assert profile is not None
        return profile

    async def resolve(self, parts: FingerprintParts) -> CalibrationProfile:
        """The usable profile for exactly this fingerprint, or a refusal that says what differs."""
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
            if diffs:
                raise GuardrailError(
                    f"Collection {parts.collection!r} was calibrated for a different setup: "
                    + "; ".join(sorted(set(diffs)))
                    + ". Weights are tied to the feedback model and retriever they were trained with.",
                    fix="Calibrate for the configured models, or switch the config back to the calibrated ones.",
                )
            raise GuardrailError(
                f"Collection {parts.collection!r} (vector {parts.vector_name or '(default)'!r}) has no calibration "
                f"for retriever {parts.retriever!r} and feedback model {parts.feedback!r}: "
                "untrained weights give arbitrary results.",
                fix="Run calibrate with 50-200 real queries first (or ask explicitly for vanilla mode, a=1 b=0 c=0).",
            )
        if not profile.usable:
            raise GuardrailError(
                f"The calibration of {parts.collection!r} is unusable: {'; '.join(profile.reasons)}.",
                fix="Recalibrate with other queries or parameters, or a feedback model that disagrees usefully "
                    "with the retriever.",
            )
        ev = profile.evaluation
        if ev is not None and ev.verdict == "failed":
            raise GuardrailError(
                f"The calibration of {parts.collection!r} failed its ground-truth evaluation: "
                f"{'; '.join(ev.reasons)}.",
                fix="Use a feedback model that improves ranking as a plain reranker, then calibrate and evaluate again.",
            )
        return profile


def status_of(p: CalibrationProfile) -> Literal["usable", "unusable", "failed-evaluation"]:
    if not p.usable:
        return "unusable"
    if p.evaluation is not None and p.evaluation.verdict == "failed":
        return "failed-evaluation"
    return "usable"
