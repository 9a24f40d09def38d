"""The calibration fingerprint: weights are valid only for this exact combination."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel

PROFILE_KEY_PREFIX = "rf_mcp:"


DENSE_SEEDS = "dense"


def hybrid_seeds(sparse_vector: str, encoder: str) -> str:
    """The seed source of fusion = "sparse": the dense + BM25 top, fused with RRF."""
    return f"hybrid({sparse_vector},{encoder})"


class FingerprintParts(BaseModel):
    """What weights are fitted to: change any part and the weights are refused, not reused."""

    collection: str
    vector_name: str
    retriever: str
    feedback: str
    seed_source: str = DENSE_SEEDS
    strategy: str = "naive"
    text_fields: tuple[str, ...] = ()
    """The payload fields the feedback model reads: other fields are other documents to it."""

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def key(self) -> str:
        return PROFILE_KEY_PREFIX + self.fingerprint
