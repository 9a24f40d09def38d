"""LATENCY.md is assembled from sections, each rewritten by the benchmark that measures it (with its command)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent
LATENCY = OUT / "LATENCY.md"
ORDER = ["latency", "hnsw_links", "scifact", "overhead", "load", "startup"]
HEADER = ("# Latency, accuracy and load\n\nEach section below is written by the command it names (machine: 2 cores, "
          "24 GiB, no GPU). Re-run a command to refresh its section only.\n")


def command() -> str:
    """The command line that ran this benchmark, as a user would type it."""
    return " ".join(["python -m benchmarks." + Path(sys.argv[0]).stem, *sys.argv[1:]])


def write_section(name: str, body: str) -> None:
    """Replace section ``name`` of LATENCY.md (kept in :data:`ORDER`), stamped with the command and the date."""
    text = LATENCY.read_text() if LATENCY.exists() else HEADER
    if not text.startswith("# Latency, accuracy and load"):
        text = HEADER
    sections = dict(re.findall(r"<!-- (\w+):begin -->\n(.*?)<!-- \1:end -->\n", text, flags=re.S))
    stamp = f"Command: `{command()}`  \nDate: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
    sections[name] = stamp + body.rstrip() + "\n"
    parts = [HEADER]
    for key in [*ORDER, *sorted(set(sections) - set(ORDER))]:
        if key in sections:
            parts.append(f"<!-- {key}:begin -->\n{sections[key]}<!-- {key}:end -->\n")
    LATENCY.write_text("\n".join(parts))


def publish(name: str, result: dict[str, Any], body: str, *, section: bool = True) -> None:
    """A benchmark's outcome: ``<name>.json`` beside this file, its LATENCY.md section (unless ``section`` is False:
    a run against someone else's server), and the section's text on stdout."""
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2))
    if section:
        write_section(name, body)
    print(body)
