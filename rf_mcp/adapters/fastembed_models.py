"""Loading fastembed models by name (downloaded by fastembed) or from a local ONNX model.

A local model (``model_path``: its folder, or the ONNX file itself) is registered with fastembed's
``add_custom_model`` and opened with ``specific_model_path``, so the same code serves users with internet
and offline machines.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from rf_mcp.config import ModelSettings, download_env
from rf_mcp.errors import ConfigError, ModelError

_register_lock = threading.Lock()


def known_models(cls: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in cls.list_supported_models():
        out[d["model"].lower()] = d
    return out


def file_digest(path: Path, limit: int = 64 * 1024 * 1024) -> str:
    """A short content hash of a model file: part of the model's identity."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(limit))
    return h.hexdigest()[:12]


class LocalModel(NamedTuple):
    """A local model: the folder fastembed opens (it holds tokenizer.json) and the ONNX file, relative to it."""

    folder: Path
    file: str


def local_model(settings: ModelSettings, section: str) -> LocalModel | None:
    """The local model ``model_path`` names: a folder (its model.onnx), or the ONNX file itself, whose folder is the
    one beside it or one up holding tokenizer.json (a Hugging Face repository's onnx/ folder). None: load by name."""
    if settings.model_path is None:
        return None
    path = Path(settings.model_path).expanduser()
    fix = "Point model_path at a folder holding model.onnx and tokenizer.json, or at the ONNX file itself."
    if path.is_dir():
        found = LocalModel(path, "model.onnx")
    elif path.is_file():
        folder = next((f for f in (path.parent, path.parent.parent) if (f / "tokenizer.json").is_file()), path.parent)
        found = LocalModel(folder, path.relative_to(folder).as_posix())
    else:
        raise ModelError(f"[{section}].model_path {path} is not a folder or a file.",
                         fix=fix + " Remove it to load the model by name.")
    for name in (found.file, "tokenizer.json"):
        if not (found.folder / name).is_file():
            raise ModelError(f"[{section}].model_path {found.folder} has no {name}.",
                             fix=f"{fix} Copy the model's ONNX file and tokenizer files there (see config.example.toml).")
    return found


def identity(settings: ModelSettings, local: LocalModel | None) -> str:
    if local is None:
        return settings.model
    return f"{settings.model}@sha256:{file_digest(local.folder / local.file)}"


def register_custom(cls: Any, settings: ModelSettings, local: LocalModel, section: str, *, embedding: bool,
                    normalize: bool = True) -> None:
    """Register a local model under its configured name unless fastembed knows it already."""
    from fastembed.common.model_description import ModelSource, PoolingType

    with _register_lock:
        if settings.model.lower() in known_models(cls):
            return
        kwargs: dict[str, Any] = {"model": settings.model, "sources": ModelSource(hf=settings.model),
                                  "model_file": local.file}
        if embedding:
            if settings.dim is None:
                raise ConfigError(
                    f"[{section}].dim is missing: fastembed does not know the model {settings.model!r}.",
                    fix=f"Set [{section}].dim (and pooling) for a local model folder.",
                )
            kwargs["dim"] = settings.dim
            if cls.__name__ == "TextEmbedding":
                kwargs["pooling"] = PoolingType.CLS if settings.pooling == "cls" else PoolingType.MEAN
                kwargs["normalization"] = normalize
        cls.add_custom_model(**kwargs)


def load(cls: Any, settings: ModelSettings, section: str, *, embedding: bool, normalize: bool = True) -> Any:
    """The model, loaded (``normalize``: L2-normalise the embeddings of a local dense model)."""
    local = local_model(settings, section)
    folder = local.folder if local else None
    if local is not None:
        register_custom(cls, settings, local, section, embedding=embedding, normalize=normalize)
    elif settings.model.lower() not in known_models(cls):
        raise ConfigError(
            f"[{section}].model {settings.model!r} is not a model fastembed can download.",
            fix=f"Use a name from fastembed's list, or set [{section}].model_path to a local ONNX model.",
        )
    kwargs: dict[str, Any] = {}
    if folder is not None:
        kwargs["specific_model_path"] = str(folder)
    if settings.threads:
        kwargs["threads"] = settings.threads
    try:
        return cls(settings.model, **kwargs) if folder is not None else by_name(cls, settings, section, kwargs)
    except (ConfigError, ModelError):
        raise
    except Exception as exc:
        where = f"from {folder}" if folder else "by name (needs internet the first time)"
        raise ModelError(
            f"Could not load [{section}] model {settings.model!r} {where}: {type(exc).__name__}: {exc}",
            fix=f"Check [{section}].model / model_path; offline, point model_path at a local ONNX model.",
        ) from None


DOWNLOAD_HOSTS = (("huggingface.co", 443), ("storage.googleapis.com", 443))
"""Where fastembed downloads models from (Hugging Face, then Google Cloud Storage); HF_ENDPOINT replaces the first."""
PROBE_SECONDS = 3.0


def offline_recipe(section: str) -> str:
    return (f"Offline, set [{section}].model_path to a local ONNX model folder (model.onnx and tokenizer.json; see "
            "config.example.toml), and for the demo use the README's offline config (a local MiniLM retriever and "
            '[feedback] type = "bm25", which needs no model); or connect once so fastembed can download and cache it '
            "(FASTEMBED_CACHE_PATH chooses where).")


def download_hosts(env: dict[str, str] | None = None) -> list[tuple[str, int]]:
    e = download_env() if env is None else env
    hosts = list(DOWNLOAD_HOSTS)
    if e.get("HF_ENDPOINT"):
        url = urlsplit(e["HF_ENDPOINT"])
        hosts[0] = (url.hostname or hosts[0][0], url.port or (80 if url.scheme == "http" else 443))
    return hosts


def reachable(hosts: list[tuple[str, int]], timeout: float = PROBE_SECONDS) -> bool:
    """Whether any download host accepts a TCP connection within ``timeout`` (name resolution included)."""
    for host in hosts:
        try:
            socket.create_connection(host, timeout=timeout).close()
            return True
        except OSError:
            continue
    return False


@contextmanager
def _quiet_fastembed() -> Iterator[None]:
    """fastembed logs an ERROR per source it looks in when a cache lookup misses: the miss is expected here."""
    try:
        from loguru import logger
    except ImportError:  # pragma: no cover - fastembed depends on loguru
        yield
        return
    logger.disable("fastembed")
    try:
        yield
    finally:
        logger.enable("fastembed")


def by_name(cls: Any, settings: ModelSettings, section: str, kwargs: dict[str, Any]) -> Any:
    """A model fastembed downloads by name: from its cache when there; otherwise downloaded, unless no download host
    answers within seconds, which fails at once with the offline recipe (fastembed itself retries for tens of
    seconds). Behind a proxy (HTTPS_PROXY), or with HF_HUB_OFFLINE, fastembed is left to decide."""
    try:
        with _quiet_fastembed():
            return cls(settings.model, local_files_only=True, **kwargs)
    except Exception:
        pass  # not cached (or not usable from the cache): a download is needed
    env = download_env()
    if not env.keys() & {"HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE"}:
        hosts = download_hosts(env)
        t0 = time.perf_counter()
        if not reachable(hosts):
            raise ModelError(
                f"[{section}] model {settings.model!r} is not in fastembed's cache and cannot be downloaded: "
                f"{' or '.join(h for h, _ in hosts)} did not answer ({time.perf_counter() - t0:.1f} s).",
                fix=offline_recipe(section))
    return cls(settings.model, **kwargs)
