"""Adapters: the Qdrant engine, the retriever embedder, feedback-model scorers, the training library."""
