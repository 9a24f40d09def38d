"""Tool descriptions, written for an agent deciding which tool to call (short: they are sent with every tools/list)."""

LIST_COLLECTIONS = """Collections: vectors, sizes and RF calibration profiles (status, weights, verdicts, whether each
matches this server's models). Call it first: searches need a usable one."""

CALIBRATE = """Learn and store a collection's RF weights (a, b, c), REPLACING the current calibration (kept for
rollback_calibration). Give 50-200 REAL user queries (one of queries, queries_path, from_query_log). Cost:
queries x limit scores: warn if scoring is slow or paid."""

EVALUATE = """Measure on HELD-OUT queries (one of queries, queries_path, from_query_log). With judgments
(qrels_path): nDCG per mode, 95% intervals, advice and a gate (failed: searches refuse; inconclusive: they warn);
replace=true lets a smaller evaluation replace a stored verdict; uncalibrated: baselines only. Cost: ~23 scores per
query, +55 per judged."""

EVALUATE_READ_ONLY = """Measure the calibration on HELD-OUT queries (queries, queries_path or from_query_log: exactly
one); this read-only server stores nothing. With judgments (qrels_path): nDCG/recall per mode and the best mode. Cost:
~23 feedback scores per query."""

PRECISION = """RF search for the best TOP results: 5 seeds are graded by the feedback model, then the calibrated RF
query runs (with BM25 if fusion is sparse). Cost: 5 scores; vanilla=true: none. Refuses without a usable calibration
or when all seeds tie. Never compare scores across queries."""

RECALL = """RF search to FIND RELEVANT DOCUMENTS THE FIRST PASS MISSED: seeds (top, or seed_ids) are scored, RF
returns `budget` new ones, scored too, all merged by score. Cost: seeds + budget scores (default 25). Refuses like
rf_search_precision."""

INDEX = """Create or update a collection from a server-side JSONL corpus (_id, title, text): embeds and upserts each line
under a stable id (idempotent), with BM25 sparse vectors (sparse_only=true: only those)."""

ROLLBACK = """Swap a collection's current calibration with the previous one (a second call undoes the first), when a
new calibration turned out worse. Fails without a previous one."""

ADD_DOCUMENTS = """Add documents (the collection is created if missing) or replace them by id, keeping BM25 vectors and
statistics current. Warns when a calibration no longer fits."""

DELETE_DOCUMENTS = """Delete documents by doc_id or point id (as hits show them), keeping the BM25 statistics current.
Warns when a calibration no longer fits the collection's size."""
