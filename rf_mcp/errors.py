"""Error types shared by every layer.

Every error the product raises on purpose is an :class:`RFError`: it carries a message that names
the problem and the fix, a stable ``code`` and the exit status the CLI uses. Front ends (CLI, MCP
tools) turn these into a clear message; anything else is a bug and is reported as such.
"""

from __future__ import annotations


class RFError(Exception):
    """Base class: a failure the user can act on."""

    code = "error"
    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.problem = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message} Fix: {fix}")


class ConfigError(RFError):
    """The configuration file or an environment override is invalid."""

    code = "config_error"
    exit_code = 2


class InputError(RFError):
    """An argument is invalid (bad file, bad limit, unknown collection...)."""

    code = "invalid_input"
    exit_code = 2


class GuardrailError(RFError):
    """A Relevance Feedback usage rule would be broken: the request is refused."""

    code = "refused"
    exit_code = 3


class EngineError(RFError):
    """Qdrant could not be reached or answered with an error."""

    code = "engine_error"
    exit_code = 4


class ModelError(RFError):
    """A retriever or feedback model could not be loaded or failed to score."""

    code = "model_error"
    exit_code = 5


class UnusableGrades(ModelError):
    """The feedback model's reply for one query stayed unusable after its retry (an LLM judge's malformed grades).

    The only model failure a batch operation (calibrate, evaluate) may skip and count, within a bound; a search
    fails with it. Connection errors, timeouts and refusals are plain :class:`ModelError` and always abort."""
