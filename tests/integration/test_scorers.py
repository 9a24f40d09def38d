"""Feedback models: BM25, fastembed dense from a local folder, and a cross-encoder the test exports itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rf_mcp.adapters.analyzer import CorpusStats
from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.config import FastembedFeedback
from rf_mcp.errors import ConfigError, ModelError
from rf_mcp.factory import build_scorer
from tests.common import MODEL, needs_shared

DOCS = ["Stem cells divide and differentiate into neurons.", "The stock market fell sharply today.",
        "Neurons derived from stem cells show tau phosphorylation."]


def test_bm25_prefers_matching_documents():
    s = BM25Scorer()
    scores = s.score_sync("stem cells neurons tau", DOCS, CorpusStats(s.analyzer, DOCS))
    assert scores[2] > scores[0] > scores[1] == 0.0
    assert s.identity.startswith("bm25(k1=1.2,b=0.75,analyzer=en-v1(")


def test_unknown_model_names_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="kind"):
        build_scorer(FastembedFeedback(model="no/such-model"))
    with pytest.raises(ModelError, match="is not a folder"):
        build_scorer(FastembedFeedback(model="x", model_path=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"has no model\.onnx"):
        build_scorer(FastembedFeedback(model="x", model_path=str(tmp_path / "empty")))


@needs_shared
def test_fastembed_dense_feedback_from_a_local_folder():
    s = build_scorer(FastembedFeedback(model="local/all-MiniLM-L6-v2", model_path=str(MODEL),
                                       kind="dense", dim=384, pooling="mean"))
    assert s.kind == "dense" and s.identity.startswith("fastembed-dense:local/all-MiniLM-L6-v2@sha256:")
    scores = s.score_sync("stem cells becoming neurons", DOCS)
    assert scores[1] < min(scores[0], scores[2]) and all(-1.0 <= x <= 1.0 for x in scores)


@needs_shared
def test_model_path_may_name_the_onnx_file_itself(tmp_path):
    """A folder means its model.onnx; a file is the ONNX file, its folder the one beside it or one up with tokenizer.json."""
    def identity(model_path: Path) -> str:
        return build_scorer(FastembedFeedback(model="local/m", model_path=str(model_path), kind="dense", dim=384)).identity

    repo = tmp_path / "repo"  # a Hugging Face layout: tokenizer files at the top, ONNX files in onnx/
    (repo / "onnx").mkdir(parents=True)
    shutil.copy(MODEL / "tokenizer.json", repo / "tokenizer.json")
    shutil.copy(MODEL / "model.onnx", repo / "onnx" / "model_quantized.onnx")
    assert identity(MODEL) == identity(MODEL / "model.onnx") == identity(repo / "onnx" / "model_quantized.onnx")
    (repo / "onnx" / "other.onnx").write_bytes(b"not the same model")
    assert identity(repo / "onnx" / "other.onnx") != identity(MODEL)  # the file named is the one hashed and loaded
    (repo / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match=r"has no tokenizer\.json"):
        identity(repo / "onnx" / "model_quantized.onnx")


def export_tiny_cross_encoder(folder: Path) -> Path:
    """A tiny (untrained) BERT-tokenized ONNX cross-encoder with a `logits` output, built offline."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    folder.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json", "vocab.txt"):
        shutil.copy(MODEL / f, folder / f)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.emb = torch.nn.Embedding(30522, 8)
            self.out = torch.nn.Linear(8, 1)

        def forward(self, input_ids, attention_mask, token_type_ids):
            m = attention_mask.unsqueeze(-1).float()
            h = self.emb(input_ids) * m * (1 + token_type_ids.unsqueeze(-1).float())
            return self.out(h.sum(1) / m.sum(1))

    x = torch.ones(2, 5, dtype=torch.long)
    axes = {n: {0: "b", 1: "s"} for n in ("input_ids", "attention_mask", "token_type_ids")}
    torch.onnx.export(Tiny(), (x, x, torch.zeros_like(x)), str(folder / "model.onnx"),
                      input_names=list(axes), output_names=["logits"], dynamic_axes={**axes, "logits": {0: "b"}},
                      opset_version=17, dynamo=False)
    return folder


@needs_shared
@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning",
                            "ignore:The feature will be removed:DeprecationWarning")  # inside torch's own exporter
def test_cross_encoder_path_detected_from_the_onnx_outputs(tmp_path):
    folder = export_tiny_cross_encoder(tmp_path / "tiny-ce")
    s = build_scorer(FastembedFeedback(model="test/tiny-ce", model_path=str(folder)))
    assert s.kind == "cross-encoder"  # kind = "auto": found the `logits` output
    assert s.identity.startswith("fastembed-cross-encoder:test/tiny-ce@sha256:")
    a = s.score_sync("stem cells", DOCS)
    assert len(a) == 3 and a == s.score_sync("stem cells", DOCS) and len(set(a)) == 3
    # the score depends on the (query, document) pair, as a cross-encoder's does
    assert s.score_sync("stock market", DOCS) != a
