"""A benchmark's table: printed as it is measured, and kept as the latest result in
``benchmarks/results/<name>.md``, which the docs quote."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


class Report:
    def __init__(self, name: str, title: str, bench: str | None = None):
        """``name`` of the results file; ``bench``, the benchmark that writes it (default: the same)."""
        self.name, self.title, self.bench, self.lines = name, title, bench or name, []

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def save(self) -> Path:
        """Write the table with the command that made it and the machine it ran on."""
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}.md"
        command = "./deploy/bench.sh " + shlex.join([self.bench, *sys.argv[1:]])
        machine = f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.machine()}"
        body = "\n".join(self.lines).strip("\n")
        path.write_text(f"# {self.title}\n\n`{command}` on {machine}:\n\n```\n{body}\n```\n")
        return path
