"""The composition root: builds the configured adapters and the service over them.

    async with open_service(load_config("config.toml")) as rf:
        result = await rf.search_precision("docs", "my question")

Nothing below this module chooses an adapter: the domain receives its engine and retriever, and asks
:class:`ConfiguredAdapters` for the feedback model, the trainer and the sparse encoder when it first needs them
(building those loads models, so listing tools or collections stays lean). Any adapter can be passed in instead
(tests pass in-memory doubles).
"""

from __future__ import annotations

from dataclasses import dataclass

from rf_mcp import factory
from rf_mcp.config import Config, QdrantSettings
from rf_mcp.domain.files import UNRESTRICTED, PathPolicy
from rf_mcp.domain.service import RFService
from rf_mcp.ports import Engine, Retriever, Scorer, SparseEncoder, Trainer

__all__ = ["ConfiguredAdapters", "open_service"]


@dataclass(frozen=True)
class ConfiguredAdapters:
    """The adapters the configuration names, built on request."""

    config: Config

    def scorer(self) -> Scorer:
        return factory.build_scorer(self.config.feedback)

    def trainer(self) -> Trainer:
        return factory.build_trainer(self.config.calibration.trainer)

    def sparse_encoder(self) -> SparseEncoder:
        return factory.build_sparse_encoder()

    def engine(self, settings: QdrantSettings) -> Engine:
        return factory.open_engine(settings)


def open_service(config: Config, *, engine: Engine | None = None, retriever: Retriever | None = None,
                 scorer: Scorer | None = None, trainer: Trainer | None = None,
                 sparse_encoder: SparseEncoder | None = None, files: PathPolicy = UNRESTRICTED,
                 read_only: bool = False) -> RFService:
    """The service for ``config``: the given adapters, and the configured ones for the rest."""
    adapters = ConfiguredAdapters(config)
    return RFService(config, engine=engine or adapters.engine(config.qdrant),
                     retriever=retriever or factory.build_retriever(config.retriever), adapters=adapters,
                     scorer=scorer, trainer=trainer, sparse_encoder=sparse_encoder, files=files, read_only=read_only)
