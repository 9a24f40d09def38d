"""Tool descriptions, written for an agent deciding which tool to call (short: they are sent with every tools/list)."""

LIST_COLLECTIONS = """Collections: vectors, sizes and RF calibration profiles (status, weights, verdicts, whether each
matches this server's models). Call it first: RF searches need a usable matching calibration."""

CALIBRATE = """Learn and store a collection's RF weights (a, b, c), REPLACING the current calibration (the previous is
kept for rollback_calibration). Give 50-200 REAL user queries (queries, queries_path or from_query_log: exactly one).
Cost: queries x limit feedback scores (100 x 50 = 5,000): warn the user if scoring is slow or paid. No signal: stored
unusable."""

EVALUATE = """Measure the calibration on HELD-OUT queries (queries, queries_path or from_query_log: exactly one). With
judgments (qrels_path): nDCG/recall per mode, the best mode, and a gate (a failed verdict makes searches with that
fusion refuse the profile). Cost: ~23 feedback scores per query, +55 per judged one."""

EVALUATE_READ_ONLY = """Measure the calibration on HELD-OUT queries (queries, queries_path or from_query_log: exactly
one); this read-only server stores nothing. With judgments (qrels_path): nDCG/recall per mode and the best mode. Cost:
~23 feedback scores per query."""

PRECISION = """RF search for the best TOP results: 5 seeds are scored by the feedback model, then the calibrated RF
query runs (fused with BM25 if fusion is sparse). Cost: 5 feedback scores; vanilla=true: none. Refuses without a
usable calibration (run calibrate) or when all seeds score the same. Scores are not comparable across queries."""

RECALL = """RF search to FIND RELEVANT DOCUMENTS THE FIRST PASS MISSED: seeds (the top, or seed_ids) are scored, RF
returns `budget` new documents, scored too, all merged by feedback score. Cost: seeds + budget feedback scores
(default 25): warn before large budgets. Refuses like rf_search_precision."""

INDEX = """Create or update a collection from a server-side JSONL corpus (_id, title, text): embeds and upserts each
document under a stable id (idempotent), with BM25 sparse vectors (sparse_only=true: only those). Slow on CPU."""

ROLLBACK = """Swap a collection's current calibration with the previous one (a second call undoes the first), when a
new calibration turned out worse. Fails without a previous one."""

ADD_DOCUMENTS = """Add documents to a collection (created if missing) or replace them by id; embeds them and keeps BM25
vectors and statistics current. Warns when a calibration no longer fits the collection's size."""

DELETE_DOCUMENTS = """Delete documents by doc_id or point id (as hits show them), keeping the BM25 statistics current.
Warns when a calibration no longer fits the collection's size."""
