"""The training library against the numpy trainer (``rf_mcp.adapters.fit.VectorizedTrainer``, the default; the unit
suite calibrates with it through ``tests.doubles.NumpyTrainer``): the same jobs give the library's own numbers, and
the library-only behaviour (cancellation between epochs) is kept on the real trainers.
"""

from __future__ import annotations

import copy
import json
import time

import anyio
import pytest

from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.adapters.rf_library import LibraryTrainer
from rf_mcp.domain.calibration import judge, training_job
from rf_mcp.domain.models import Signal, Weights
from rf_mcp.ports import Scorer, TrainSettings
from tests import doubles

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def indexed_engine(tmp_path_factory: pytest.TempPathFactory) -> MemoryEngine:
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in doubles.corpus()) + "\n")
    rf = doubles.service()
    await rf.index("docs", corpus)
    assert isinstance(rf.engine, MemoryEngine)
    return rf.engine


def scorer(kind: str) -> Scorer | None:
    retriever = doubles.HashRetriever()
    return {
        "bm25": None,  # the unit suite's template calibration
        "overlap": doubles.FunctionScorer(doubles.overlap, "test-overlap"),
        "negated": doubles.FunctionScorer(lambda q, d: -doubles.overlap(q, d), "test-negated"),
        "agree": doubles.FunctionScorer(lambda q, d: float(retriever.embed(q) @ retriever.embed(d)), "test-agree"),
    }[kind]


@pytest.mark.parametrize("kind", ["bm25", "overlap", "negated", "agree"])
async def test_the_numpy_double_gives_the_library_outcome(indexed_engine, kind):
    """Same counts and correlation exactly, the same weights to float precision, the same usable verdict, and the
    same library evaluation: what the unit tests assert about calibrations holds for the real trainer."""
    rf = doubles.service(engine=indexed_engine, scorer=scorer(kind))
    target = await rf.target("docs")
    queries = doubles.queries()
    lib = await LibraryTrainer().train(training_job(target), queries, doubles.TRAIN)
    double = await doubles.NumpyTrainer().train(training_job(target), queries, doubles.TRAIN)
    assert (double.queries_with_pairs, double.queries_disagreeing, double.retriever_correlation) == (
        lib.queries_with_pairs, lib.queries_disagreeing, lib.retriever_correlation)
    assert double.weights == pytest.approx(lib.weights, abs=1e-4)  # the library trains float32 parameters

    def verdict(weights: tuple[float, float, float]) -> list[str]:
        signal = Signal(disagreement=lib.queries_disagreeing / len(queries), queries_total=len(queries),
                        queries_with_pairs=lib.queries_with_pairs, queries_disagreeing=lib.queries_disagreeing,
                        retriever_correlation=lib.retriever_correlation)
        return judge(Weights(a=weights[0], b=weights[1], c=weights[2]), signal)

    assert bool(verdict(double.weights)) == bool(verdict(lib.weights))
    held_out = doubles.queries(20, seed=5)
    assert await doubles.NumpyTrainer().evaluate(training_job(target), held_out, lib.weights, 10, 3) == \
        await LibraryTrainer().evaluate(training_job(target), held_out, lib.weights, 10, 3)


async def test_no_pair_is_refused_alike(indexed_engine):
    rf = doubles.service(engine=indexed_engine, scorer=doubles.ConstantScorer(1.0))
    target = await rf.target("docs")
    errors = []
    for trainer in (LibraryTrainer(), doubles.NumpyTrainer()):
        with pytest.raises(Exception) as err:
            await trainer.train(training_job(target), doubles.queries(12), doubles.TRAIN)
        errors.append((type(err.value), str(err.value)))
    assert errors[0] == errors[1] and "no signal to learn from" in errors[0][1]


# -- a cancelled calibration stops its work promptly (moved from tests/unit/test_security.py) ----------------------
@pytest.mark.parametrize("kind", ["library", "all-pairs"])
async def test_cancelled_calibration_stops_training_promptly(indexed_engine, kind, monkeypatch):
    """Cancel during the epoch loop of a very long fit: the call returns within a second and no epoch runs after it
    (the formula checks for cancellation once per epoch)."""
    import copy

    from rf_mcp.adapters import rf_library
    from rf_mcp.factory import build_trainer

    epochs = {"n": 0}
    for cls in (rf_library._CancellableFormula, rf_library._AllPairsFormula):
        def counted(self, *args, _forward=cls.forward):  # type: ignore[no-untyped-def]
            epochs["n"] += 1
            return _forward(self, *args)

        monkeypatch.setattr(cls, "forward", counted)
    rf = doubles.service(engine=copy.deepcopy(indexed_engine), trainer=build_trainer(kind))
    queries = doubles.queries()
    long_fit = TrainSettings(limit=20, epochs=100_000, patience=100_000, min_delta=0.0)
    prepared = anyio.Event()

    async def progress(done: float, total: float, message: str) -> None:
        if done >= total:  # every training query prepared: the epoch loop is next
            prepared.set()

    cancelled_at = 0.0
    async with anyio.create_task_group() as tg:
        async def calibrate() -> None:
            await rf.calibrate("docs", queries, long_fit, progress=progress)

        async def cancel_during_the_fit() -> None:
            nonlocal cancelled_at
            await prepared.wait()
            await anyio.sleep(0.3)  # well inside the 100,000 epochs
            cancelled_at = time.perf_counter()
            tg.cancel_scope.cancel()

        tg.start_soon(calibrate)
        tg.start_soon(cancel_during_the_fit)
    assert cancelled_at, "the data preparation never finished"
    assert time.perf_counter() - cancelled_at < 1.0
    ran = epochs["n"]
    await anyio.sleep(0.3)
    assert 0 < ran < 100_000 and epochs["n"] == ran  # it trained, then stopped: no epoch after the call returned
    assert await rf.list_profiles("docs") == [] or all(p.profile is None for p in await rf.list_profiles("docs"))


@pytest.mark.parametrize("kind", ["library", "all-pairs"])
async def test_the_real_trainers_skip_a_query_with_unusable_grades(indexed_engine, kind):
    """A query whose grades stay unusable gives no rows in the library's trainers, as in the numpy one (counted by the
    domain), and is not kept in the library's evaluation."""
    from rf_mcp.factory import build_trainer
    from tests.unit.test_skipped_queries import Unusable

    queries = doubles.queries()
    outcomes = []
    for trainer in (doubles.NumpyTrainer(), build_trainer(kind)):
        scorer = Unusable({queries[7]})
        rf = doubles.service(engine=copy.deepcopy(indexed_engine), scorer=scorer, trainer=trainer)
        report = await rf.calibrate("docs", queries, doubles.TRAIN)
        assert report.profile.signal.queries_skipped == 1, kind
        outcomes.append((report.profile.signal.queries_with_pairs, report.profile.signal.queries_disagreeing))
        held_out = [{"id": f"e{i}", "text": q} for i, q in enumerate(doubles.queries(20, seed=5))]
        scorer.bad.add(held_out[2]["text"])
        ev = (await rf.evaluate("docs", held_out, store=False)).evaluation
        assert ev is not None and ev.queries_skipped == 1 and ev.queries_evaluated <= 19
        await rf.close()
    if kind == "library":  # the same rows as the numpy trainer
        assert outcomes[0] == outcomes[1]
