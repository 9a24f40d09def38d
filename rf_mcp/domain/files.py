"""Which server-side files an operation may read.

The CLI and the Python API read what their user names (:data:`UNRESTRICTED`). A server reads only regular files
inside its data roots, resolved with symlinks and ``..`` first; anything else gets one uniform refusal that says
nothing about the file (whether it exists, is readable, or what it holds), so a client learns nothing by probing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rf_mcp.errors import InputError

MAX_FILE_BYTES = 2 * 1024**3  # a corpus or vector file beyond this is refused (the server would not cope anyway)


@dataclass(frozen=True)
class PathPolicy:
    """``roots`` None: any path (the caller's own files, relative to the working directory); a tuple: only regular
    files inside these folders, a relative path read against the first (never the server's working directory)."""

    roots: tuple[Path, ...] | None = None

    @classmethod
    def confined(cls, roots: Sequence[str | Path]) -> PathPolicy:
        return cls(tuple(Path(os.path.realpath(Path(r).expanduser())) for r in roots))

    @property
    def restricted(self) -> bool:
        return self.roots is not None

    def describe(self) -> str:
        if self.roots is None:
            return "any path"
        return ", ".join(map(str, self.roots)) if self.roots else "none (inline data only)"

    def open(self, path: str | Path, what: str) -> Path:
        """The resolved path of a file the operation may read, or an :class:`InputError`."""
        if self.roots is None:
            p = Path(path).expanduser()
            if not p.is_file():
                raise InputError(f"The {what} file {p} does not exist.", fix=f"Pass the path of an existing {what} file.")
            return p
        refusal = InputError(
            f"The {what} file is not available to this server: server-side paths must name a regular file inside "
            f"its data roots ({len(self.roots)} configured).",
            fix="Pass the data inline (e.g. queries as a list), or have the operator place the file under a data root "
                "([server] data_roots).")
        try:
            given = Path(str(path)).expanduser()
            if not given.is_absolute() and self.roots:
                given = self.roots[0] / given
            real = Path(os.path.realpath(given))
            inside = any(real.is_relative_to(root) for root in self.roots)
            if not inside or not real.is_file() or real.stat().st_size > MAX_FILE_BYTES or not os.access(real, os.R_OK):
                raise refusal
        except (OSError, ValueError):
            raise refusal from None
        return real


UNRESTRICTED = PathPolicy()
