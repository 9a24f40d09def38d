"""Tool descriptions, written for an agent deciding which tool to call (short: they are sent with every tools/list)."""

LIST_COLLECTIONS = """Collections with their vectors, sizes and Relevance Feedback calibration profiles (status, weights,
signal, evaluation verdicts, whether a profile matches this server's models). Call it first: RF searches need a usable
calibration matching the configuration."""

CALIBRATE = """Learn the RF formula weights (a, b, c) for a collection with this server's retriever and feedback model,
and store them (this REPLACES the current calibration; the previous one is kept for rollback_calibration). Needed once
before RF searches, and again when the corpus, the queries or the feedback model change. Give 50-200 REAL user queries.
Cost: queries x limit feedback scores (100 x 50 = 5,000): tell the user first when scoring is slow or paid. An
unusable result (no signal) is stored as such and searches refuse it."""

EVALUATE = """Measure the calibration on HELD-OUT queries. With judgments (qrels_path): nDCG/recall of vanilla,
hybrid, reranking and RF with 95% intervals, advice, and a gate (failed: searches in that fusion refuse the
calibration; inconclusive: they warn). A verdict on fewer judged queries than the stored one needs replace=true
to be stored. Uncalibrated: qrels measure the baselines. Cost: ~23 scores per query, +55 per judged query."""

EVALUATE_READ_ONLY = """Measure the current calibration on HELD-OUT queries and report it (this read-only server stores
nothing: the verdict does not change what searches do). With relevance judgments (qrels_path): nDCG/recall of
vanilla, hybrid, reranking and RF, and the best mode for this collection. Cost: ~23 feedback scores per query."""

PRECISION = """Relevance Feedback search for the best TOP results at low cost: 5 seeds are scored by the feedback
model and the search re-runs with the calibrated formula (fused with BM25 keyword search when fusion is sparse).
Cost: 5 feedback scores. vanilla=true: no feedback at all (plain or hybrid search), to compare. Refuses (is_error)
without a usable calibration for this setup (run calibrate), when all seeds score the same, or on sparse vectors.
Scores are not comparable across queries: never threshold them."""

RECALL = """Relevance Feedback search to FIND RELEVANT DOCUMENTS THE FIRST PASS MISSED (research, legal, medical):
seeds (the top results, or seed_ids you pass) are scored, RF returns `budget` new documents, those are scored too,
and everything is merged by feedback score. Cost: seeds + budget feedback scores (default 25) in two rounds; tell
the user before large budgets. Refuses like rf_search_precision."""

INDEX = """Create or update a collection from a server-side JSONL corpus (_id, title, text) inside the server's data
roots: embeds each document and upserts it under a stable id (re-running is idempotent), with a BM25 sparse vector.
sparse_only=true (re)writes only the sparse vectors from the stored text. Slow for large corpora on CPU."""

ROLLBACK = """Swap the current calibration of a collection with the previous one (so a second call undoes the first):
use it when a new calibration or its evaluation turned out worse. Fails when there is no previous calibration."""
