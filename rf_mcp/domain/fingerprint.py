"""The calibration fingerprint: weights are valid only for this exact combination."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel

PROFILE_KEY_PREFIX = "rf_mcp:"


class FingerprintParts(BaseModel):
    collection: str
    vector_name: str
    retriever: str
    feedback: str
    strategy: str = "naive"

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def key(self) -> str:
        return PROFILE_KEY_PREFIX + self.fingerprint
