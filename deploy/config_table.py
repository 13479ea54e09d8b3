"""The README's configuration table, made from .env.example (the one list of settings).

python deploy/config_table.py          print the table
python deploy/config_table.py --write  put it into README.md between its markers
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- configuration table: made by deploy/config_table.py -->", "<!-- end of configuration table -->"
_VARIABLE = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$")


def settings_of(text: str) -> list[tuple[str, str, str, str]]:
    """(section, name, default, meaning) of every variable, in the file's order."""
    rows, section, comments = [], "", []
    for line in text.splitlines():
        if line.startswith("# ---"):
            section, comments = line.strip("# -"), []
        elif match := _VARIABLE.match(line):
            unset, name, value = match.groups()
            rows.append((section, name, "(unset)" if unset else value, " ".join(comments)))
            comments = []
        elif line.startswith("# "):
            comments.append(line[2:].strip())
        else:
            comments = []
    return rows


def table(text: str) -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    section = None
    for where, name, default, meaning in settings_of(text):
        if where != section:
            section = where
            lines.append(f"| **{where}** | | |")
        lines.append(f"| `{name}` | `{default}` | {meaning} |".replace("``(unset)``", "(unset)"))
    return "\n".join(lines).replace("| `(unset)` |", "| unset |")


def readme_with_table(readme: str, env_example: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(env_example)}\n{END}{tail}"


if __name__ == "__main__":
    env_example = (ROOT / ".env.example").read_text()
    if sys.argv[1:] == ["--write"]:
        readme = ROOT / "README.md"
        readme.write_text(readme_with_table(readme.read_text(), env_example))
    else:
        print(table(env_example))  # noqa: T201
