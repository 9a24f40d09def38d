"""Loading fastembed models by name (downloaded by fastembed) or from a local ONNX folder.

A local folder is registered with fastembed's ``add_custom_model`` and opened with
``specific_model_path``, so the same code serves users with internet and offline machines.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from rf_mcp.config import ModelSettings
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


def check_folder(settings: ModelSettings, section: str) -> Path | None:
    if settings.model_path is None:
        return None
    folder = Path(settings.model_path).expanduser()
    if not folder.is_dir():
        raise ModelError(
            f"[{section}].model_path {folder} is not a folder.",
            fix="Point model_path at a folder holding the ONNX file and tokenizer.json, or remove it to load by name.",
        )
    for name in (settings.model_file, "tokenizer.json"):
        if not (folder / name).is_file():
            raise ModelError(
                f"[{section}].model_path {folder} has no {name}.",
                fix="Copy the model's ONNX file and tokenizer files there (see config.example.toml).",
            )
    return folder


def identity(settings: ModelSettings, folder: Path | None) -> str:
    if folder is None:
        return settings.model
    return f"{settings.model}@sha256:{file_digest(folder / settings.model_file)}"


def register_custom(cls: Any, settings: ModelSettings, section: str, *, embedding: bool) -> None:
    """Register a local model under its configured name unless fastembed knows it already."""
    from fastembed.common.model_description import ModelSource, PoolingType

    with _register_lock:
        if settings.model.lower() in known_models(cls):
            return
        kwargs: dict[str, Any] = {"model": settings.model, "sources": ModelSource(hf=settings.model),
                                  "model_file": settings.model_file}
        if embedding:
            if settings.dim is None:
                raise ConfigError(
                    f"[{section}].dim is missing: fastembed does not know the model {settings.model!r}.",
                    fix=f"Set [{section}].dim (and pooling) for a local model folder.",
                )
            kwargs["dim"] = settings.dim
            if cls.__name__ == "TextEmbedding":
                kwargs["pooling"] = PoolingType.CLS if settings.pooling == "cls" else PoolingType.MEAN
                kwargs["normalization"] = settings.normalize
        cls.add_custom_model(**kwargs)


def load(cls: Any, settings: ModelSettings, section: str, *, embedding: bool) -> Any:
    folder = check_folder(settings, section)
    if folder is not None:
        register_custom(cls, settings, section, embedding=embedding)
    elif settings.model.lower() not in known_models(cls):
        raise ConfigError(
            f"[{section}].model {settings.model!r} is not a model fastembed can download.",
            fix=f"Use a name from fastembed's list, or set [{section}].model_path to a local ONNX folder.",
        )
    kwargs: dict[str, Any] = {}
    if folder is not None:
        kwargs["specific_model_path"] = str(folder)
    if settings.threads:
        kwargs["threads"] = settings.threads
    try:
        return cls(settings.model, **kwargs)
    except (ConfigError, ModelError):
        raise
    except Exception as exc:
        where = f"from {folder}" if folder else "by name (needs internet the first time)"
        raise ModelError(
            f"Could not load [{section}] model {settings.model!r} {where}: {type(exc).__name__}: {exc}",
            fix=f"Check [{section}].model / model_path; offline, point model_path at a local ONNX folder.",
        ) from None
