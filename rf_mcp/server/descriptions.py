"""Tool descriptions, written for an agent deciding which tool to call."""

LIST_COLLECTIONS = """List Qdrant collections with their vectors, point counts and Relevance Feedback calibration
profiles (status usable / unusable / failed-evaluation, weights a b c, training signal, evaluation verdict, age,
and whether a profile matches this server's retriever and feedback model). Call this first: RF searches only work
on a collection with a usable profile that matches the configuration."""

CALIBRATE = """Learn the Relevance Feedback formula weights (a, b, c) for one collection with this server's
retriever and feedback model, and store them in the collection (the previous calibration is kept).
Required once before rf_search_precision / rf_search_recall, and again when the corpus, the query distribution
or the feedback model changes. Give 50-200 REAL, representative user queries (not synthetic ones).
Cost: (number of queries) x limit feedback-model scores (default limit 50: 100 queries = 5,000 scores); with a
slow or paid feedback model, say so to the user first. The report says whether the feedback model disagreed
with the retriever enough to learn from (signal); with no signal the profile is stored as unusable and searches
refuse it: then try other queries, a lower confidence_margin, or a different feedback model."""

EVALUATE = """Measure the calibrated formula on HELD-OUT queries (not the calibration ones). Reports the
qdrant-relevance-feedback library's metrics (results above the feedback model's threshold, DCG win rates, with
sample sizes): these only measure agreement with the feedback model, not relevance. With relevance judgments
(qrels_path, BEIR TSV) it also reports nDCG@1/3/10 and recall@10/100 for vanilla search, the feedback model as a
plain reranker, RF precision and RF recall, and acts as a gate: if the feedback model does not beat vanilla as a
reranker, or RF does not beat vanilla, the profile is marked failed and searches refuse it.
Cost: about 23 feedback scores per query, plus 55 per judged query."""

PRECISION = """Relevance Feedback search for the best TOP-1/TOP-3 results at low cost: the top 5 ANN results are
scored by the feedback model and Qdrant re-runs the search with the calibrated formula; the RF results are
returned directly. Cost: 5 feedback scores (one round). Prefer it over rf_search_recall when the user wants a
few precise answers. Weaker at deep cut-offs (top-10+). Scores are not comparable across queries: never
threshold them. Refuses (is_error) when the collection has no usable calibration for this retriever and
feedback model (run calibrate), when all seeds score the same (rephrase, or vanilla=true), or on sparse vectors."""

RECALL = """Relevance Feedback search to FIND RELEVANT DOCUMENTS THE FIRST PASS MISSED (research, legal, medical,
compliance): 5 seeds (the ANN top, or seed_ids you pass, e.g. results the user liked) are scored, Qdrant's RF
query returns `budget` new documents (seeds excluded), those are scored too, and everything is merged and sorted
by feedback score. Cost: seeds + budget feedback scores in two rounds (default 5 + 20 = 25, like reranking 25
documents, but RF can reach documents outside the initial ANN pool). Tell the user the cost for large budgets.
Refuses like rf_search_precision."""

INDEX = """Create or update a collection from a server-side JSONL corpus (BEIR layout: _id, title, text): embeds
every document with the retriever and upserts it under a stable id (re-running is idempotent). For a standalone
start; disabled when the server runs read-only. Slow for large corpora (tens of documents per second on CPU)."""

ROLLBACK = """Restore the previous calibration of a collection for this server's retriever and feedback model (the
current one becomes the previous, so a second call undoes the first). Use it when a new calibration or its
evaluation turned out worse. Fails if there is no previous calibration."""
