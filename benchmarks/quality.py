"""Quality benchmark: RF vs vanilla search vs reranking at equal feedback cost, on BEIR SciFact with ground truth.

    python -m benchmarks.quality --shared ../shared          # full run (~10-20 min here), writes benchmarks/RESULTS.md
    python -m benchmarks.quality --shared ../shared --mini   # smoke run on scifact-mini (seconds)

Retriever: all-MiniLM-L6-v2 from the precomputed vectors in ``scifact/embeddings`` (queries too; any
other query is embedded with the shared ONNX model). Feedback models, all through the product's scorer
interface, calibrate and evaluate code: BM25 (the product's lexical scorer), all-mpnet-base-v2 from its
cached vectors (the negative control: weaker than the retriever here), and a fused model (BM25 + mpnet,
each scaled by its own spread). Calibration on training queries (qrels/train.tsv ids), evaluation on
the judged queries of ``--qrels`` (default qrels/dev.tsv).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from qdrant_client import models

from rf_mcp.adapters.embedder import Embedder
from rf_mcp.adapters.rf_library import payload_text
from rf_mcp.adapters.scorers import Scorer
from rf_mcp.adapters.scorers.bm25 import BM25Scorer, CorpusStats, tokenize
from rf_mcp.config import Config, QdrantSettings, RetrieverSettings
from rf_mcp.domain import search
from rf_mcp.domain.datasets import read_jsonl, read_qrels, read_queries
from rf_mcp.domain.evaluation import rerank_top, with_tail
from rf_mcp.domain.metrics import all_metrics
from rf_mcp.domain.models import VANILLA, ProfileRef, TrainSettings
from rf_mcp.domain.service import RFService

OUT = Path(__file__).parent
METRICS = ["ndcg_at_1", "ndcg_at_3", "ndcg_at_10", "recall_at_10", "recall_at_100"]
DEPTH = 100


class PrecomputedEmbedder(Embedder):
    """MiniLM query vectors from the shared cache; other texts go through the real ONNX model."""

    def __init__(self, settings: RetrieverSettings, table: dict[str, np.ndarray]) -> None:
        super().__init__(settings)
        self.table = table

    def embed_query_sync(self, text: str) -> np.ndarray:
        hit = self.table.get(text)
        return hit if hit is not None else super().embed_query_sync(text)


class CachedDenseScorer(Scorer):
    """A dense feedback model from cached vectors: cosine(query, document)."""

    def __init__(self, name: str, docs: dict[str, np.ndarray], queries: dict[str, np.ndarray]) -> None:
        self.identity = f"cached-dense:{name}"
        self.docs, self.queries = docs, queries

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        q = self.queries[query]
        return [float(np.dot(q, self.docs[d])) for d in documents]


class FusedScorer(Scorer):
    """Sum of several feedback models, each divided by its score spread (std over a calibration sample)."""

    def __init__(self, parts: list[tuple[Scorer, float]]) -> None:
        self.parts = parts
        self.identity = "fused(" + "+".join(f"{s.identity}/{w:.4g}" for s, w in parts) + ")"

    async def bind(self, collection, corpus_texts) -> None:
        for s, _ in self.parts:
            await s.bind(collection, corpus_texts)

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        total = np.zeros(len(documents))
        for s, spread in self.parts:
            total += np.asarray(await s.score(query, documents)) / spread
        return total.tolist()


def load(shared: Path, mini: bool, queries_path: str | None, qrels_path: str | None) -> dict[str, Any]:
    sf = shared / "data" / "scifact"
    corpus_file = (shared / "data" / "scifact-mini" if mini else sf) / "corpus.jsonl"
    ids = json.loads((sf / "embeddings" / "minilm_ids.json").read_text())
    corpus_vecs = np.load(sf / "embeddings" / "minilm_corpus.npy")
    query_vecs = np.load(sf / "embeddings" / "minilm_queries.npy")
    pos = {d: i for i, d in enumerate(ids["corpus_ids"])}
    docs = [obj for _, obj in read_jsonl(corpus_file, "corpus")]
    text = {d["_id"]: payload_text(d, ["title", "text"]) for d in docs}  # the text the product's scorers read
    all_queries = {q.id: q.text for q in read_queries(sf / "queries.jsonl")}
    qpos = {q: i for i, q in enumerate(ids["query_ids"])}
    mp_ids = json.loads((sf / "embeddings" / "mpnet_ids.json").read_text())
    mp_docs = np.load(sf / "embeddings" / "mpnet_corpus.npy")
    mp_q = np.load(sf / "embeddings" / "mpnet_queries.npy")
    qrels = read_qrels(qrels_path or (shared / "data" / "scifact-mini" / "qrels" / "test.tsv" if mini else sf / "qrels" / "dev.tsv"))
    eval_queries = [q for q in read_queries(queries_path or sf / "queries.jsonl", ids=set(qrels))]
    train_ids = list(dict.fromkeys(read_qrels(sf / "qrels" / "train.tsv")))
    mp_qids = set(mp_ids["query_ids"])
    train = [all_queries[i] for i in train_ids if i in mp_qids][: (40 if mini else 100)]
    if mini:
        eval_queries = eval_queries[:20]
    return {
        "corpus_file": corpus_file, "docs": docs,
        "vectors": np.asarray([corpus_vecs[pos[d["_id"]]] for d in docs], dtype=np.float32),
        "query_table": {all_queries[q]: query_vecs[i] for q, i in qpos.items() if q in all_queries},
        "mpnet_docs": {text[d]: mp_docs[pos[d]] for d in text},
        "mpnet_queries": {all_queries[q]: mp_q[i] for i, q in enumerate(mp_ids["query_ids"])},
        "train": train, "eval": eval_queries, "qrels": qrels,
    }


def bm25_sparse(texts: list[str], stats: CorpusStats, vocab: dict[str, int], k1=1.2, b=0.75):
    out = []
    for t in texts:
        toks = tokenize(t)
        tf: dict[str, int] = {}
        for w in toks:
            tf[w] = tf.get(w, 0) + 1
        norm = k1 * (1 - b + b * len(toks) / stats.avgdl)
        idx = [vocab.setdefault(w, len(vocab)) for w in tf]
        val = [stats.idf(w) * f * (k1 + 1) / (f + norm) for w, f in tf.items()]
        out.append(models.SparseVector(indices=idx, values=val))
    return out


def query_sparse(text: str, vocab: dict[str, int]) -> models.SparseVector:
    terms = sorted({vocab[w] for w in tokenize(text) if w in vocab})
    return models.SparseVector(indices=terms or [0], values=[1.0] * len(terms) if terms else [0.0])


def bootstrap(diffs: Sequence[float], n: int = 10_000, seed: int = 7) -> tuple[float, float, float]:
    rng = random.Random(seed)
    k = len(diffs)
    means = sorted(sum(diffs[rng.randrange(k)] for _ in range(k)) / k for _ in range(n))
    return statistics.fmean(diffs), means[int(0.025 * n)], means[int(0.975 * n)]


async def setup(args: argparse.Namespace) -> dict[str, Any]:
    """Data, an embedded Qdrant with SciFact indexed (dense + BM25 sparse vectors), and the shared adapters."""
    shared = Path(args.shared)
    data = load(shared, args.mini, args.queries, args.qrels)
    tmp = Path(tempfile.mkdtemp(prefix="rf-quality-"))
    # qdrant-client's engine: the hybrid rows use its sparse vectors and fusion API directly
    cfg = Config(qdrant=QdrantSettings(path=str(tmp / "data"), backend="local"), retriever=RetrieverSettings(
        model="local/all-MiniLM-L6-v2", model_path=str(shared / "models" / "all-MiniLM-L6-v2-int8"), dim=384,
        pooling="mean"))
    embedder = PrecomputedEmbedder(cfg.retriever, data["query_table"])
    base = RFService(cfg, embedder=embedder, scorer=BM25Scorer())
    engine = base.engine
    t0 = time.perf_counter()
    await engine.run(lambda c: c.create_collection("scifact", vectors_config={"dense": models.VectorParams(
        size=384, distance=models.Distance.COSINE)}, sparse_vectors_config={"bm25": models.SparseVectorParams()}))
    np.save(tmp / "vectors.npy", data["vectors"])
    await base.index("scifact", data["corpus_file"], vectors_path=tmp / "vectors.npy")
    texts = [payload_text(d, ["title", "text"]) for d in data["docs"]]
    stats, vocab = CorpusStats(texts), {}
    sparse = bm25_sparse(texts, stats, vocab)
    from rf_mcp.domain.indexing import point_id
    await engine.run(lambda c: c.update_vectors("scifact", points=[
        models.PointVectors(id=point_id(d["_id"]), vector={"bm25": s}) for d, s in zip(data["docs"], sparse)]))
    return {"data": data, "cfg": cfg, "embedder": embedder, "base": base, "engine": engine, "vocab": vocab,
            "index_seconds": time.perf_counter() - t0}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = await setup(args)
    data, cfg, embedder, base, engine, vocab = (env[k] for k in ("data", "cfg", "embedder", "base", "engine", "vocab"))
    index_seconds = env["index_seconds"]
    bm25 = BM25Scorer()
    mpnet = CachedDenseScorer("all-mpnet-base-v2-int8", data["mpnet_docs"], data["mpnet_queries"])

    # spreads for the fused model, from the training queries' top candidates
    sample_b, sample_m = [], []
    target = await base.target("scifact")
    for q in data["train"][:30]:
        pts = await engine.nearest("scifact", "dense", embedder.embed_query_sync(q), 25)
        ts = [target.text(p.payload) for p in pts]
        sample_b += await bm25.score(q, ts)
        sample_m += await mpnet.score(q, ts)
    fused = FusedScorer([(BM25Scorer(), float(np.std(sample_b))), (mpnet, float(np.std(sample_m)))])

    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
                               "mini": args.mini, "eval_queries": len(data["eval"]), "train_queries": len(data["train"]),
                               "index_seconds": round(index_seconds, 1), "feedback_models": {}}
    per_query: dict[str, list[float]] = {}
    for name, scorer in (("bm25", bm25), ("mpnet", mpnet), ("fused", fused)):
        rf = RFService(cfg, engine=engine, embedder=embedder, scorer=scorer)
        t1 = time.perf_counter()
        cal = await rf.calibrate("scifact", data["train"], TrainSettings())
        cal_s = time.perf_counter() - t1
        ev = await rf.evaluate("scifact", data["eval"], qrels=data["qrels"])
        target = await rf.target("scifact")
        profile = cal.profile
        ref = ProfileRef(fingerprint=profile.fingerprint, weights=profile.weights, created_at=profile.created_at)
        rows: dict[str, list[dict[str, float]]] = {}
        timing = {"retrieval": [], "scoring": [], "rf_query": []}
        refused = 0
        for q in data["eval"]:
            rels = data["qrels"][q.id]
            qv = embedder.embed_query_sync(q.text)
            t = time.perf_counter()
            van = await engine.nearest("scifact", "dense", qv, DEPTH)
            retrieval = time.perf_counter() - t
            van_ids = [p.payload["doc_id"] for p in van]
            t = time.perf_counter()
            pool = await scorer.score(q.text, [target.text(p.payload) for p in van[:25]])
            score25 = time.perf_counter() - t

            add = lambda method, ranked: rows.setdefault(method, []).append(all_metrics(ranked, rels))  # noqa: E731
            add("vanilla", van_ids)
            add("rerank top-5", rerank_top(van_ids, pool, 5))
            add("rerank top-25", rerank_top(van_ids, pool, 25))
            through = await search.precision(target, q.text, VANILLA, ref, limit=DEPTH, score_seeds=False)
            add("vanilla through RF (a=1,b=0,c=0)", [h.doc_id for h in through.hits])
            hybrid = await engine.run(lambda c: c.query_points("scifact", prefetch=[
                models.Prefetch(query=qv.tolist(), using="dense", limit=DEPTH),
                models.Prefetch(query=query_sparse(q.text, vocab), using="bm25", limit=DEPTH)],
                query=models.FusionQuery(fusion=models.Fusion.RRF), limit=DEPTH, with_payload=True).points)
            add("hybrid dense+BM25 (RRF)", [p.payload["doc_id"] for p in hybrid])
            try:
                prec = await search.precision(target, q.text, profile.weights, ref, limit=DEPTH)
                rec = await search.recall(target, q.text, profile.weights, ref, budget=20)
                prec_ids = [h.doc_id for h in prec.hits]
                rec_ids = [h.doc_id for h in rec.hits]
                seeds = await engine.nearest("scifact", "dense", qv, 5, with_vectors=True)
                seed_scores = await scorer.score(q.text, [target.text(p.payload) for p in seeds])
                rfq = models.RelevanceFeedbackQuery(relevance_feedback=models.RelevanceFeedbackInput(
                    target=qv.tolist(), feedback=[models.FeedbackItem(example=p.vector["dense"], score=s)
                                                  for p, s in zip(seeds, seed_scores)],
                    strategy=models.NaiveFeedbackStrategy(naive=models.NaiveFeedbackStrategyParams(
                        **profile.weights.model_dump()))))
                fusedrf = await engine.run(lambda c: c.query_points("scifact", prefetch=[
                    models.Prefetch(query=rfq, using="dense", limit=DEPTH),
                    models.Prefetch(query=query_sparse(q.text, vocab), using="bm25", limit=DEPTH)],
                    query=models.FusionQuery(fusion=models.Fusion.RRF), limit=DEPTH, with_payload=True).points)
                fused_ids = [p.payload["doc_id"] for p in fusedrf]
                timing["retrieval"].append(retrieval * 1000)
                timing["scoring"].append(prec.timings_ms.get("scoring", 0.0))
                timing["rf_query"].append(prec.timings_ms.get("rf_query", 0.0))
            except Exception as exc:  # a guardrail refusal: the user gets vanilla results
                if type(exc).__name__ != "GuardrailError":
                    raise
                refused += 1
                prec_ids = rec_ids = fused_ids = van_ids
            add("RF precision (5 seeds)", prec_ids)
            add("RF recall (5 + 20)", with_tail(rec_ids, van_ids))
            add("RF precision + BM25 (RRF)", fused_ids)
            timing.setdefault("rerank25_scoring", []).append(score25 * 1000)
        costs = {"vanilla": 0, "rerank top-5": 5, "rerank top-25": 25, "vanilla through RF (a=1,b=0,c=0)": 0,
                 "hybrid dense+BM25 (RRF)": 0, "RF precision (5 seeds)": 5, "RF recall (5 + 20)": 25,
                 "RF precision + BM25 (RRF)": 5}
        table = {m: {"cost": costs[m], **{k: round(statistics.fmean(r[k] for r in rs), 4) for k in METRICS}}
                 for m, rs in rows.items()}
        nd = {m: [r["ndcg_at_10"] for r in rs] for m, rs in rows.items()}
        for m, v in nd.items():
            per_query[f"{name}:{m}"] = v
        ci = {}
        for a, b in (("RF precision (5 seeds)", "vanilla"), ("RF precision (5 seeds)", "rerank top-5"),
                     ("RF recall (5 + 20)", "rerank top-25"), ("RF precision (5 seeds)", "hybrid dense+BM25 (RRF)"),
                     ("RF precision + BM25 (RRF)", "hybrid dense+BM25 (RRF)")):
            mean, lo, hi = bootstrap([x - y for x, y in zip(nd[a], nd[b])])
            ci[f"{a} - {b}"] = [round(mean, 4), round(lo, 4), round(hi, 4)]
        e = ev.evaluation
        results["feedback_models"][name] = {
            "identity": scorer.identity, "weights": profile.weights.model_dump(), "usable": profile.usable,
            "signal": profile.signal.model_dump(), "calibration_seconds": round(cal_s, 1),
            "verdict": e.verdict, "verdict_reasons": e.reasons, "refused_queries": refused,
            "library": {"queries": e.queries, "evaluated": e.queries_evaluated, "rf_above": e.rf_above_threshold,
                        "vanilla_above": e.vanilla_above_threshold, "relative_gain_pct": e.relative_gain_pct,
                        "dcg_rf_wins_pct": e.dcg_rf_wins_pct, "dcg_vanilla_wins_pct": e.dcg_vanilla_wins_pct,
                        "dcg_ties_pct": e.dcg_ties_pct},
            "table": table, "ci_ndcg10": ci,
            "ms_per_query": {k: round(statistics.median(v), 2) for k, v in timing.items() if v},
        }
        same = all(abs(x - y) < 1e-12 for x, y in zip(nd["vanilla"], nd["vanilla through RF (a=1,b=0,c=0)"]))
        results["feedback_models"][name]["vanilla_through_rf_equals_vanilla"] = same
    await base.close()
    return results


def markdown(r: dict[str, Any], command: str) -> str:
    lines = [f"# Quality benchmark ({'scifact-mini smoke run' if r['mini'] else 'BEIR SciFact'})", "",
             f"Command: `{command}`  ", f"Date: {r['date']}  ", f"Machine: {r['machine']}, 2 cores  ",
             f"Training queries: {r['train_queries']}; evaluation queries (judged): {r['eval_queries']}  ",
             "Engine latency (edge vs local, HNSW, a whole precision search split into parts): "
             "[LATENCY.md](LATENCY.md), from `python -m benchmarks.latency --shared ../shared`.", ""]
    for name, fm in r["feedback_models"].items():
        w = fm["weights"]
        lines += [f"## Feedback model: {name} (`{fm['identity']}`)", "",
                  f"Calibration: a={w['a']:.4g} b={w['b']:.4g} c={w['c']:.4g}, disagreement "
                  f"{fm['signal']['disagreement']:.1%}, usable={fm['usable']} ({fm['calibration_seconds']} s). "
                  f"Product evaluation gate: **{fm['verdict']}**" + (f" ({'; '.join(fm['verdict_reasons'])})" if fm['verdict_reasons'] else "") + ".", "",
                  "| method | feedback calls/query | nDCG@1 | nDCG@3 | nDCG@10 | R@10 | R@100 |", "|---|---|---|---|---|---|---|"]
        for m, row in fm["table"].items():
            lines.append(f"| {m} | {row['cost']} | " + " | ".join(f"{row[k]:.3f}" for k in METRICS) + " |")
        lib = fm["library"]
        lines += ["", f"Library metrics (agreement with the feedback model, not relevance), {lib['evaluated']}/"
                  f"{lib['queries']} queries: RF {lib['rf_above']} vs vanilla {lib['vanilla_above']} results above "
                  f"threshold (gain {lib['relative_gain_pct']}%), DCG wins RF {lib['dcg_rf_wins_pct']}% / vanilla "
                  f"{lib['dcg_vanilla_wins_pct']}% / ties {lib['dcg_ties_pct']}%.", "",
                  "Paired bootstrap (10,000 resamples), nDCG@10 difference, mean [95% CI]:", ""]
        for k, (m, lo, hi) in fm["ci_ndcg10"].items():
            lines.append(f"- {k}: {m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
        t = fm["ms_per_query"]
        lines += ["", "Median ms per query: " + ", ".join(f"{k} {v}" for k, v in t.items()) +
                  f". Vanilla through RF equals vanilla: {fm['vanilla_through_rf_equals_vanilla']}. "
                  f"Queries refused by the guardrails (ranked as vanilla): {fm['refused_queries']}.", ""]
    return "\n".join(lines)


def plot(r: dict[str, Any], path: Path) -> bool:
    """nDCG@10 against feedback calls per query: colour = method, marker = feedback model; zero-cost rows as lines."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    marks = {"bm25": "o", "mpnet": "s", "fused": "^"}
    methods = [m for m in next(iter(r["feedback_models"].values()))["table"] if m != "vanilla through RF (a=1,b=0,c=0)"]
    colours = dict(zip(methods, plt.get_cmap("tab10").colors))
    first = next(iter(r["feedback_models"].values()))["table"]
    for m, style in (("vanilla", ":"), ("hybrid dense+BM25 (RRF)", "--")):
        ax.axhline(first[m]["ndcg_at_10"], color=colours[m], linestyle=style, label=f"{m} (0 calls)")
    for name, fm in r["feedback_models"].items():
        for m, row in fm["table"].items():
            if row["cost"] == 0:
                continue
            jitter = {"bm25": -0.4, "mpnet": 0.0, "fused": 0.4}.get(name, 0.0)
            ax.scatter(row["cost"] + jitter, row["ndcg_at_10"], marker=marks.get(name, "o"), color=colours[m], s=60)
    for m in methods:
        if first[m]["cost"]:
            ax.scatter([], [], color=colours[m], marker="o", label=m)
    for name, mk in marks.items():
        ax.scatter([], [], color="grey", marker=mk, label=f"feedback: {name}")
    ax.set_xlabel("feedback-model calls per query")
    ax.set_ylabel("nDCG@10")
    ax.set_title(f"SciFact ({r['eval_queries']} judged queries): quality vs feedback cost")
    ax.legend(fontsize=7, loc="center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--mini", action="store_true", help="smoke run on scifact-mini")
    p.add_argument("--queries", help="queries JSONL (default: scifact/queries.jsonl)")
    p.add_argument("--qrels", help="relevance judgments TSV (default: scifact/qrels/dev.tsv)")
    p.add_argument("--out", default=str(OUT), help="folder for RESULTS.md / quality.json / quality.png")
    p.add_argument("--replot", action="store_true", help="only redraw the PNG from the JSON of a previous run")
    a = p.parse_args()
    if a.replot:
        stem = "quality-mini" if a.mini else "quality"
        plot(json.loads((Path(a.out) / f"{stem}.json").read_text()), Path(a.out) / f"{stem}.png")
        return
    r = anyio.run(run, a)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "quality-mini" if a.mini else "quality"
    (out / f"{stem}.json").write_text(json.dumps(r, indent=2))
    command = "python -m benchmarks.quality --shared ../shared" + (" --mini" if a.mini else "")
    md = markdown(r, command)
    (out / ("RESULTS-mini.md" if a.mini else "RESULTS.md")).write_text(md)
    plot(r, out / f"{stem}.png")
    print(md)


if __name__ == "__main__":
    main()
