"""A third-party feedback model for rf-mcp, as a plug-in package would publish it.

Its distribution declares, in pyproject.toml:

    [project.entry-points."rf_mcp.scorers"]
    overlap = "rf_mcp_example_scorer:factory"

and users select it with ``[feedback] type = "overlap"`` (options under ``[feedback.options]``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rf_mcp import Scorer
from rf_mcp.config import FeedbackSettings

WORD = re.compile(r"[a-z0-9]{3,}")


class OverlapScorer(Scorer):
    """Share of the query's words found in the document, with an optional title bonus."""

    def __init__(self, min_len: int = 3) -> None:
        self.min_len = min_len
        self.identity = f"example-overlap(min_len={min_len})"
        self.calls = 0

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        self.calls += 1
        words = {w for w in WORD.findall(query.lower()) if len(w) >= self.min_len}
        return [len(words & set(WORD.findall(d.lower()))) / max(1, len(words)) for d in documents]


def factory(settings: FeedbackSettings) -> Scorer:
    return OverlapScorer(min_len=int(settings.options.get("min_len", 3)))
