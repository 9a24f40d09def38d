"""A calibrated SciFact store on disk, as a user would have it, for the benchmarks that run servers.

``prepare`` writes a config file (edge engine, the shared int8 MiniLM retriever, BM25 feedback), indexes the 5,183
SciFact documents from their precomputed vectors and calibrates on 100 training queries, all through the public API.
``copy`` gives each server process its own copy (an embedded folder belongs to one process).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rf_mcp import TrainSettings, load_config, open_service, read_qrels, read_queries

COLLECTION = "scifact"


def write_config(folder: Path, shared: Path, data: Path, extra: str = "") -> Path:
    """A config file in ``folder`` (absolute paths: relative ones would resolve against that folder)."""
    path = folder / "config.toml"
    shared, data = shared.resolve(), data.resolve()
    path.write_text(f"""
[qdrant]
path = "{data}"
backend = "edge"

[retriever]
model = "local/all-MiniLM-L6-v2"
model_path = "{shared / "models" / "all-MiniLM-L6-v2-int8"}"
dim = 384
pooling = "mean"

[feedback]
type = "bm25"

[collection]
default_collection = "{COLLECTION}"
{extra}
""")
    return path


async def prepare(shared: Path, folder: Path) -> Path:
    """Build the store in ``folder`` (config.toml + data/); returns the config path."""
    sf = shared / "data" / "scifact"
    cfg = write_config(folder, shared, folder / "data")
    train = read_queries(sf / "queries.jsonl", ids=set(read_qrels(sf / "qrels" / "train.tsv")))[:100]
    async with open_service(load_config(cfg, env={})) as rf:
        await rf.index(COLLECTION, sf / "corpus.jsonl", vectors_path=sf / "embeddings" / "minilm_corpus.npy")
        report = await rf.calibrate(COLLECTION, [q.text for q in train], TrainSettings())
        if not report.profile.usable:
            raise SystemExit(f"the benchmark store's calibration is unusable: {report.message}")
    return cfg


def copy(shared: Path, source: Path, folder: Path, extra: str = "") -> Path:
    """A private copy of the store prepared in ``source``, with its own config; returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "data", folder / "data")
    return write_config(folder, shared, folder / "data", extra)


def distinct_queries(shared: Path, n: int) -> list[str]:
    """``n`` distinct SciFact queries (dev and test first, then the rest): none is a repeat, so every search embeds."""
    sf = shared / "data" / "scifact"
    texts = [q.text for q in read_queries(sf / "queries.jsonl")]
    seen = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if len(seen) < n:
        raise SystemExit(f"only {len(seen)} distinct queries, {n} asked for")
    return seen[:n]
